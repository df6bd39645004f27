"""``python -m data features PATH [--out features.parquet|.csv] [--workers N] [--cache-dir DIR]
[--no-cache]``: scan, compute per-image features (cached), print a summary.

The summary (stdout): the scan summary, how many rows came from the cache and how many were
computed, formats and modes found, sizes, errors with their reasons. The table is written only
where ``--out`` says.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data.scan_command import check_output_suffix, summarize_manifest, write_table


def register_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "features",
        help="compute per-image features (hashes, statistics, borders; cached) and a summary",
        description="Scan a dataset, then decode every image once and compute its features. "
        "Results are cached (SQLite) by path, size, mtime and feature version; a rerun only "
        "computes new or changed files.",
    )
    parser.add_argument("path", type=Path, help="dataset folder or CSV")
    parser.add_argument("--out", type=Path, help="write the table here (.parquet or .csv)")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default: the number of CPUs)"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache folder (default: $SPLITSAFE_CACHE or ~/.cache/splitsafe)",
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_features)


def run_features(args) -> int:
    from data.image_features import features
    from data.scan import dataset_root, scan

    check_output_suffix(args.out)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers {args.workers}: expected 1 or more")
    manifest = scan(args.path)
    table = features(
        manifest,
        dataset_root(args.path),
        cache_dir=args.cache_dir,
        workers=args.workers,
        progress=not args.no_progress,
        use_cache=not args.no_cache,
    )
    print(summarize_features(table))
    if args.out is not None:
        print(f"features written to {write_table(table, args.out)}")
    return 0


def summarize_features(table: pd.DataFrame) -> str:
    """The scan summary plus cache use, format and mode inventory, sizes, flagged properties."""
    counts = table.attrs.get("feature_counts", {})
    lines = [summarize_manifest(table), ""]
    if counts:
        lines.append(
            f"features: {counts['cached']} from the cache, {counts['computed']} computed, "
            f"{counts['errors']} errors"
        )
    fine = table[table["error"] == ""]
    if len(fine):
        inventory = (
            fine.groupby(["format", "mode"])
            .size()
            .rename("images")
            .reset_index()
            .to_string(index=False)
        )
        lines += ["", "formats and modes (as stored):", inventory]
        lines.append(
            f"size: width {fine['width'].min()}-{fine['width'].max()}, "
            f"height {fine['height'].min()}-{fine['height'].max()} px; "
            f"decode scales used: {sorted(set(fine['decode_scale'].tolist()))}"
        )
        animated = int((fine["frames"] > 1).sum())
        grayscale = int(fine["is_grayscale"].sum())
        bordered = sum(
            int((fine[f"border_{side}_width"] > 0).sum()) > 0
            for side in ("top", "bottom", "left", "right")
        )
        with_border = int(
            (fine[[f"border_{s}_width" for s in ("top", "bottom", "left", "right")]] > 0)
            .any(axis=1)
            .sum()
        )
        lines.append(
            f"animated: {animated}, grayscale: {grayscale}, with a border or edge line: "
            f"{with_border} (on {bordered} of 4 sides somewhere)"
        )
    return "\n".join(lines)
