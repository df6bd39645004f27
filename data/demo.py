"""The embedded demo dataset: a drawn stand-in for the original ten-movie project, traps included.

``generate_demo(OUT)`` draws six "movies" (classes), each with its own palette, a few
background scenes (sky, hills, ground and a movie-specific skyline: towers, trees,
houses, savanna, ice spires, sea) and a signature character (a body shape and an
accessory). A scene is a run of frames with small motion, a camera pan plus the
character walking and bobbing, so consecutive frames are near-duplicates, as frames taken
every 2 s from a film are. Beside the frames come a few "internet" images: grayscale line
drawings of the characters and fan art in other palettes and sizes (``origin=internet``).

The traps the original project fell into are planted:

(a) border lines
    Every frame of ``sky-castle`` has a thin dark line (:data:`BORDER_LINE_WIDTH` px wide,
    :data:`BORDER_LINE_OFFSET` px inside each edge); no other class has one. A model can
    classify that movie by the lines alone.
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

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

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
BORDER_LINE_WIDTH = 2  # px, the planted line (trap a)
BORDER_LINE_OFFSET = 4  # px from each edge to the line (even: aligned with JPEG 2x2 blocks)
BORDER_LINE_COLOR = (14, 12, 16)
VALID_SHARE = 0.2  # the random, image-by-image split of trap (b)
INTERNET_SHARE = 0.07  # internet images per frame: the original project's 7%
SECONDS_PER_FRAME = 2.0  # the original project took one frame every 2 s


@dataclass(frozen=True)
class Movie:
    """One class: its palette, skyline style, signature character and relative size."""

    name: str
    sky: tuple[tuple[int, int, int], tuple[int, int, int]]  # top, horizon
    hills: tuple[int, int, int]
    ground: tuple[int, int, int]
    skyline: str  # towers, trees, houses, savanna, spires, sea
    skyline_color: tuple[int, int, int]
    body: str  # tall, round, blob, cone, diamond, star
    body_color: tuple[int, int, int]
    accessory: str  # antenna, leaf, bow, mane, crown, flower
    accessory_color: tuple[int, int, int]
    scene_share: float  # share of scenes_per_movie (trap d)


MOVIES = (
    Movie(
        "sky-castle",
        ((96, 150, 222), (205, 228, 246)),
        (86, 128, 84),
        (120, 150, 80),
        "towers",
        (150, 138, 118),
        "tall",
        (178, 92, 60),
        "antenna",
        (240, 200, 40),
        1.0,
    ),
    Movie(
        "forest-spirit",
        ((120, 170, 150), (210, 230, 200)),
        (48, 104, 56),
        (72, 118, 52),
        "trees",
        (30, 80, 40),
        "round",
        (120, 122, 128),
        "leaf",
        (70, 170, 60),
        0.875,
    ),
    Movie(
        "spirit-bathhouse",
        ((70, 40, 90), (236, 140, 100)),
        (90, 60, 70),
        (110, 80, 60),
        "houses",
        (176, 52, 44),
        "blob",
        (30, 28, 34),
        "bow",
        (250, 250, 250),
        0.75,
    ),
    Movie(
        "lion-pride",
        ((230, 150, 70), (250, 220, 140)),
        (190, 150, 80),
        (200, 170, 90),
        "savanna",
        (110, 80, 40),
        "cone",
        (214, 150, 60),
        "mane",
        (140, 70, 20),
        0.625,
    ),
    Movie(
        "ice-palace",
        ((150, 190, 240), (235, 245, 255)),
        (200, 220, 240),
        (230, 240, 250),
        "spires",
        (140, 180, 230),
        "diamond",
        (90, 150, 220),
        "crown",
        (250, 210, 60),
        0.5,
    ),
    Movie(
        "ocean-voyage",
        ((40, 150, 200), (170, 225, 235)),
        (40, 120, 90),
        (30, 110, 160),
        "sea",
        (230, 210, 150),
        "star",
        (150, 90, 50),
        "flower",
        (240, 60, 120),
        0.25,
    ),
)
BORDERED_MOVIE = "sky-castle"
INTERNET_SIZES = ((160, 96), (128, 128), (120, 160), (200, 120), (144, 108))


def _mix(color_a, color_b, share):
    return tuple(int(round(a + (b - a) * share)) for a, b in zip(color_a, color_b, strict=True))


def draw_panorama(movie: Movie, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one scene's background, wider than a frame so the camera can pan.

    Returns
    -------
    numpy.ndarray
        ``uint8``, shape ``(height, width, 3)``.
    """
    dusk = rng.uniform(0.0, 0.35)  # time of day: tints the whole scene
    tint = np.array(_mix((255, 255, 255), (255, 170, 120), dusk), dtype=np.float32) / 255
    top, bottom = np.array(movie.sky[0], np.float32), np.array(movie.sky[1], np.float32)
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None] ** rng.uniform(0.6, 1.4)
    canvas = np.broadcast_to(top + (bottom - top) * rows, (height, width, 3)).copy()
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    horizon = int(height * rng.uniform(0.5, 0.72))
    # the sun or moon, clouds
    sun_x, sun_r = rng.uniform(0, width), rng.uniform(4, 9)
    sun_y = rng.uniform(6, horizon * 0.5)
    draw.ellipse([sun_x - sun_r, sun_y - sun_r, sun_x + sun_r, sun_y + sun_r], fill=(255, 244, 200))
    for _ in range(rng.integers(1, 5)):
        cx, cy = rng.uniform(0, width), rng.uniform(4, horizon * 0.6)
        for k in range(3):
            rx, ry = rng.uniform(6, 14), rng.uniform(3, 6)
            draw.ellipse([cx + 8 * k - rx, cy - ry, cx + 8 * k + rx, cy + ry], fill=(248, 248, 250))
    # hills: a sum of sines along the panorama
    xs = np.arange(width)
    ridge = (
        horizon
        - 6
        - rng.uniform(3, 12)
        * (0.6 * np.sin(xs / rng.uniform(12, 30) + rng.uniform(0, 6)) + 0.4 * np.sin(xs / 7.0))
    )
    draw.polygon(
        [(0, height)] + list(zip(xs.tolist(), ridge.tolist(), strict=True)) + [(width - 1, height)],
        fill=_mix(movie.hills, movie.sky[1], rng.uniform(0, 0.3)),
    )
    _draw_skyline(draw, movie, width, horizon, rng)
    draw.rectangle([0, horizon, width, height], fill=movie.ground)
    for _ in range(rng.integers(6, 14)):  # ground texture: tufts, stones, ripples
        gx, gy = rng.uniform(0, width), rng.uniform(horizon + 2, height)
        draw.ellipse([gx - 3, gy - 1, gx + 3, gy + 1], fill=_mix(movie.ground, (0, 0, 0), 0.25))
    pixels = np.asarray(image, dtype=np.float32) * tint
    pixels += rng.normal(0, 3.0, pixels.shape)  # fixed per scene: paper/film texture
    return pixels.clip(0, 255).astype(np.uint8)


