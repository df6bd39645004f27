"""Per-image features: one decode per image, in parallel, cached on disk.

:func:`features` adds the columns of ARCHITECTURE.md ("Features") to a manifest. Each file is
read once (its SHA-256), decoded once (data/decode.py: JPEG draft, EXIF orientation, RGB) and
every feature is computed from that one decoded image: hashes and descriptor
(data/hashing.py), simple statistics, the border profile (data/borders.py) and a digest of the
decoded pixels.

``pixel_digest``: SHA-256 of the original size, the decode scale and the decoded RGB pixels.
For PNG, BMP, TIFF, WebP-lossless... (decode scale 1) equal digests mean equal pixels, however
the files are encoded. A JPEG wider than 256 px on its short side is digested at its draft
scale: two JPEG files have equal digests when their reduced decodes are equal (the same JPEG
data re-wrapped, with other metadata or lossless re-optimisation such as ``jpegtran``); a PNG
of a large JPEG's full decode does not match the JPEG (different scale). Near-duplicate search
finds those by descriptor instead.

Processes: with ``workers`` > 1 and at least ``IN_PROCESS_LIMIT`` files to compute, files are
analysed in a process pool, started with ``fork`` when that is safe (Linux, a single-threaded
process without torch: see :func:`_pool_context`), else with ``forkserver`` (then, as Python's
multiprocessing requires, a script that calls :func:`features` must guard its entry point with
``if __name__ == "__main__":``; if it does not, the workers die and their files become error
rows, never a crash or a hang).

Errors: a file that cannot be analysed is a row whose ``error`` says why; its other feature
columns are 0 / "" (``file_size`` is kept when the file could be stat'ed). No exception from
one file escapes, and a per-file time limit bounds any decoder that would hang.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from data.borders import border_columns, empty_profile, profile_borders
from data.cache import open_cache
from data.decode import (
    MIN_DECODE_SIDE,
    DecodedImage,
    DecodeError,
    decode_file,
    os_error_reason,
)
from data.hashing import DESCRIPTOR_DTYPE, DESCRIPTOR_SIDE, image_hashes

# Bump when any feature's computation changes: cached rows of other versions are not reused.
FEATURE_VERSION = f"2-side{MIN_DECODE_SIDE}-descriptor{DESCRIPTOR_SIDE}"
SHARPNESS_SIDE = 128  # short side (px) of the gray image the Laplacian variance is measured on
GRAYSCALE_TOLERANCE = 8  # channel spread (0-255) that JPEG chroma noise can give a gray image
GRAYSCALE_MAX_SHARE = 0.01  # share of pixels allowed above the tolerance (a coloured speck)
IN_PROCESS_LIMIT = 64  # fewer files to compute than this: no process pool (start-up costs more)
FILE_TIME_LIMIT = 60.0  # seconds per file; a decoder stuck longer gives an error row
COMMIT_EVERY_ROWS = 256  # cache commit batch
COMMIT_EVERY_SECONDS = 2.0

_DESCRIPTOR_LENGTH = DESCRIPTOR_SIDE * DESCRIPTOR_SIDE
_EMPTY_DESCRIPTOR = np.zeros(_DESCRIPTOR_LENGTH, dtype=DESCRIPTOR_DTYPE)

# Column -> value of a file that could not be analysed. The order is the output order.
FEATURE_DEFAULTS: dict[str, object] = {
    "file_size": 0,
    "format": "",
    "width": 0,
    "height": 0,
    "mode": "",
    "frames": 0,
    "sha256": "",
    "pixel_digest": "",
    "decode_scale": 0,
    "phash": 0,
    "dhash": 0,
    "phash_inverted": 0,
    "descriptor": _EMPTY_DESCRIPTOR,
    "brightness": 0.0,
    "contrast": 0.0,
    "is_grayscale": False,
    "sharpness": 0.0,
    "entropy": 0.0,
    **empty_profile(),
    "error": "",
}
FEATURE_COLUMNS = tuple(FEATURE_DEFAULTS)
_INTEGER_COLUMNS = ("file_size", "width", "height", "frames", "decode_scale")
_INTEGER_COLUMNS += tuple(c for c in border_columns() if not c.endswith("_color"))
_HASH_COLUMNS = ("phash", "dhash", "phash_inverted")
_FLOAT_COLUMNS = ("brightness", "contrast", "sharpness", "entropy")


# --- the pure part: one decoded image -> feature values -------------------------------------


_LEVELS = np.arange(256, dtype=np.float64)  # gray levels, for statistics of a histogram


def gray_statistics(histogram: Sequence[int]) -> dict:
    """Brightness, contrast and entropy of a gray image from its 256-bin histogram.

    Parameters
    ----------
    histogram : sequence of 256 counts
        PIL's ``Image.histogram()`` of the mode ``L`` image (one C pass over the pixels).

    Returns
    -------
    dict
        ``brightness`` (mean gray, 0-255), ``contrast`` (std of gray, 0-255), ``entropy``
        (bits, 0-8, of the 256-bin gray histogram).
    """
    counts = np.asarray(histogram, dtype=np.float64)
    total = counts.sum()
    mean = float(counts @ _LEVELS / total)
    variance = float(counts @ (_LEVELS - mean) ** 2 / total)
    probabilities = counts[counts > 0] / total
    return {
        "brightness": mean,
        "contrast": math.sqrt(max(variance, 0.0)),
        "entropy": float(-(probabilities * np.log2(probabilities)).sum()),
    }


def is_grayscale(rgb: np.ndarray) -> bool:
    """True when at most ``GRAYSCALE_MAX_SHARE`` of pixels have a channel spread (max - min)
    above ``GRAYSCALE_TOLERANCE``; measured on every other pixel of every other row.

    Parameters
    ----------
    rgb : numpy.ndarray, shape (height, width, 3), uint8

    Notes
    -----
    The first rows of the sample are counted first: a colour image usually exceeds the
    allowed count there, and the rest is then not looked at (the answer cannot change).
    """
    sample = rgb[::2, ::2]
    allowed = GRAYSCALE_MAX_SHARE * sample.shape[0] * sample.shape[1]
    colourful = 0
    first_rows = max(1, sample.shape[0] // 8)
    for block in (sample[:first_rows], sample[first_rows:]):
        red, green, blue = block[..., 0], block[..., 1], block[..., 2]
        spread = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
        colourful += np.count_nonzero(spread > GRAYSCALE_TOLERANCE)
        if colourful > allowed:
            return False
    return True


def resize_short_side(gray_image: Image.Image, side: int = SHARPNESS_SIDE) -> Image.Image:
    """``gray_image`` resized (bilinear, antialiased) so that its short side is ``side`` px."""
    width, height = gray_image.size
    if min(width, height) == side:
        return gray_image
    factor = side / min(width, height)
    size = (max(side, round(width * factor)), max(side, round(height * factor)))
    size = (max(3, size[0]), max(3, size[1]))
    return gray_image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a gray array (float, 0 for tiny arrays).

    Call it on the gray image at a fixed short side (:func:`resize_short_side`): the variance
    depends on scale, so only values at one scale compare. Computed exactly: the Laplacian of
    uint8 values fits int16, its sums are exact in float64.
    """
    values = gray.astype(np.int16)
    laplacian = (
        values[1:-1, :-2] + values[1:-1, 2:] + values[:-2, 1:-1] + values[2:, 1:-1]
    ) - 4 * values[1:-1, 1:-1]
    if not laplacian.size:
        return 0.0
    flat = laplacian.reshape(-1).astype(np.float64)
    mean = flat.sum() / flat.size
    # np.square().sum(), not flat @ flat: a BLAS dot this long wakes OpenBLAS's thread pool,
    # which costs milliseconds on a busy machine.
    return float(max(np.square(flat).sum() / flat.size - mean * mean, 0.0))


