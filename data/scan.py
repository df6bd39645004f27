"""Scan a dataset into a manifest: one row per image, the contract between all parts.

Layouts read
------------
``root/<split>/<label>/**``  split folders (names in ``split_aliases``), the ImageNet/fastai layout;
``root/<label>/**``          not split yet (``split`` is "");
``file.csv``                 ``path,label[,split,group,parent,origin]`` as fastai's ``from_df``,
                             paths relative to the CSV's folder (or absolute).
A ``splitsafe-lineage.csv`` in the root (written by splitsafe's tools) fills ``group``,
``parent`` and ``origin``. Files without an image extension are listed in
``manifest.attrs["skipped"]`` with the reason, never silently dropped.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from data.lineage import LINEAGE_NAME, read_lineage
from data.settings import DATASET_CONFIG_NAME, AuditConfig

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jfif",
        ".png",
        ".gif",
        ".bmp",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
    }
)
MANIFEST_COLUMNS = ("path", "split", "label", "group", "parent", "origin", "error")
# Text columns use Python string storage: file names that are not valid UTF-8 arrive as str with
# surrogate escapes (os.fsdecode), which pandas' default pyarrow storage rejects.
TEXT_DTYPE = pd.StringDtype("python", na_value=np.nan)
# Files splitsafe itself keeps in a dataset root: neither images nor "skipped".
_OWN_FILES = frozenset({LINEAGE_NAME, DATASET_CONFIG_NAME})


def dataset_root(source: str | os.PathLike) -> Path:
    """The folder that manifest paths are relative to: the folder itself, or a CSV's folder."""
    source = Path(source)
    return source.parent if source.suffix.lower() == ".csv" else source


def is_image_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def scan(source: str | os.PathLike, *, split_aliases: dict[str, str] | None = None) -> pd.DataFrame:
    """Return the manifest of a dataset folder or CSV.

    Parameters
    ----------
    source : path
        A dataset folder (split or label folders) or a CSV file.
    split_aliases : dict, optional
        Folder or CSV split name -> canonical split ("train", "valid", "test").
        Default: ``AuditConfig().split_aliases`` (train, val/valid/validation, test).

    Returns
    -------
    pandas.DataFrame
        Columns ``path`` (relative to :func:`dataset_root`, POSIX), ``split``
        ("" when not split), ``label``, ``group``, ``parent``, ``origin`` (""
        when unknown), ``error`` ("" here; filled by ``features``). Sorted by path.
        ``attrs``: ``root`` (absolute path), ``layout``, ``skipped`` (list of
        ``{"path", "reason"}``).

    Raises
    ------
    FileNotFoundError, NotADirectoryError, ValueError
        With the path and the reason, for a missing dataset or a malformed CSV.
    """
    aliases = {k.lower(): v for k, v in (split_aliases or AuditConfig().split_aliases).items()}
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"dataset {source} does not exist")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise ValueError(f"dataset {source} is a file but not a CSV; give a folder or a CSV")
        manifest, skipped, layout = _scan_csv(source, aliases), [], "csv"
    else:
        manifest, skipped, layout = _scan_folder(source, aliases)
    manifest = _apply_lineage(manifest, read_lineage(dataset_root(source)))
    manifest = manifest.sort_values("path", kind="stable").reset_index(drop=True)
    manifest.attrs.update(root=str(dataset_root(source).resolve()), layout=layout, skipped=skipped)
    return manifest


def _walk_files(root: Path):
    """Yield (relative POSIX path, error) for every file; follows folder links once (no loops).

    Paths are built as strings (folder prefix + entry name): at 50,000 files pathlib's parsing
    cost more than the directory reads.
    """
    seen: set[tuple[int, int]] = set()
    stack = [(os.fspath(root), "")]  # (folder as given to scandir, its relative POSIX prefix)
    while stack:
        folder, prefix = stack.pop()
        try:
            info = os.stat(folder)
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            yield prefix.rstrip("/") or ".", f"folder not readable: {error.strerror}"
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue  # a folder link back into the tree
        seen.add((info.st_dev, info.st_ino))
        for entry in entries:
            relative = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=True):
                    stack.append((entry.path, relative + "/"))
                    continue
                entry.stat(follow_symlinks=True)
                yield relative, ""
            except OSError as error:
                reason = (
                    "symlink loop" if error.errno == errno.ELOOP else (error.strerror or str(error))
                )
                yield relative, reason