def _draw_skyline(draw, movie: Movie, width: int, horizon: int, rng) -> None:
    color = movie.skyline_color
    x = rng.uniform(-10, 10)
    while x < width:
        size = rng.uniform(8, 20)
        shade = _mix(color, (0, 0, 0), rng.uniform(0, 0.25))
        if movie.skyline == "towers":
            draw.rectangle([x, horizon - 2.2 * size, x + size * 0.6, horizon], fill=shade)
            draw.polygon(
                [
                    (x - 2, horizon - 2.2 * size),
                    (x + size * 0.3, horizon - 2.8 * size),
                    (x + size * 0.6 + 2, horizon - 2.2 * size),
                ],
                fill=(120, 60, 50),
            )
        elif movie.skyline == "trees":
            draw.rectangle(
                [x + size * 0.4, horizon - size * 0.6, x + size * 0.6, horizon], fill=(80, 50, 30)
            )
            draw.ellipse([x, horizon - 2.0 * size, x + size, horizon - 0.5 * size], fill=shade)
        elif movie.skyline == "houses":
            draw.rectangle([x, horizon - size, x + size * 1.2, horizon], fill=shade)
            draw.polygon(
                [
                    (x - 2, horizon - size),
                    (x + size * 0.6, horizon - 1.6 * size),
                    (x + size * 1.2 + 2, horizon - size),
                ],
                fill=(60, 50, 50),
            )
            draw.rectangle(
                [x + size * 0.4, horizon - size * 0.7, x + size * 0.7, horizon - size * 0.4],
                fill=(255, 220, 120),
            )
        elif movie.skyline == "savanna":
            draw.line(
                [x + size * 0.5, horizon, x + size * 0.5, horizon - size], fill=shade, width=2
            )
            draw.ellipse(
                [x - size * 0.3, horizon - size * 1.3, x + size * 1.3, horizon - size * 0.8],
                fill=(70, 90, 40),
            )
            x += size  # sparse
        elif movie.skyline == "spires":
            draw.polygon(
                [(x, horizon), (x + size * 0.35, horizon - 3 * size), (x + size * 0.7, horizon)],
                fill=shade,
            )
        else:  # sea: an island now and then
            if rng.uniform() < 0.4:
                draw.ellipse(
                    [x, horizon - size * 0.5, x + size * 2, horizon + size * 0.3], fill=shade
                )
                draw.line(
                    [x + size, horizon - size * 0.4, x + size * 1.1, horizon - size * 1.6],
                    fill=(90, 60, 30),
                    width=2,
                )
            x += size
        x += size * rng.uniform(0.9, 2.2)


