"""Speed of find_duplicates beside the previous implementation and naive baselines, in one run.

Data: synthetic features with *realistic* descriptors. Real descriptors are smooth (gray image
blurred before the 16x16 rank grid, data/hashing.py), which the search's exact low-frequency
prefilter relies on; white-noise vectors would not be. So each synthetic descriptor is the
descriptor pipeline (32x32 grid, Gaussian blur, 2x2 pooling, ranks, centred, unit norm) applied
to a random 1/f ("natural image" spectrum) field. The residual-norm quantiles printed compare
them with real ones (simpsons-mnist and scikit-image: median 0.19, 90 % 0.28). Random 64-bit
pHashes and digests; a few planted noisy copies so the output is not empty.

Timed, alternately in the same process, on the same frames:

- ``find_duplicates`` now (prefilter + exact check + alignment of the candidates);
- ``baseline``: find_duplicates of the previous commit (``--baseline-commit``, loaded from git),
  a plain 256-value blocked product at its pHash-confirmed threshold 0.82;
- ``numpy pHash``: all-pairs Hamming distances with numpy broadcasting, extrapolated from a
  subsample.

Wall time and process CPU time (all threads) are printed with the load average and the BLAS
thread pool, since the machine may be shared: on 2 cores, CPU seconds / 2 is what an idle
machine would need at best.

Usage::

    .venv/bin/python benchmarks/neardup_speed.py                  # 10,000 x 50,000
    .venv/bin/python benchmarks/neardup_speed.py --query 1000 --reference 5000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.hashing import (  # noqa: E402
    _SMOOTHING,
    DESCRIPTOR_BASE_SIDE,
    DESCRIPTOR_SIDE,
    average_ranks,
    hamming,
)
from data.neardup import _project, find_duplicates  # noqa: E402

BASELINE_COMMIT = "8d13005"  # data/neardup.py before the prefilter and alignment


def natural_descriptors(count: int, rng, *, chunk: int = 5000) -> np.ndarray:
    """Descriptors of random 1/f fields through the descriptor pipeline, float16 (count, 256)."""
    side = DESCRIPTOR_BASE_SIDE
    frequency_y = np.fft.fftfreq(side)[:, None]
    frequency_x = np.fft.fftfreq(side)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(frequency_y, frequency_x), 1.0 / side)
    amplitude[0, 0] = 0.0
    parts = []
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        phases = rng.standard_normal((size, side, side)) + 1j * rng.standard_normal(
            (size, side, side)
        )
        fields = np.fft.ifft2(phases * amplitude).real
        grids = np.matmul(np.matmul(_SMOOTHING, fields), _SMOOTHING.T)
        ranks = average_ranks(grids.reshape(size, -1))
        ranks -= ranks.mean(axis=1, keepdims=True)
        ranks /= np.linalg.norm(ranks, axis=1, keepdims=True)
        parts.append(ranks.astype(np.float16))
    return np.concatenate(parts)


def synthetic_features(count: int, rng, *, prefix: str) -> pd.DataFrame:
    hashes = rng.integers(
        np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=count, dtype=np.int64
    )
    return pd.DataFrame(
        {
            "sha256": [f"{prefix}{i:x}" for i in range(count)],
            "pixel_digest": [f"{prefix}p{i:x}" for i in range(count)],
            "phash": hashes,
            "phash_inverted": ~hashes,
            "descriptor": list(natural_descriptors(count, rng)),
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


def load_baseline(commit: str):
    """The data.neardup module of ``commit``, loaded from git under another name."""
    source = subprocess.run(
        ["git", "show", f"{commit}:data/neardup.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("neardup_baseline")
    exec(compile(source, f"{commit}:data/neardup.py", "exec"), module.__dict__)  # noqa: S102
    return module


def timed(function):
    """(result, wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def time_numpy_phash(query: pd.DataFrame, reference: pd.DataFrame, rows: int) -> float:
    """Seconds for ``rows`` query rows against all reference rows, all-pairs Hamming <= 8."""
    query_hashes = query["phash"].to_numpy(np.int64)[:rows, None]
    reference_hashes = reference["phash"].to_numpy(np.int64)[None, :]
    started = time.perf_counter()
    for start in range(0, rows, 200):
        np.nonzero(hamming(query_hashes[start : start + 200], reference_hashes) <= 8)
    return time.perf_counter() - started


def environment() -> str:
    from threadpoolctl import threadpool_info

    pools = [
        f"{pool.get('internal_api')} {pool.get('num_threads')} threads "
        f"({pool.get('architecture', '?')})"
        for pool in threadpool_info()
    ]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"cpu_count={os.cpu_count()}, affinity={len(os.sched_getaffinity(0))} cores, "
        f"BLAS: {'; '.join(pools)}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')!r}, "
        f"load average {load}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--query", type=int, default=10_000)
    parser.add_argument("--reference", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    query = synthetic_features(args.query, rng, prefix="q")
    reference = synthetic_features(args.reference, rng, prefix="r")
    plant_copies(query, reference, min(100, args.query, args.reference), rng)
    pairs_total = args.query * args.reference
    _, residual = _project(np.stack(reference["descriptor"].to_numpy()).astype(np.float32))
    print(
        f"{args.query:,} x {args.reference:,} = {pairs_total:,} pairs; descriptor "
        f"{DESCRIPTOR_SIDE**2} float16 (1/f fields; residual norm outside the 64 low "
        f"frequencies: median {np.median(residual):.2f}, 90% {np.quantile(residual, 0.9):.2f}); "
        f"data made in {time.perf_counter() - started:.1f}s"
    )
    print(environment())
    baseline = load_baseline(args.baseline_commit)

    runs = {"find_duplicates": [], "baseline": []}
    for _ in range(args.repeat):
        pairs, wall, cpu = timed(lambda: find_duplicates(query, reference))
        runs["find_duplicates"].append((wall, cpu, len(pairs)))
        old, wall, cpu = timed(lambda: baseline.find_duplicates(query, reference))
        runs["baseline"].append((wall, cpu, len(old)))
    for name, values in runs.items():
        walls = [round(wall, 2) for wall, _, _ in values]
        cpus = [round(cpu, 2) for _, cpu, _ in values]
        print(
            f"{name}: best wall {min(walls):.2f}s (runs {walls}), best CPU {min(cpus):.2f}s "
            f"(runs {cpus}), {values[0][2]} pairs"
        )
    best_new = min(wall for wall, _, _ in runs["find_duplicates"])
    best_old = min(wall for wall, _, _ in runs["baseline"])
    cpu_new = min(cpu for _, cpu, _ in runs["find_duplicates"])
    cpu_old = min(cpu for _, cpu, _ in runs["baseline"])
    print(
        f"ratio baseline / find_duplicates: wall {best_old / best_new:.2f}x, "
        f"CPU {cpu_old / cpu_new:.2f}x; idle 2-core estimate (CPU / 2): {cpu_new / 2:.2f}s"
    )
    within_rows = min(len(reference), args.query * 2)
    within, wall, cpu = timed(lambda: find_duplicates(reference.iloc[:within_rows]))
    print(
        f"find_duplicates within {within_rows:,} rows: wall {wall:.2f}s, CPU {cpu:.2f}s, "
        f"{len(within)} pairs"
    )
    rows = min(1000, args.query)
    numpy_seconds = time_numpy_phash(query, reference, rows) * args.query / rows
    print(
        f"numpy all-pairs pHash Hamming: {numpy_seconds:.2f}s wall (extrapolated from {rows} "
        f"rows); ratio to find_duplicates {numpy_seconds / best_new:.1f}x"
    )
    print(environment())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