def _scan_folder(root: Path, aliases: dict[str, str]):
    if not root.is_dir():
        raise NotADirectoryError(f"dataset {root} is not a folder")
    top = [p.name for p in root.iterdir() if p.is_dir()]
    has_splits = any(name.lower() in aliases for name in top)
    rows, skipped = [], []
    for relative, error in _walk_files(root):
        parts = relative.split("/")
        if len(parts) == 1 and parts[0] in _OWN_FILES:
            continue
        if not is_image_path(relative):
            skipped.append(
                {
                    "path": relative,
                    "reason": error or f"not an image ({Path(relative).suffix or 'no extension'})",
                }
            )
            continue
        if has_splits:
            if len(parts) < 3 or parts[0].lower() not in aliases:
                skipped.append({"path": relative, "reason": "not inside <split>/<label>/"})
                continue
            split, label = aliases[parts[0].lower()], parts[1]
        else:
            if len(parts) < 2:
                skipped.append({"path": relative, "reason": "not inside a <label>/ folder"})
                continue
            split, label = "", parts[0]
        rows.append((relative, split, label, error))
    layout = "split-folders" if has_splits else "label-folders"
    names = ("path", "split", "label", "error")
    values = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    columns = {
        name: pd.Series(list(column), dtype=TEXT_DTYPE)
        for name, column in zip(names, values, strict=True)
    }
    return _with_columns(pd.DataFrame(columns)), skipped, layout


def _scan_csv(csv_path: Path, aliases: dict[str, str]) -> pd.DataFrame:
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"dataset {csv_path}: not a readable CSV ({error})") from None
    missing = [c for c in ("path", "label") if c not in table.columns]
    if missing:
        raise ValueError(
            f"dataset {csv_path}: missing column(s) {missing}; found {list(table.columns)}; "
            "expected path,label[,split,group,parent,origin]"
        )
    table = _with_columns(table)
    splits = table["split"].str.strip().str.lower()
    unknown = sorted(set(splits) - set(aliases) - {""})
    if unknown:
        raise ValueError(
            f"dataset {csv_path}: column 'split' has values {unknown}; "
            f"expected a subset of {sorted(set(aliases))} (or empty)"
        )
    table["split"] = splits.map(lambda s: aliases.get(s, ""))
    table["path"] = table["path"].map(lambda p: PurePosixPath(Path(p).as_posix()).as_posix())
    root = csv_path.parent
    table["error"] = ["" if (root / p).exists() else "file not found" for p in table["path"]]
    return table


def _with_columns(table: pd.DataFrame) -> pd.DataFrame:
    for column in MANIFEST_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    return table.loc[:, list(MANIFEST_COLUMNS)].astype(TEXT_DTYPE)


def _apply_lineage(manifest: pd.DataFrame, lineage: pd.DataFrame) -> pd.DataFrame:
    """Fill empty group/parent/origin from the lineage record; copies inherit the parent's group."""
    manifest = manifest.copy()
    if len(lineage):
        known = lineage.set_index("path")
        for column in ("group", "parent", "origin"):
            from_lineage = manifest["path"].map(known[column]).fillna("")
            manifest[column] = manifest[column].where(manifest[column] != "", from_lineage)
    # An augmented copy belongs with its source: inherit the parent's group, else the parent itself.
    group_of = dict(zip(manifest["path"], manifest["group"], strict=True))
    needs = (manifest["group"] == "") & (manifest["parent"] != "")
    manifest.loc[needs, "group"] = [group_of.get(p) or p for p in manifest.loc[needs, "parent"]]
    return manifest