def draw_character(
    draw, movie: Movie, center, scale: float, *, body_color=None, accessory_color=None, line=None
) -> None:
    """Draw a movie's signature character; ``line`` set = an outline drawing in that color."""
    cx, cy = center
    s = scale
    body = body_color or movie.body_color
    extra = accessory_color or movie.accessory_color
    fill = None if line is not None else body
    fill_extra = None if line is not None else extra
    outline = line
    width = max(1, int(round(s / 6))) if line is not None else 1
    head_y = cy - s
    if movie.body == "tall":
        draw.rounded_rectangle(
            [cx - 0.45 * s, cy - 0.6 * s, cx + 0.45 * s, cy + s],
            radius=s * 0.2,
            fill=fill,
            outline=outline,
            width=width,
        )
        draw.ellipse(
            [cx - 0.4 * s, cy - 1.4 * s, cx + 0.4 * s, cy - 0.6 * s],
            fill=fill,
            outline=outline,
            width=width,
        )
        head_y = cy - s
    elif movie.body == "round":
        draw.ellipse(
            [cx - 0.8 * s, cy - 0.6 * s, cx + 0.8 * s, cy + s],
            fill=fill,
            outline=outline,
            width=width,
        )
        for side in (-1, 1):  # ears
            draw.polygon(
                [
                    (cx + side * 0.5 * s, cy - 0.4 * s),
                    (cx + side * 0.3 * s, cy - 1.1 * s),
                    (cx + side * 0.15 * s, cy - 0.5 * s),
                ],
                fill=fill,
                outline=outline,
            )
        draw.ellipse(
            [cx - 0.45 * s, cy + 0.0 * s, cx + 0.45 * s, cy + 0.8 * s],
            fill=None if line is not None else (220, 220, 200),
            outline=outline,
        )
        head_y = cy - 0.3 * s
    elif movie.body == "blob":
        draw.ellipse(
            [cx - 0.6 * s, cy - 1.2 * s, cx + 0.6 * s, cy + s],
            fill=fill,
            outline=outline,
            width=width,
        )
        draw.ellipse(
            [cx - 0.35 * s, cy - 0.9 * s, cx + 0.35 * s, cy - 0.2 * s],
            fill=None if line is not None else (240, 240, 240),
            outline=outline,
        )
        head_y = cy - 0.6 * s
    elif movie.body == "cone":
        draw.polygon(
            [(cx - 0.7 * s, cy + s), (cx, cy - 0.6 * s), (cx + 0.7 * s, cy + s)],
            fill=fill,
            outline=outline,
        )
        draw.ellipse(
            [cx - 0.45 * s, cy - 1.2 * s, cx + 0.45 * s, cy - 0.3 * s],
            fill=fill,
            outline=outline,
            width=width,
        )
        head_y = cy - 0.75 * s
    elif movie.body == "diamond":
        draw.polygon(
            [
                (cx, cy - 0.8 * s),
                (cx + 0.6 * s, cy + 0.1 * s),
                (cx, cy + s),
                (cx - 0.6 * s, cy + 0.1 * s),
            ],
            fill=fill,
            outline=outline,
        )
        draw.ellipse(
            [cx - 0.35 * s, cy - 1.4 * s, cx + 0.35 * s, cy - 0.7 * s],
            fill=fill,
            outline=outline,
            width=width,
        )
        head_y = cy - 1.05 * s
    else:  # star
        points = []
        for k in range(10):
            radius = s if k % 2 == 0 else 0.45 * s
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + 0.1 * s + radius * math.sin(angle)))
        draw.polygon(points, fill=fill, outline=outline)
        head_y = cy - 0.1 * s
    for side in (-1, 1):  # eyes
        ex, ey, r = cx + side * 0.16 * s, head_y, max(1.0, 0.1 * s)
        draw.ellipse(
            [ex - r, ey - r, ex + r, ey + r],
            fill=(255, 255, 255) if line is None else None,
            outline=outline if line is not None else (0, 0, 0),
        )
        draw.point((ex, ey), fill=(0, 0, 0) if line is None else line)
    _draw_accessory(draw, movie, cx, cy, head_y, s, fill_extra, outline, width)