def analyse_decoded(decoded: DecodedImage) -> dict:
    """All feature values of one decoded image (every column but ``error``).

    Work per image, each step one C call over the pixels where possible: one copy of the RGB
    pixels (digest, grayscale flag, the border bands), one gray conversion (histogram
    statistics), one bilinear resize of gray to a ``SHARPNESS_SIDE`` px short side (sharpness,
    and the input of the hashes, which shrink to 32x32, 9x8 and 32x32 anyway).
    """
    image = decoded.image
    rgb = np.asarray(image)
    digest = hashlib.sha256(f"{decoded.width}x{decoded.height}/{decoded.decode_scale}:".encode())
    digest.update(rgb)
    gray_image = image.convert("L")
    small_gray = resize_short_side(gray_image)
    values = {
        "file_size": decoded.file_size,
        "format": decoded.format,
        "width": decoded.width,
        "height": decoded.height,
        "mode": decoded.mode,
        "frames": decoded.frames,
        "sha256": decoded.sha256,
        "pixel_digest": digest.hexdigest(),
        "decode_scale": decoded.decode_scale,
    }
    # Images smaller than SHARPNESS_SIDE are hashed as they are, not upscaled.
    values.update(image_hashes(small_gray if min(gray_image.size) > SHARPNESS_SIDE else gray_image))
    values.update(gray_statistics(gray_image.histogram()))
    values["is_grayscale"] = is_grayscale(rgb)
    values["sharpness"] = laplacian_variance(np.asarray(small_gray))
    values.update(profile_borders(rgb, scale=decoded.decode_scale))
    values["error"] = ""
    return {column: values[column] for column in FEATURE_COLUMNS}


