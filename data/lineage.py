"""The lineage record: where each file splitsafe's tools made came from.

Every tool that writes images (``frames``, ``upsample``, ``crop-borders``, ``demo``)
appends rows to ``splitsafe-lineage.csv`` in the root of the dataset it wrote
into. ``scan`` reads it and fills the manifest's ``group``, ``parent`` and
``origin`` columns. One CSV, one row per written file, so it is readable by eye
and by pandas, and appending is atomic enough for one writer (rows are written
to a temporary file and renamed over the record).

Columns
-------
path : str
    The written file, relative to the dataset root, POSIX separators.
parent : str
    The file it was derived from, relative to the same root ("" for none).
group : str
    Items that must stay on one side of a split: a video scene, a source image
    and its augmented copies ("" when the tool knows none).
origin : str
    Where the original content came from: "frame", "internet", "drawn", ...
operation : str
    What the tool did: "frame", "invert", "poisson", "crop-borders", "demo", ...
source : str
    An outside source (video file, URL); "" for none.
time : float
    Position in the source video in seconds (NaN when not a frame).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

LINEAGE_NAME = "splitsafe-lineage.csv"
LINEAGE_COLUMNS = ("path", "parent", "group", "origin", "operation", "source", "time")


def read_lineage(root: str | os.PathLike) -> pd.DataFrame:
    """Read ``root/splitsafe-lineage.csv``; an empty frame with the columns when absent.

    Later rows for the same path win (a tool rerun records the newest facts).
    """
    path = Path(root) / LINEAGE_NAME
    if not path.is_file():
        return pd.DataFrame(
            {c: pd.Series(dtype=float if c == "time" else str) for c in LINEAGE_COLUMNS}
        )
    try:
        table = pd.read_csv(
            path, dtype={c: str for c in LINEAGE_COLUMNS if c != "time"}, keep_default_na=False
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: lineage record is not a readable CSV ({error})") from None
    missing = [c for c in ("path",) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: lineage record lacks column(s) {missing}; expected {list(LINEAGE_COLUMNS)}"
        )
    for column in LINEAGE_COLUMNS:
        if column not in table.columns:
            table[column] = float("nan") if column == "time" else ""
    table["time"] = pd.to_numeric(table["time"], errors="coerce")
    return (
        table.loc[:, list(LINEAGE_COLUMNS)]
        .drop_duplicates("path", keep="last")
        .reset_index(drop=True)
    )


def append_lineage(root: str | os.PathLike, rows: pd.DataFrame | list[dict]) -> Path:
    """Add rows to the lineage record of ``root`` (created if absent); returns its path.

    Existing rows for the same paths are replaced. The record is rewritten through
    a temporary file and ``os.replace`` so an interrupted tool never leaves it torn.
    """
    root = Path(root)
    new = pd.DataFrame(rows)
    for column in LINEAGE_COLUMNS:
        if column not in new.columns:
            new[column] = float("nan") if column == "time" else ""
    new = new.loc[:, list(LINEAGE_COLUMNS)]
    table = pd.concat([read_lineage(root), new], ignore_index=True)
    table = table.drop_duplicates("path", keep="last")
    target = root / LINEAGE_NAME
    handle, temporary = tempfile.mkstemp(dir=root, prefix=".lineage-", suffix=".csv")
    with os.fdopen(handle, "w", newline="") as out:
        table.to_csv(out, index=False)
    os.replace(temporary, target)
    return target