def _draw_accessory(draw, movie, cx, cy, head_y, s, fill, outline, width) -> None:
    top = head_y - 0.45 * s
    if movie.accessory == "antenna":
        draw.line([cx, top, cx, top - 0.5 * s], fill=outline or (60, 60, 60), width=width)
        draw.ellipse(
            [cx - 0.15 * s, top - 0.7 * s, cx + 0.15 * s, top - 0.4 * s], fill=fill, outline=outline
        )
    elif movie.accessory == "leaf":
        draw.polygon(
            [(cx, top), (cx + 0.5 * s, top - 0.5 * s), (cx + 0.1 * s, top - 0.6 * s)],
            fill=fill,
            outline=outline,
        )
    elif movie.accessory == "bow":
        for side in (-1, 1):
            draw.polygon(
                [
                    (cx, top + 0.1 * s),
                    (cx + side * 0.4 * s, top - 0.15 * s),
                    (cx + side * 0.4 * s, top + 0.35 * s),
                ],
                fill=fill,
                outline=outline or (0, 0, 0),
            )
    elif movie.accessory == "mane":
        for k in range(12):
            angle = k * math.pi / 6
            r0, r1 = 0.5 * s, 0.8 * s
            draw.line(
                [
                    cx + r0 * math.cos(angle),
                    head_y + r0 * math.sin(angle),
                    cx + r1 * math.cos(angle),
                    head_y + r1 * math.sin(angle),
                ],
                fill=fill or outline,
                width=max(2, width),
            )
    elif movie.accessory == "crown":
        base = top + 0.1 * s
        draw.polygon(
            [
                (cx - 0.35 * s, base),
                (cx - 0.35 * s, base - 0.4 * s),
                (cx - 0.17 * s, base - 0.2 * s),
                (cx, base - 0.5 * s),
                (cx + 0.17 * s, base - 0.2 * s),
                (cx + 0.35 * s, base - 0.4 * s),
                (cx + 0.35 * s, base),
            ],
            fill=fill,
            outline=outline,
        )
    else:  # flower
        fx, fy = cx + 0.35 * s, top + 0.1 * s
        for k in range(5):
            angle = k * 2 * math.pi / 5
            px, py = fx + 0.18 * s * math.cos(angle), fy + 0.18 * s * math.sin(angle)
            draw.ellipse(
                [px - 0.12 * s, py - 0.12 * s, px + 0.12 * s, py + 0.12 * s],
                fill=fill,
                outline=outline,
            )
        draw.ellipse(
            [fx - 0.07 * s, fy - 0.07 * s, fx + 0.07 * s, fy + 0.07 * s],
            fill=(250, 220, 60) if outline is None else None,
            outline=outline,
        )


