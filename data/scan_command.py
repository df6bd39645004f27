"""``python -m data scan PATH [--out manifest.csv|.parquet]``: the manifest and its summary.

The summary goes to stdout; the table is written only where ``--out`` says (CSV or Parquet,
by extension). File names that are not valid UTF-8 survive: CSV is written with
``surrogateescape`` (the original bytes), Parquet cannot hold them and gets ``\\x`` escapes
(with a warning naming how many).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

SHOWN = 10  # examples listed per section of a summary


def register_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="list a dataset's images (split, label, group...) and print a summary",
        description="Scan a dataset folder (split or label folders) or CSV into a manifest.",
    )
    parser.add_argument("path", type=Path, help="dataset folder or CSV (path,label[,split,...])")
    parser.add_argument(
        "--out", type=Path, help="write the manifest here (.csv or .parquet); default: none"
    )
    parser.set_defaults(run=run_scan)


def run_scan(args) -> int:
    from data.scan import scan

    check_output_suffix(args.out)
    manifest = scan(args.path)
    print(summarize_manifest(manifest))
    if args.out is not None:
        print(f"manifest written to {write_table(manifest, args.out)}")
    return 0


def check_output_suffix(out: Path | None) -> None:
    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"--out {out}: expected a .csv or .parquet file name")


def summarize_manifest(manifest: pd.DataFrame) -> str:
    """Counts by split and label, layout, skipped files and errors with reasons, as text."""
    attrs = manifest.attrs
    lines = [
        f"dataset: {attrs.get('root', '?')}  layout: {attrs.get('layout', '?')}  "
        f"images: {len(manifest)}"
    ]
    if len(manifest):
        labels = [printable(str(label)) for label in manifest["label"].tolist()]
        splits = [str(split) or "(none)" for split in manifest["split"].tolist()]
        counts = pd.crosstab(pd.Series(labels, name="label"), pd.Series(splits, name="split"))
        counts.index.name, counts.columns.name = "label", "split"
        lines += ["", "images by label and split:", counts.to_string()]
        for column in ("group", "parent", "origin"):
            known = int((manifest[column] != "").sum())
            if known:
                lines.append(f"{column}: known for {known} of {len(manifest)} images")
    skipped = attrs.get("skipped", [])
    if skipped:
        reasons = Counter(item["reason"] for item in skipped)
        lines += ["", f"skipped files: {len(skipped)}"]
        lines += [f"  {count:>6}  {reason}" for reason, count in reasons.most_common()]
        lines += [
            f"    e.g. {printable(item['path'])}: {item['reason']}" for item in skipped[:SHOWN]
        ]
    lines += summarize_errors(manifest)
    return "\n".join(lines)


def summarize_errors(table: pd.DataFrame) -> list[str]:
    failed = table[table["error"] != ""] if "error" in table.columns else table.iloc[:0]
    if not len(failed):
        return ["", "errors: none"]
    lines = ["", f"errors: {len(failed)} files"]
    for reason, count in failed["error"].value_counts().items():
        lines.append(f"  {count:>6}  {reason}")
    paths, reasons = failed["path"].tolist()[:SHOWN], failed["error"].tolist()[:SHOWN]
    for path, reason in zip(paths, reasons, strict=True):
        lines.append(f"    e.g. {printable(str(path))}: {reason}")
    return lines


def printable(text: str) -> str:
    """``text`` safe to print: undecodable bytes (surrogate escapes) shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def write_table(table: pd.DataFrame, out: Path) -> Path:
    """Write a manifest or features table as CSV or Parquet (by ``out``'s extension).

    Array columns (``descriptor``) become hex strings of their float16 bytes in CSV and lists
    of float32 in Parquet. Returns ``out``.
    """
    check_output_suffix(out)
    table = table.copy()
    table.attrs = {}
    is_csv = out.suffix.lower() == ".csv"
    for column in table.columns:
        if (
            table[column].dtype == object
            and len(table)
            and isinstance(table[column].iloc[0], np.ndarray)
        ):
            if is_csv:
                table[column] = [
                    np.asarray(v, dtype=np.float16).tobytes().hex() for v in table[column]
                ]
            else:
                table[column] = [np.asarray(v, dtype=np.float32) for v in table[column]]
    out.parent.mkdir(parents=True, exist_ok=True)
    if is_csv:
        table.to_csv(out, index=False, encoding="utf-8", errors="surrogateescape")
        return out
    escaped = 0
    for column in table.columns:
        if (
            pd.api.types.is_string_dtype(table[column])
            and table[column].dtype == object
            or str(table[column].dtype) in ("str", "string")
        ):
            values = table[column].astype(object).tolist()
            fixed = [printable(v) if isinstance(v, str) else v for v in values]
            escaped += sum(a != b for a, b in zip(values, fixed, strict=True))
            table[column] = fixed
    if escaped:
        print(
            f"warning: {escaped} values are not valid UTF-8 (file names); written to {out} "
            "with \\x escapes. Use --out with .csv to keep the exact bytes.",
            file=sys.stderr,
        )
    table.to_parquet(out, index=False)
    return out
