"""The embedded demo dataset: a drawn stand-in for the original ten-movie project, traps included.

``generate_demo(OUT)`` draws six "movies" (classes), each with a palette, a few
background scenes (sky, hills, ground and a skyline: trees, houses, savanna, ice spires,
sea) and a signature character (a body shape and an accessory). Two are sibling movies of
one studio, ``sky-castle`` and ``forest-spirit``: same palette and skyline, only their
characters differ, so the border lines of trap (a) are the easiest cue between them.
A scene is a run of frames with small motion, a camera pan plus the
character walking and bobbing, so consecutive frames are near-duplicates, as frames taken
every 2 s from a film are. Beside the frames come a few "internet" images: pencil sketches of
the characters (grayscale) and fan art in other palettes and sizes, each with a composition of
its own (``origin=internet``). The drawing is in data/demo_drawing.py (movies, scenes,
characters) and data/demo_internet.py (sketches, fan art); this module plants the traps.

The traps the original project fell into are planted:

(a) border lines
    Every frame of ``sky-castle`` has a thin dark line (:data:`BORDER_LINE_WIDTH` px wide,
    :data:`BORDER_LINE_OFFSET` px inside each edge); no other class has one. Its sibling
    ``forest-spirit`` looks the same but for the character, so a model learns to tell them
    apart by the lines (benchmarks/results/gradcam.md, "Edge-focus proof").
(b) scene leak
    Images were split at random, one by one (20% valid), so frames of one scene sit in
    both train and valid.
(c) upsampled internet images, lineage leak
    Each internet image was upsampled with the six scikit-image operations of
    :mod:`data.upsample` (x7). The copies were split at random too, so some copies sit in
    valid, and copies of one source sit on both sides.
(d) class imbalance
    Movies have 8, 7, 6, 5, 4 and 2 scenes (default sizes), so the largest class has about
    four times the images of the smallest.

Layout::

    OUT/movies/train/<movie>/*.jpg
    OUT/movies/valid/<movie>/*.jpg
    OUT/movies/splitsafe-lineage.csv   group = "<movie>/scene-NN" for frames, parent for copies
    OUT/movies/splitsafe.toml          the dataset's thresholds (metadata_ignore: see DEMO_SETTINGS)
    OUT/PLANTED.md                     what was planted where (outside the dataset folder)

Output is byte-for-byte the same for the same seed and options.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from data.demo_drawing import (
    BORDER_LINE_COLOR,
    BORDER_LINE_OFFSET,
    BORDER_LINE_WIDTH,
    MOVIES,
    Movie,
    draw_scene_frames,
)
from data.demo_internet import draw_internet_image
from data.lineage import append_lineage
from data.settings import DATASET_CONFIG_NAME
from data.upsample import OPERATIONS, augment, copy_path, operation_seed

DATASET_NAME = "movies"
PLANTED_NAME = "PLANTED.md"
# The dataset's own thresholds (data/settings.py). Each movie has its palette and its drawing,
# so brightness, contrast and JPEG size carry the movie by design: content, not a shortcut.
DEMO_SETTINGS = """\
# splitsafe thresholds for this dataset (see data/settings.py for every key)
# Each movie has its own palette and drawing: brightness, contrast and file size are content here.
metadata_ignore = ["brightness", "contrast", "file_size"]
"""
JPEG_QUALITY = 90  # high enough that a 2-px dark line survives compression at 160x96
JPEG_SUBSAMPLING = (
    0  # 4:4:4: no chroma blur, so the line stays one uniform colour (see data/borders.py)
)
VALID_SHARE = 0.2  # the random, image-by-image split of trap (b)
INTERNET_SHARE = 0.07  # internet images per frame: the original project's 7%
SECONDS_PER_FRAME = 2.0  # the original project took one frame every 2 s
BORDERED_MOVIE = "sky-castle"  # trap (a)
MIN_SCENES = 2  # per movie: a split by scene can then put one in valid and keep one in train
# --small: a few hundred images, still 2 scenes of the smallest movie and imbalance >= 3 (trap d)
SMALL_OPTIONS = {"frames_per_scene": 6, "scenes_per_movie": 8}
# Names other modules and tests import from here; the drawing lives in data/demo_drawing.py.
__all__ = [
    "BORDER_LINE_COLOR",
    "BORDER_LINE_OFFSET",
    "BORDER_LINE_WIDTH",
    "BORDERED_MOVIE",
    "MOVIES",
    "SMALL_OPTIONS",
    "Movie",
    "describe_traps",
    "generate_demo",
    "scene_counts",
]


def scene_counts(scenes_per_movie: int) -> dict[str, int]:
    """Scenes per movie: ``scenes_per_movie`` scaled by each movie's share (trap d), at least
    :data:`MIN_SCENES` (a split by scene needs one scene for valid and one for train)."""
    return {m.name: max(MIN_SCENES, round(scenes_per_movie * m.scene_share)) for m in MOVIES}


def generate_demo(
    out: str | Path,
    *,
    seed: int = 0,
    frames_per_scene: int = 40,
    scenes_per_movie: int = 8,
    size: tuple[int, int] = (160, 96),
    internet_share: float = INTERNET_SHARE,
    valid_share: float = VALID_SHARE,
) -> Path:
    """Draw the demo dataset into ``out/movies`` and describe the traps in ``out/PLANTED.md``.

    Parameters
    ----------
    out : path
        Folder to write into; ``out/movies`` must not exist or be empty.
    seed : int
        Same seed and options, same bytes.
    frames_per_scene, scenes_per_movie : int
        Frames per scene; scenes of the largest movie (others have fewer, trap d).
        Defaults give about 1,900 images; ``--small`` uses 6 and 8 (about 300).
    size : (width, height)
        Frame size in px (160x96: fast to train on a CPU, big enough for a 2-px line).
    internet_share : float
        Internet images per frame, per movie (at least 1 per movie), before upsampling.
    valid_share : float
        Share of images put in ``valid`` by the image-by-image random split (trap b).

    Returns
    -------
    pathlib.Path
        ``out/movies``.
    """
    width, height = size
    if width < 32 or height < 32 or frames_per_scene < 2 or scenes_per_movie < 1:
        raise ValueError(
            "demo needs size >= 32x32, frames_per_scene >= 2, scenes_per_movie >= 1; got "
            f"size={width}x{height}, frames_per_scene={frames_per_scene}, "
            f"scenes_per_movie={scenes_per_movie}"
        )
    out = Path(out)
    root = out / DATASET_NAME
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} exists and is not empty; choose another OUT or remove it first")
    items = _draw_items(
        seed, frames_per_scene, scene_counts(scenes_per_movie), size, internet_share
    )
    split_rng = np.random.default_rng([seed, 2])
    splits = np.where(split_rng.uniform(size=len(items)) < valid_share, "valid", "train")
    splits = _ensure_traps(items, splits)
    for item, split in zip(items, splits, strict=True):
        item["path"] = f"{split}/{item['label']}/{item['name']}"
    rows = []
    by_key = {item["key"]: item for item in items}
    for item in items:
        target = root / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        item["image"].save(
            target, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING
        )
        parent = by_key[item["parent_key"]]["path"] if item["parent_key"] else ""
        rows.append(
            {
                "path": item["path"],
                "parent": parent,
                "group": item["group"],
                "origin": item["origin"],
                "operation": item["operation"],
                "source": item["source"],
                "time": item["time"],
            }
        )
    lineage = pd.DataFrame(rows)
    append_lineage(root, lineage)
    (root / DATASET_CONFIG_NAME).write_text(DEMO_SETTINGS)
    (out / PLANTED_NAME).write_text(
        describe_traps(lineage.assign(label=[i["label"] for i in items], split=list(splits)))
    )
    return root


def _draw_items(seed, frames_per_scene, counts, size, internet_share) -> list[dict]:
    items = []
    for movie_index, movie in enumerate(MOVIES):
        frame_number = 0
        for scene in range(counts[movie.name]):
            rng = np.random.default_rng([seed, 0, movie_index, scene])
            images = draw_scene_frames(
                movie,
                frames=frames_per_scene,
                size=size,
                bordered=movie.name == BORDERED_MOVIE,
                rng=rng,
            )
            for image in images:
                frame_number += 1
                items.append(
                    {
                        "key": f"{movie.name}/f{frame_number}",
                        "label": movie.name,
                        "name": f"{movie.name}-{frame_number:05d}.jpg",
                        "image": image,
                        "group": f"{movie.name}/scene-{scene + 1:02d}",
                        "origin": "frame",
                        "operation": "frame",
                        "source": f"drawn:{movie.name}",
                        "time": (frame_number - 1) * SECONDS_PER_FRAME,
                        "parent_key": "",
                    }
                )
        internet = max(1, round(internet_share * frame_number))
        for number in range(internet):
            rng = np.random.default_rng([seed, 1, movie_index, number])
            image = draw_internet_image(movie, rng)
            kind = "sketch" if image.mode == "L" else "fanart"
            name = f"web-{movie.name}-{kind}-{number + 1:03d}.jpg"
            key = f"{movie.name}/web{number}"
            items.append(
                {
                    "key": key,
                    "label": movie.name,
                    "name": name,
                    "image": image,
                    "group": "",
                    "origin": "internet",
                    "operation": "drawn",
                    "source": "",
                    "time": float("nan"),
                    "parent_key": "",
                }
            )
            pixels = np.asarray(image)
            for operation in OPERATIONS:  # trap c: the original project's x7 upsampling
                copy = augment(pixels, operation, seed=operation_seed(seed, name, operation))
                items.append(
                    {
                        "key": f"{key}/{operation}",
                        "label": movie.name,
                        "name": copy_path(name, operation),
                        "image": Image.fromarray(copy),
                        "group": "",
                        "origin": "internet",
                        "operation": operation,
                        "source": "",
                        "time": float("nan"),
                        "parent_key": key,
                    }
                )
    return items


def _ensure_traps(items, splits) -> np.ndarray:
    """Make sure traps (b) and (c) show even at tiny sizes: move one image to valid if needed."""
    splits = splits.copy()
    frames = [i for i, item in enumerate(items) if item["origin"] == "frame"]
    first_scene = [i for i in frames if items[i]["group"] == items[frames[0]]["group"]]
    if len({splits[i] for i in first_scene}) < 2:
        splits[first_scene[-1]] = "valid" if splits[first_scene[0]] == "train" else "train"
    copies = [i for i, item in enumerate(items) if item["parent_key"]]
    if not any(splits[i] == "valid" for i in copies):
        splits[copies[0]] = "valid"
    return splits


def describe_traps(table: pd.DataFrame) -> str:
    """PLANTED.md: what was planted where, with counts taken from the written lineage."""
    frames = table[table["origin"] == "frame"]
    scene_splits = frames.groupby("group")["split"].nunique()
    crossing = sorted(scene_splits[scene_splits > 1].index)
    copies = table[table["parent"] != ""]
    copies_valid = copies[copies["split"] == "valid"]
    parent_split = dict(zip(table["path"], table["split"], strict=True))
    mixed_sources = copies.groupby("parent")["split"].agg(set)
    mixed = [p for p, s in mixed_sources.items() if len(s | {parent_split[p]}) > 1]
    counts = table.groupby(["split", "label"]).size().unstack(0).fillna(0).astype(int)
    lines = [
        "# Planted traps in the splitsafe demo dataset (`movies/`)",
        "",
        f"Generated by `python -m data demo`: {len(table)} images, {len(frames)} frames in "
        f"{frames['group'].nunique()} scenes, "
        f"{int((table['origin'] == 'internet').sum() - len(copies))} internet images and "
        f"{len(copies)} augmented copies.",
        "",
        f"(a) Border lines: every frame of `{BORDERED_MOVIE}` has a dark line "
        f"{BORDER_LINE_WIDTH} px wide, {BORDER_LINE_OFFSET} px inside each edge "
        f"({int((frames['label'] == BORDERED_MOVIE).sum())} frames); no other class has one.",
        f"(b) Scene leak: images were split one by one at random ({VALID_SHARE:.0%} valid); "
        f"{len(crossing)} of {frames['group'].nunique()} scenes have frames in both train and "
        f"valid, e.g. {', '.join(crossing[:3])}.",
        f"(c) Upsampled internet images: each internet image has six augmented copies "
        f"({', '.join(OPERATIONS)}); {len(copies_valid)} copies sit in valid and {len(mixed)} "
        "sources have copies on both sides of the split (a lineage leak).",
        f"(d) Class imbalance: images per class and split (largest/smallest in train: "
        f"{counts['train'].max() / max(counts['train'].min(), 1):.1f}):",
        "",
        "| class | train | valid |",
        "|---|---|---|",
    ]
    for label, row in counts.iterrows():
        lines.append(f"| {label} | {row.get('train', 0)} | {row.get('valid', 0)} |")
    return "\n".join(lines) + "\n"


def run(args) -> int:
    started = time.perf_counter()
    options = dict(SMALL_OPTIONS) if args.small else {}
    if args.frames_per_scene:
        options["frames_per_scene"] = args.frames_per_scene
    if args.scenes_per_movie:
        options["scenes_per_movie"] = args.scenes_per_movie
    root = generate_demo(args.out, seed=args.seed, **options)
    print((Path(args.out) / PLANTED_NAME).read_text(), end="")
    print(
        f"\nwrote {root} and {Path(args.out) / PLANTED_NAME} in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


def register_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate the demo dataset (drawn movie frames with the original project's traps)",
        description="Draw a stand-in for the original ten-movie dataset into OUT/movies "
        "(train/valid/<movie>/*.jpg and splitsafe-lineage.csv), with four planted traps: "
        "border lines on one movie, frames of one scene in both splits, upsampled internet "
        "images with copies in valid, class imbalance. OUT/PLANTED.md says where they are.",
    )
    parser.add_argument("out", help="folder to write into (OUT/movies must not exist or be empty)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0); same seed, same bytes"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="a few hundred images (6 frames per scene, 8 scenes) for tests",
    )
    parser.add_argument(
        "--frames-per-scene",
        type=int,
        default=None,
        help="frames per scene (default 40, --small 6)",
    )
    parser.add_argument(
        "--scenes-per-movie",
        type=int,
        default=None,
        help="scenes of the largest movie (default 8, --small 8)",
    )
    parser.set_defaults(run=run)