# --- one file, never raising ----------------------------------------------------------------


class _TimeLimit(Exception):
    pass


def _raise_time_limit(signum, frame):
    raise _TimeLimit


def error_values(reason: str, *, file_size: int = 0, transient: bool = False) -> dict:
    """The row of a file that could not be analysed (``_transient`` rows are not cached)."""
    values = dict(FEATURE_DEFAULTS)
    values.update(file_size=file_size, error=reason, _transient=transient)
    return values


def analyse_file(path: str | bytes, *, file_size: int = 0, time_limit: float = 0.0) -> dict:
    """Decode ``path`` and compute its features; any failure is an error row, never an exception.

    ``time_limit`` > 0 arms a SIGALRM timer (main thread only) around the work.
    """
    armed = time_limit > 0 and threading.current_thread() is threading.main_thread()
    if armed:
        signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        return analyse_decoded(decode_file(path))
    except DecodeError as error:
        return error_values(error.reason, file_size=file_size, transient=error.transient)
    except _TimeLimit:
        return error_values(
            f"decode timed out after {time_limit:g} s", file_size=file_size, transient=True
        )
    except MemoryError:
        return error_values("out of memory while decoding", file_size=file_size, transient=True)
    except Exception as error:  # one bad file must not stop the run  # noqa: BLE001
        return error_values(
            f"decode failed: {type(error).__name__}: {error}", file_size=file_size, transient=False
        )
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _analyse_chunk(
    jobs: list[tuple[int, str | bytes, int]], time_limit: float
) -> tuple[list[tuple[int, dict]], float]:
    """Worker entry point: analyse ``(position, path, size)`` jobs in order.

    Returns the ``(position, values)`` rows and the CPU seconds this process spent on them.
    """
    started = time.process_time()
    previous = None
    if time_limit > 0 and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGALRM, _raise_time_limit)
    try:
        rows = [
            (
                position,
                analyse_file(
                    path, file_size=size, time_limit=time_limit if previous is not None else 0.0
                ),
            )
            for position, path, size in jobs
        ]
    finally:
        if previous is not None:
            signal.signal(signal.SIGALRM, previous)
    return rows, time.process_time() - started


# --- the table: manifest in, features out ---------------------------------------------------