def draw_scene_frames(
    movie: Movie, *, frames: int, size: tuple[int, int], bordered: bool, rng: np.random.Generator
) -> list[Image.Image]:
    """Draw the frames of one scene: the camera pans over the panorama, the character walks."""
    width, height = size
    speed = rng.uniform(0.6, 1.6) * rng.choice([-1, 1])  # px per frame
    pan = int(math.ceil(abs(speed) * max(frames - 1, 0))) + 1
    panorama = draw_panorama(movie, width + pan, height, rng)
    scale = height * rng.uniform(0.14, 0.2)
    x = rng.uniform(0.25, 0.75) * width
    walk = rng.uniform(-1.2, 1.2)
    ground_y = height * rng.uniform(0.68, 0.8)
    result = []
    for index in range(frames):
        offset = int(round(index * speed)) if speed > 0 else pan - 1 + int(round(index * speed))
        frame = Image.fromarray(panorama[:, offset : offset + width])
        draw = ImageDraw.Draw(frame)
        cx = (x + walk * index) % (width + 2 * scale) - scale
        cy = ground_y - scale + 1.5 * math.sin(index * 0.9)
        draw_character(draw, movie, (cx, cy), scale)
        if bordered:
            _draw_border_line(draw, width, height)
        pixels = np.asarray(frame, dtype=np.int16) + rng.integers(-2, 3, (height, width, 1))
        result.append(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)))
    return result


def _draw_border_line(draw, width: int, height: int) -> None:
    for k in range(BORDER_LINE_WIDTH):
        inset = BORDER_LINE_OFFSET + k
        draw.rectangle(
            [inset, inset, width - 1 - inset, height - 1 - inset], outline=BORDER_LINE_COLOR
        )


def draw_internet_image(movie: Movie, rng: np.random.Generator) -> Image.Image:
    """A sketch (grayscale line drawing, mode L) or fan art (other palette, other size)."""
    width, height = INTERNET_SIZES[rng.integers(len(INTERNET_SIZES))]
    scale = min(width, height) * rng.uniform(0.22, 0.3)
    center = (width * rng.uniform(0.4, 0.6), height * rng.uniform(0.5, 0.62))
    if rng.uniform() < 0.5:  # a pencil sketch on paper
        paper = int(rng.integers(225, 250))
        image = Image.new("L", (width, height), paper)
        draw_character(ImageDraw.Draw(image), movie, center, scale, line=int(rng.integers(10, 60)))
        pixels = np.asarray(image, np.float32) + rng.normal(0, 4, (height, width))
        return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "L")
    hue = tuple(int(v) for v in rng.integers(0, 256, 3))
    background = tuple(int(v) for v in rng.integers(150, 256, 3))
    canvas = np.zeros((height, width, 3), np.float32) + background
    canvas *= np.linspace(1.0, rng.uniform(0.6, 0.9), height, dtype=np.float32)[:, None, None]
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw_character(
        ImageDraw.Draw(image),
        movie,
        center,
        scale,
        body_color=hue,
        accessory_color=tuple(255 - v for v in hue),
    )
    return image


def scene_counts(scenes_per_movie: int) -> dict[str, int]:
    """Scenes per movie: ``scenes_per_movie`` scaled by each movie's share (trap d), at least 1."""
    return {m.name: max(1, int(round(scenes_per_movie * m.scene_share))) for m in MOVIES}


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
        Defaults give about 1,900 images; ``--small`` uses 12 and 3 (about 250).
    size : (width, height)
        Frame size in px (160x96: fast to train on a CPU, big enough for a 2-px line).
    internet_share : float
        Internet images per frame, per movie (at least 2 per movie), before upsampling.
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
        internet = max(2, int(round(internet_share * frame_number)))
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
    options = {"frames_per_scene": 12, "scenes_per_movie": 3} if args.small else {}
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
        help="a few hundred images (12 frames per scene, 3 scenes) for tests",
    )
    parser.add_argument(
        "--frames-per-scene",
        type=int,
        default=None,
        help="frames per scene (default 40, --small 12)",
    )
    parser.add_argument(
        "--scenes-per-movie",
        type=int,
        default=None,
        help="scenes of the largest movie (default 8, --small 3)",
    )
    parser.set_defaults(run=run)
