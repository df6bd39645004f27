"""Speed of the features step on 700x400 JPEG frames, side by side in one run.

Measures, on the same generated files, interleaved (one pass over every step per round, best
of ``--repeat`` rounds, so that a change in the machine's load hits every step alike):

1. plain full decode, ``Image.open(f).load()`` (the floor; each image is dropped before the
   next is decoded, as a real loop does: keeping them all alive would add page-fault time);
2. ``imagehash.phash(Image.open(f))`` alone;
3. ``data.features`` in one process, no cache (every feature, one decode per image);
4. ``data.features`` with a process pool (``--workers``, default ``os.cpu_count()``), no cache;
   its first call, which starts the pool (forkserver and worker start-up), is a row of its own;
5. ``data.features`` warm rerun (every row from the cache);
6. a warm rerun over ``--warm-count`` (default 50,000) cached images. Those files are
   hard links to the N generated frames under new names (each name is its own cache key), and
   the cache rows for the links are written directly with ``FeatureCache.store`` (the rows
   ``features`` itself would store), so that filling the cache does not take minutes; the
   timed part is the real warm rerun: 50,000 ``stat`` calls, one bulk SELECT, the table.

Frames are drawn scenes (sky gradient, hills, shapes, outlines, mild grain) saved at JPEG
quality 90: about 50 KB each, like frames of an animated film at this size.

Times: wall clock and CPU time. CPU time is this process's ``time.process_time()`` plus, for
the pool rows, the CPU time the workers report for their chunks (``attrs["feature_timing"]``);
on a shared machine CPU time is the steadier measure of the work per image, and the wall time
of the pool on an idle machine is about its CPU time divided by the workers.

Usage::

    python benchmarks/features_speed.py --count 500 --warm-count 50000
    python benchmarks/features_speed.py --count 80 --warm-count 2000 --repeat 2 --output -
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAME_SIZE = (700, 400)


def draw_scene(random: np.random.Generator) -> Image.Image:
    """One 700x400 drawn scene: sky gradient, hills, shapes with outlines, grain."""
    width, height = FRAME_SIZE
    top, bottom = random.integers(0, 256, 3), random.integers(0, 256, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    sky = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    image = Image.fromarray(np.repeat(sky, width, axis=1))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        base = int(random.integers(height // 2, height))
        points = [(0, height)] + [
            (x, base - int(random.integers(0, 120))) for x in range(0, width + 70, 70)
        ]
        points.append((width, height))
        draw.polygon(points, fill=tuple(int(c) for c in random.integers(0, 256, 3)))
    for _ in range(int(random.integers(6, 14))):
        x, y = int(random.integers(0, width)), int(random.integers(0, height))
        w, h = int(random.integers(15, 160)), int(random.integers(15, 160))
        colour = tuple(int(c) for c in random.integers(0, 256, 3))
        shape = draw.ellipse if random.random() < 0.5 else draw.rectangle
        shape([x, y, x + w, y + h], fill=colour, outline=(20, 20, 20), width=2)
    image = image.filter(ImageFilter.GaussianBlur(0.7))
    grain = random.normal(0, 3.0, (height, width, 1))
    pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def make_frames(folder: Path, count: int, *, seed: int = 0) -> list[Path]:
    random = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / "train" / f"class{index % 5}" / f"frame{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw_scene(random).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def measure_steps(steps, *, repeat: int) -> dict:
    """Run every step once per round, ``repeat`` rounds; best wall and best CPU per step.

    Each step returns ``None`` or a features table, whose ``attrs["feature_timing"]`` gives
    the CPU seconds of pool workers (added to this process's CPU time).
    """
    best = {name: (float("inf"), float("inf")) for name, _ in steps}
    for _ in range(repeat):
        for name, function in steps:
            wall, cpu = run_once(function)
            best[name] = (min(best[name][0], wall), np.fmin(best[name][1], cpu))
            print(f"  {name}: {wall:.3f} s wall, {cpu:.3f} s CPU", file=sys.stderr)
    return best


def run_once(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and of any pool workers) of one call.

    A features table without ``attrs["feature_timing"]`` (code before it existed) that was
    computed by a pool gives CPU ``nan``: its workers' CPU time is unknown.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    attrs = getattr(result, "attrs", {})
    if "feature_timing" in attrs:
        if attrs["feature_timing"]["processes"] > 1:
            cpu += attrs["feature_timing"]["analysis_cpu_seconds"]
    elif attrs.get("benchmark_pool"):
        cpu = float("nan")
    return wall, cpu


def decode_all(paths) -> None:
    for path in paths:
        Image.open(path).load()


def phash_all(paths) -> None:
    import imagehash

    for path in paths:
        imagehash.phash(Image.open(path))


def step_breakdown(paths, *, repeat: int) -> list[tuple[str, float]]:
    """CPU ms per image of each step of ``analyse_decoded`` (best of ``repeat``)."""
    import hashlib

    from data.borders import profile_borders
    from data.decode import decode_file
    from data.hashing import image_hashes
    from data.image_features import (
        gray_statistics,
        is_grayscale,
        laplacian_variance,
        resize_short_side,
    )

    # Inputs of each step computed once; each timed step drops its results as it goes, as
    # analyse_decoded does (keeping 200 results alive would time page faults, not the step).
    decoded = [decode_file(path) for path in paths]
    rgbs = [np.asarray(item.image) for item in decoded]
    grays = [item.image.convert("L") for item in decoded]
    smalls = [resize_short_side(gray) for gray in grays]

    def each(function, items):
        def run_each():
            for item in items:
                function(item)

        return run_each

    parts = [
        ("read + SHA-256 + JPEG draft decode (data.decode.decode_file)", each(decode_file, paths)),
        ("RGB pixels to numpy (one copy)", each(lambda item: np.asarray(item.image), decoded)),
        ("pixel digest (SHA-256 of the RGB pixels)", each(lambda a: hashlib.sha256(a), rgbs)),
        ("gray conversion", each(lambda item: item.image.convert("L"), decoded)),
        ("gray histogram statistics", each(lambda g: gray_statistics(g.histogram()), grays)),
        ("grayscale flag", each(is_grayscale, rgbs)),
        ("resize gray to 128 px short side", each(resize_short_side, grays)),
        (
            "sharpness (Laplacian variance)",
            each(lambda g: laplacian_variance(np.asarray(g)), smalls),
        ),
        ("hashes + descriptor (data.hashing.image_hashes)", each(image_hashes, smalls)),
        (
            "border profile",
            each(
                lambda item: profile_borders(np.asarray(item.image), scale=item.decode_scale),
                decoded,
            ),
        ),
    ]

    rows = []
    for name, function in parts:
        best = float("inf")
        for _ in range(repeat):
            cpu = time.process_time()
            function()
            best = min(best, time.process_time() - cpu)
        rows.append((name, best / len(paths) * 1000))
    return rows


def run(
    count: int,
    warm_count: int,
    workers: int,
    repeat: int,
    output: Path | None,
    command: str,
    *,
    with_breakdown: bool = True,
) -> str:
    import data
    from data.cache import FeatureCache, path_key
    from data.image_features import FEATURE_COLUMNS, FEATURE_VERSION, _encode_for_cache

    with tempfile.TemporaryDirectory(prefix="splitsafe-bench-") as temporary:
        folder = Path(temporary)
        root = folder / "frames"
        paths = make_frames(root, count)
        sizes = [p.stat().st_size for p in paths]
        manifest = data.scan(root)
        # Warm the OS file cache and imports once so that every row reads from memory.
        for path in paths:
            path.read_bytes()
        data.features(manifest.head(2), root, use_cache=False, workers=1, progress=False)
        phash_all(paths[:2])
        load_before = os.getloadavg()

        def features_step(processes):
            def step():
                table = data.features(
                    manifest, root, workers=processes, use_cache=False, progress=False
                )
                table.attrs["benchmark_pool"] = processes > 1
                return table

            return step

        pool_name = f"splitsafe features, {workers} workers, no cache"
        first_pool = run_once(features_step(workers))  # starts the forkserver and workers
        cache_dir = folder / "cache"
        computed = data.features(manifest, root, workers=1, cache_dir=cache_dir, progress=False)
        steps = [
            ("plain full decode `Image.open(f).load()`", lambda: decode_all(paths)),
            ("`imagehash.phash(Image.open(f))`", lambda: phash_all(paths)),
            ("splitsafe features, 1 process, no cache", features_step(1)),
            (pool_name, features_step(workers)),
            (
                "splitsafe features, warm rerun (cached)",
                lambda: data.features(
                    manifest, root, workers=1, cache_dir=cache_dir, progress=False
                ),
            ),
        ]
        best = measure_steps(steps, repeat=repeat)
        breakdown = (
            step_breakdown(paths[: min(count, 200)], repeat=repeat) if with_breakdown else []
        )
        load_after = os.getloadavg()

        # 50,000 names: hard links to the frames, cache rows written directly (see docstring).
        many_root = folder / "many"
        values = [
            _encode_for_cache(row) for row in computed[list(FEATURE_COLUMNS)].to_dict("records")
        ]
        records = []
        for index in range(warm_count):
            source = paths[index % count]
            target = many_root / "train" / f"class{index % 5}" / f"image {index:06d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
            info = target.stat()
            records.append(
                ((path_key(target), info.st_size, info.st_mtime_ns), values[index % count])
            )
        with FeatureCache(cache_dir, version=FEATURE_VERSION, columns=FEATURE_COLUMNS) as cache:
            for start in range(0, len(records), 5000):
                cache.store(records[start : start + 5000])
        many_manifest = data.scan(many_root)
        wall = time.perf_counter()
        warm = data.features(
            many_manifest, many_root, workers=1, cache_dir=cache_dir, progress=False
        )
        warm_seconds = time.perf_counter() - wall
        assert warm.attrs["feature_counts"]["cached"] == warm_count, warm.attrs["feature_counts"]

    rows = [(name, *best[name]) for name, _ in steps]
    rows.insert(4, (f"{pool_name}, first call (starts the pool)", *first_pool))
    floor_wall, floor_cpu = rows[0][1], rows[0][2]
    phash_wall, phash_cpu = rows[1][1], rows[1][2]
    lines = [
        f"# Features speed: {count} drawn 700x400 JPEG frames "
        f"(q90, mean {np.mean(sizes) / 1024:.0f} KB)",
        "",
        f"Command: `{command}`  ",
        f"Python {sys.version.split()[0]}, Pillow {Image.__version__}, {os.cpu_count()} CPU cores; "
        f"load average (1, 5, 15 min) {load_before[0]:.2f}, {load_before[1]:.2f}, "
        f"{load_before[2]:.2f} before the timed rounds and {load_after[0]:.2f}, "
        f"{load_after[1]:.2f}, {load_after[2]:.2f} after. Best of {repeat} interleaved rounds "
        "(wall and CPU each). CPU = this process + the pool workers' reported CPU time.",
        "",
        "| step | images/s (wall) | wall vs full decode | images/s vs phash (wall) "
        "| CPU ms/image | CPU vs full decode | images/s vs phash (CPU) | wall s | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, wall, cpu in rows:
        if np.isfinite(cpu):
            cpu_columns = (
                f"{cpu / count * 1000:.3f} | {cpu / floor_cpu:.2f}x | {phash_cpu / cpu:.2f}x "
                f"| {wall:.3f} | {cpu:.3f}"
            )
        else:  # a pool run of code that does not report its workers' CPU time
            cpu_columns = f"n/a | n/a | n/a | {wall:.3f} | n/a"
        lines.append(
            f"| {name} | {count / wall:,.0f} | {wall / floor_wall:.2f}x "
            f"| {phash_wall / wall:.2f}x | {cpu_columns} |"
        )
    if breakdown:
        lines += [
            "",
            "Where the single-process CPU time goes (ms per image, best of "
            f"{repeat}, {min(count, 200)} frames, each step on its own):",
            "",
            "| step | CPU ms/image |",
            "|---|---:|",
            *[f"| {name} | {milliseconds:.3f} |" for name, milliseconds in breakdown],
        ]
    lines += [
        "",
        f"Warm rerun over {warm_count:,} cached images (hard links to the frames, cache rows "
        f"written directly): **{warm_seconds:.2f} s** ({warm_count / warm_seconds:,.0f} images/s), "
        "target < 5 s.",
        "",
        "Targets: features >= 2x imagehash.phash's images/s; features time within 1.3x of the "
        "full decode.",
    ]
    text = "\n".join(lines) + "\n"
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=500, help="frames generated (default 500)")
    parser.add_argument(
        "--warm-count", type=int, default=50_000, help="cached images for the warm test"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--output",
        default=str(Path(__file__).parent / "results" / "features.md"),
        help="Markdown file for the results ('-': print only)",
    )
    parser.add_argument(
        "--no-breakdown", action="store_true", help="skip the per-step CPU breakdown table"
    )
    args = parser.parse_args(argv)
    output = None if args.output == "-" else Path(args.output)
    command = " ".join(["python benchmarks/features_speed.py", *(argv or sys.argv[1:])])
    print(
        run(
            args.count,
            args.warm_count,
            args.workers,
            args.repeat,
            output,
            command,
            with_breakdown=not args.no_breakdown,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
