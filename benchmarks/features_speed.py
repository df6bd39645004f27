"""Speed of the features step on 700x400 JPEG frames, side by side in one run.

Measures, on the same generated files:

1. plain full decode, ``Image.open(f).load()`` (the floor);
2. ``imagehash.phash(Image.open(f))`` alone;
3. ``data.features`` in one process, no cache (every feature, one decode per image);
4. ``data.features`` with a process pool (``--workers``, default ``os.cpu_count()``), no cache;
5. ``data.features`` warm rerun (every row from the cache);
6. a warm rerun over ``--warm-count`` (default 50,000) cached images. Those files are
   hard links to the N generated frames under new names (each name is its own cache key), and
   the cache rows for the links are written directly with ``FeatureCache.store`` (the rows
   ``features`` itself would store), so that filling the cache does not take minutes; the
   timed part is the real warm rerun: 50,000 ``stat`` calls, one bulk SELECT, the table.

Frames are drawn scenes (sky gradient, hills, shapes, outlines, mild grain) saved at JPEG
quality 90: about 30-45 KB each, like frames of an animated film at this size.

Times are wall clock (best of ``--repeat``) and process CPU time for the single-process
rows; the machine may be shared, so read the ratios, which are measured side by side.

Usage::

    python benchmarks/features_speed.py --count 300 --warm-count 50000
    python benchmarks/features_speed.py --count 50 --warm-count 2000   # quick check
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


def best_time(function, *, repeat: int) -> tuple[float, float]:
    """(best wall seconds, CPU seconds of that run) over ``repeat`` runs."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        result = (time.perf_counter() - wall, time.process_time() - cpu)
        best = min(best, result)
    return best


def run(count: int, warm_count: int, workers: int, repeat: int, output: Path | None) -> str:
    import imagehash

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

        rows = []

        def measure(name, function, *, repeat=repeat):
            wall, cpu = best_time(function, repeat=repeat)
            rows.append((name, wall, cpu))
            print(f"{name}: {count / wall:.0f} images/s", file=sys.stderr)

        measure(
            "plain full decode `Image.open(f).load()`",
            lambda: [Image.open(p).load() for p in paths],
        )
        measure(
            "`imagehash.phash(Image.open(f))`",
            lambda: [imagehash.phash(Image.open(p)) for p in paths],
        )
        measure(
            "splitsafe features, 1 process, no cache",
            lambda: data.features(manifest, root, workers=1, use_cache=False, progress=False),
        )
        measure(
            f"splitsafe features, {workers} workers, no cache",
            lambda: data.features(manifest, root, workers=workers, use_cache=False, progress=False),
        )
        cache_dir = folder / "cache"
        computed = data.features(manifest, root, workers=1, cache_dir=cache_dir, progress=False)
        measure(
            "splitsafe features, warm rerun (cached)",
            lambda: data.features(manifest, root, workers=1, cache_dir=cache_dir, progress=False),
        )

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

    floor = rows[0][1]
    phash_rate = count / rows[1][1]
    lines = [
        f"# Features speed: {count} drawn 700x400 JPEG frames "
        f"(q90, mean {np.mean(sizes) / 1024:.0f} KB)",
        "",
        f"Python {sys.version.split()[0]}, Pillow {Image.__version__}, {os.cpu_count()} CPU cores; "
        f"best of {repeat}; wall clock (CPU time of this process in brackets: the pool's "
        "workers are not in it).",
        "",
        "| step | images/s | time vs full decode | speed vs imagehash.phash "
        "| CPU time vs full decode | wall s (cpu s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    cpu_floor = rows[0][2]
    for name, wall, cpu in rows:
        cpu_ratio = "n/a (workers)" if "workers" in name else f"{cpu / cpu_floor:.2f}x"
        lines.append(
            f"| {name} | {count / wall:,.0f} | {wall / floor:.2f}x "
            f"| {count / wall / phash_rate:.2f}x | {cpu_ratio} | {wall:.3f} ({cpu:.3f}) |"
        )
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
    parser.add_argument("--count", type=int, default=300, help="frames generated (default 300)")
    parser.add_argument(
        "--warm-count", type=int, default=50_000, help="cached images for the warm test"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "features.md"
    )
    args = parser.parse_args(argv)
    print(run(args.count, args.warm_count, args.workers, args.repeat, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
