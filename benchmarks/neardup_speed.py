"""Speed of find_duplicates on synthetic features, beside two baselines, in one run.

The query and reference frames hold random unit descriptors of the real dimension (256,
float16, as data.hashing stores them), random 64-bit pHashes and digests, plus a few planted
near copies so the output is not empty. Baselines, measured on a subsample and extrapolated
linearly to the full number of pairs:

- ``numpy pHash``: all-pairs Hamming distances with numpy broadcasting (data.hashing.hamming),
  a fully vectorised but naive search;
- ``imagehash``: ``ImageHash`` objects compared in a Python double loop (``a - b``), the way
  imagehash is usually used.

Usage::

    .venv/bin/python benchmarks/neardup_speed.py                  # 10,000 x 50,000
    .venv/bin/python benchmarks/neardup_speed.py --query 1000 --reference 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.hashing import DESCRIPTOR_SIDE, hamming  # noqa: E402
from data.neardup import find_duplicates  # noqa: E402


def synthetic_features(count: int, rng, *, prefix: str) -> pd.DataFrame:
    vectors = rng.standard_normal((count, DESCRIPTOR_SIDE**2)).astype(np.float32)
    vectors -= vectors.mean(axis=1, keepdims=True)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = rng.integers(
        np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=count, dtype=np.int64
    )
    return pd.DataFrame(
        {
            "sha256": [f"{prefix}{i:x}" for i in range(count)],
            "pixel_digest": [f"{prefix}p{i:x}" for i in range(count)],
            "phash": hashes,
            "phash_inverted": ~hashes,
            "descriptor": list(vectors.astype(np.float16)),
            "error": "",
        }
    )


def plant_copies(query: pd.DataFrame, reference: pd.DataFrame, count: int, rng) -> None:
    """Make ``count`` query rows noisy copies of reference rows (in place, on our own frames)."""
    rows = rng.choice(len(query), size=count, replace=False)
    sources = rng.choice(len(reference), size=count, replace=False)
    for row, source in zip(rows, sources, strict=True):
        vector = reference["descriptor"].iloc[source].astype(np.float32)
        vector = vector + 0.1 * rng.standard_normal(vector.size).astype(np.float32) / np.sqrt(
            vector.size
        )
        query.at[query.index[row], "descriptor"] = (vector / np.linalg.norm(vector)).astype(
            np.float16
        )
        query.at[query.index[row], "phash"] = reference["phash"].iloc[source]


def time_numpy_phash(query: pd.DataFrame, reference: pd.DataFrame, rows: int) -> float:
    """Seconds for ``rows`` query rows against all reference rows, all-pairs Hamming <= 8."""
    query_hashes = query["phash"].to_numpy(np.int64)[:rows, None]
    reference_hashes = reference["phash"].to_numpy(np.int64)[None, :]
    started = time.perf_counter()
    for start in range(0, rows, 200):
        np.nonzero(hamming(query_hashes[start : start + 200], reference_hashes) <= 8)
    return time.perf_counter() - started


def time_imagehash(query: pd.DataFrame, reference: pd.DataFrame, rows: int, columns: int) -> float:
    """Seconds for a rows x columns double loop of ImageHash subtractions."""
    import imagehash

    def to_hash(value: int):
        bits = np.array([int(b) for b in f"{int(value) & 0xFFFFFFFFFFFFFFFF:064b}"], dtype=bool)
        return imagehash.ImageHash(bits.reshape(8, 8))

    query_hashes = [to_hash(v) for v in query["phash"].to_numpy()[:rows]]
    reference_hashes = [to_hash(v) for v in reference["phash"].to_numpy()[:columns]]
    started = time.perf_counter()
    found = 0
    for first in query_hashes:
        for second in reference_hashes:
            if first - second <= 8:
                found += 1
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--query", type=int, default=10_000)
    parser.add_argument("--reference", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    query = synthetic_features(args.query, rng, prefix="q")
    reference = synthetic_features(args.reference, rng, prefix="r")
    plant_copies(query, reference, min(100, args.query, args.reference), rng)
    pairs_total = args.query * args.reference
    print(
        f"{args.query:,} x {args.reference:,} = {pairs_total:,} pairs; descriptor "
        f"{DESCRIPTOR_SIDE**2} float16; cpu_count={os.cpu_count()}, "
        f"affinity={len(os.sched_getaffinity(0))} cores"
    )

    timings = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        pairs = find_duplicates(query, reference)
        timings.append(time.perf_counter() - started)
    print(
        f"find_duplicates: best {min(timings):.2f}s, "
        f"runs {[round(t, 2) for t in timings]}, {len(pairs)} pairs"
    )
    started = time.perf_counter()
    within = find_duplicates(reference.iloc[: args.query * 2])
    print(
        f"find_duplicates within {min(len(reference), args.query * 2):,} rows: "
        f"{time.perf_counter() - started:.2f}s, {len(within)} pairs"
    )

    rows = min(1000, args.query)
    numpy_seconds = time_numpy_phash(query, reference, rows) * args.query / rows
    print(
        f"baseline numpy all-pairs pHash Hamming: {numpy_seconds:.2f}s "
        f"(extrapolated from {rows} rows)"
    )
    loop_rows, loop_columns = min(100, args.query), min(1000, args.reference)
    loop_seconds = (
        time_imagehash(query, reference, loop_rows, loop_columns)
        * pairs_total
        / (loop_rows * loop_columns)
    )
    print(
        f"baseline imagehash double loop: {loop_seconds:,.0f}s = {loop_seconds / 3600:.1f} h "
        f"(extrapolated from {loop_rows}x{loop_columns})"
    )
    best = min(timings)
    print(
        f"ratio: numpy pHash / find_duplicates = {numpy_seconds / best:.1f}x; "
        f"imagehash loop / find_duplicates = {loop_seconds / best:,.0f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