def _encode_for_cache(values: dict) -> dict:
    encoded = dict(values)
    encoded["descriptor"] = np.asarray(values["descriptor"], dtype=DESCRIPTOR_DTYPE).tobytes()
    encoded["is_grayscale"] = int(bool(values["is_grayscale"]))
    return encoded


def features(
    manifest: pd.DataFrame,
    root: str | os.PathLike,
    *,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    use_cache: bool = True,
    time_limit: float = FILE_TIME_LIMIT,
) -> pd.DataFrame:
    """Add per-image features to a manifest.

    Parameters
    ----------
    manifest : pandas.DataFrame
        From :func:`data.scan`: needs ``path`` (relative to ``root``) and, optionally, ``error``
        (rows already in error are not decoded).
    root : path
        The dataset root the paths are relative to.
    cache_dir : path, optional
        Folder of the SQLite cache; default ``$SPLITSAFE_CACHE`` or ``~/.cache/splitsafe``.
    workers : int, optional
        Processes; default ``os.cpu_count()``. 1, or fewer than ``IN_PROCESS_LIMIT`` files to
        compute, runs in this process.
    progress : bool
        Show a tqdm progress bar on stderr.
    use_cache : bool
        False: neither read nor write the cache.
    time_limit : float
        Seconds per file before it becomes an error row (0: no limit).

    Returns
    -------
    pandas.DataFrame
        A copy of ``manifest`` (same index and columns) plus the columns of
        :data:`FEATURE_COLUMNS` (types in ARCHITECTURE.md). ``attrs["feature_counts"]``:
        ``{"cached", "computed", "errors", "total"}`` for this call; ``attrs["feature_timing"]``:
        ``{"processes"`` (1, or the pool's workers), ``"analysis_cpu_seconds"`` (CPU time the
        analysing processes spent decoding and computing, summed over workers; excludes this
        process's share when a pool ran), ``"wall_seconds"}``, and ``"start_method"`` (``fork``
        or ``forkserver``) when a pool ran.
    """
    if "path" not in manifest.columns:
        raise ValueError(
            f"manifest has columns {list(manifest.columns)}; expected a 'path' column (data.scan)"
        )
    workers = int(workers or os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root_text = os.fsdecode(os.fspath(root))
    relative_paths = [str(path) for path in manifest["path"].tolist()]
    prior_errors = (
        ["" if pd.isna(error) else str(error) for error in manifest["error"].tolist()]
        if "error" in manifest.columns
        else [""] * len(manifest)
    )
    # A row: a dict of feature values, or a cached row (tuple in FEATURE_COLUMNS order, the
    # descriptor as bytes, is_grayscale as 0/1) that _assemble decodes column by column.
    rows: list[dict | tuple | None] = [None] * len(manifest)
    keys: list[tuple[bytes, int, int] | None] = [None] * len(manifest)
    absolute: list[str] = [""] * len(manifest)
    for position, (relative, prior) in enumerate(zip(relative_paths, prior_errors, strict=True)):
        absolute[position] = os.path.abspath(os.path.join(root_text, relative))
        if prior:
            rows[position] = error_values(prior, transient=True)
            continue
        try:
            info = os.stat(absolute[position])
        except OSError as error:
            rows[position] = error_values(os_error_reason(error), transient=True)
            continue
        # path_key(absolute) without a second abspath: absolute is already normalised.
        keys[position] = (os.fsencode(absolute[position]), info.st_size, info.st_mtime_ns)

    cache = (
        open_cache(cache_dir, version=FEATURE_VERSION, columns=FEATURE_COLUMNS)
        if use_cache
        else None
    )
    counts = {"cached": 0, "computed": 0, "errors": 0, "total": len(manifest)}
    timing = {"processes": 1, "analysis_cpu_seconds": 0.0, "wall_seconds": 0.0}
    started = time.perf_counter()
    try:
        if cache is not None:
            found = cache.lookup_rows(key for key in keys if key is not None)
            for position, key in enumerate(keys):
                if key is not None:
                    cached = found.get(key[0])
                    if cached is not None:
                        rows[position] = cached
                        counts["cached"] += 1
        pending = [
            (position, absolute[position], keys[position][1])
            for position in range(len(rows))
            if rows[position] is None
        ]
        for position, values in _compute(
            pending,
            workers=workers,
            progress=progress,
            time_limit=time_limit,
            cache=cache,
            keys=keys,
            timing=timing,
        ):
            rows[position] = values
            counts["computed"] += 1
    finally:
        if cache is not None:
            cache.close()
    table = _assemble(manifest, rows)
    counts["errors"] = int((table["error"] != "").sum())
    table.attrs = dict(manifest.attrs)
    table.attrs["feature_counts"] = counts
    timing["wall_seconds"] = time.perf_counter() - started
    table.attrs["feature_timing"] = timing
    return table


def _compute(pending, *, workers, progress, time_limit, cache, keys, timing):
    """Yield ``(position, values)`` of pending jobs; store finished rows in the cache in batches."""
    if not pending:
        return
    from tqdm.auto import tqdm

    # No monitor thread (a class setting of tqdm's, here on a subclass only): threads make
    # ``fork`` unsafe for later pools (see _pool_context); the monitor only tunes how often a
    # stalled bar redraws. The bar is made once the first rows are in, after the pool forked.
    progress_bar = type("FeaturesProgress", (tqdm,), {"monitor_interval": 0})
    bar = None
    batch: list = []
    last_commit = time.monotonic()

    def flush():
        nonlocal batch, last_commit
        if cache is not None and batch:
            cache.store(batch)
        batch, last_commit = [], time.monotonic()

    try:
        for results, cpu_seconds in _run_chunks(
            pending, workers=workers, time_limit=time_limit, timing=timing
        ):
            timing["analysis_cpu_seconds"] += cpu_seconds
            if bar is None:
                bar = progress_bar(
                    total=len(pending),
                    disable=not progress,
                    file=sys.stderr,
                    unit="img",
                    desc="features",
                )
            for position, values in results:
                transient = values.pop("_transient", False)
                if cache is not None and not transient:
                    batch.append((keys[position], _encode_for_cache(values)))
                yield position, values
            bar.update(len(results))
            if (
                len(batch) >= COMMIT_EVERY_ROWS
                or time.monotonic() - last_commit > COMMIT_EVERY_SECONDS
            ):
                flush()
    finally:
        flush()  # Ctrl-C included: what finished is kept
        if bar is not None:
            bar.close()


def _run_chunks(pending, *, workers: int, time_limit: float, timing: dict):
    """Yield ``(rows, cpu_seconds)`` per chunk of jobs; in this process or in a process pool."""
    if workers == 1 or len(pending) < IN_PROCESS_LIMIT:
        step = 16
        for start in range(0, len(pending), step):
            yield _analyse_chunk(pending[start : start + step], time_limit)
        return
    timing["processes"] = workers
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    chunk = max(4, min(64, len(pending) // (workers * 8) or 1))
    chunks = [pending[start : start + chunk] for start in range(0, len(pending), chunk)]
    context = _pool_context()
    timing["start_method"] = context.get_start_method()
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    finished = False
    try:
        # Bounded submission keeps memory flat and lets Ctrl-C stop quickly.
        waiting = {}
        next_chunk = 0
        while next_chunk < len(chunks) or waiting:
            while next_chunk < len(chunks) and len(waiting) < workers * 3:
                future = executor.submit(_analyse_chunk, chunks[next_chunk], time_limit)
                waiting[future] = chunks[next_chunk]
                next_chunk += 1
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                jobs = waiting.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool:
                    waiting[future] = jobs
                    raise
                except Exception as error:  # noqa: BLE001 - a chunk failing outside analyse_file
                    reason = f"worker failed: {type(error).__name__}: {error}"
                    rows = [
                        (position, error_values(reason, transient=True)) for position, _, _ in jobs
                    ]
                    results = (rows, 0.0)
                yield results
        finished = True
    except BrokenProcessPool:
        # A worker died (killed, or a crash inside a decoder). Rerunning its files here could
        # crash this process too: they become error rows, not cached, so a rerun retries them.
        reason = "worker process died while decoding (a decoder crash or a killed process)"
        remaining = [job for jobs in list(waiting.values()) + chunks[next_chunk:] for job in jobs]
        yield (
            [(position, error_values(reason, transient=True)) for position, _, _ in remaining],
            0.0,
        )
    finally:
        # After a normal end the workers are idle: wait for them, so that no pool thread is
        # left running (the next call can then fork again). On an error or Ctrl-C: don't wait.
        executor.shutdown(wait=finished, cancel_futures=not finished)


def _pool_context():
    """The multiprocessing context of the worker pool: ``fork`` when it is safe, else
    ``forkserver``.

    ``fork`` starts workers in milliseconds and needs no ``__main__`` guard, but a child
    inherits only the forking thread: a lock held by another thread at that moment stays
    locked in the child forever. So it is used only on Linux, when this process runs a single
    Python thread (this module's progress bars start none) and has not imported torch (whose
    native thread pools are invisible to :mod:`threading`). The workers use numpy (OpenBLAS
    re-initialises its threads after a fork), PIL and hashlib only.

    Otherwise ``forkserver``: workers do not inherit this process's threads or locks, and
    preloading this module in the server makes each worker start without re-importing numpy,
    PIL and pandas (the server's own start costs about a second, once per process).
    """
    import multiprocessing

    if (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and "torch" not in sys.modules
    ):
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["data.image_features"])
    return context


def _descriptors(values: list) -> list[np.ndarray]:
    """Descriptor arrays from computed arrays and cached bytes (decoded in one step)."""
    cached = [position for position, value in enumerate(values) if isinstance(value, bytes)]
    if len({len(values[position]) for position in cached}) > 1:  # not from one version
        return [
            np.frombuffer(value, dtype=DESCRIPTOR_DTYPE).copy()
            if isinstance(value, bytes)
            else value
            for value in values
        ]
    if cached:
        stacked = np.frombuffer(b"".join(values[p] for p in cached), dtype=DESCRIPTOR_DTYPE)
        decoded = stacked.reshape(len(cached), -1).copy()  # writable, one block for all rows
        values = list(values)
        for position, descriptor in zip(cached, decoded, strict=True):
            values[position] = descriptor
    return values


def _assemble(manifest: pd.DataFrame, rows: Sequence[dict | tuple]) -> pd.DataFrame:
    table = manifest.copy()
    columns = {}
    tuples = [
        row if isinstance(row, tuple) else tuple(row[name] for name in FEATURE_COLUMNS)
        for row in rows
    ]
    by_column = list(zip(*tuples, strict=True)) if tuples else [()] * len(FEATURE_COLUMNS)
    for name, values in zip(FEATURE_COLUMNS, by_column, strict=True):
        values = list(values)
        if name == "descriptor":
            series = pd.Series(_descriptors(values), index=manifest.index, dtype=object)
        elif name in _HASH_COLUMNS or name in _INTEGER_COLUMNS:
            series = pd.Series(np.asarray(values, dtype=np.int64), index=manifest.index)
        elif name in _FLOAT_COLUMNS:
            series = pd.Series(np.asarray(values, dtype=np.float64), index=manifest.index)
        elif name == "is_grayscale":
            series = pd.Series(np.asarray(values, dtype=bool), index=manifest.index)
        else:
            series = pd.Series(values, index=manifest.index, dtype=object).astype(str)
        columns[name] = series
    for name, series in columns.items():
        if name == "error" and "error" in table.columns:
            prior = ["" if pd.isna(error) else str(error) for error in table["error"].tolist()]
            merged = [old or new for old, new in zip(prior, series.tolist(), strict=True)]
            table["error"] = pd.Series(merged, index=table.index, dtype=str)
        else:
            table[name] = series
    return table
