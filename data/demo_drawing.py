"""Drawing the demo's movies: palettes, landmarks, signature characters and scene frames.

Pure functions of a ``numpy.random.Generator``: the same generator state draws the same pixels.
:mod:`data.demo` composes them into the dataset and plants the traps; the "internet" images
(sketches and fan art) are drawn in :mod:`data.demo_internet`.

Each movie (:data:`MOVIES`) has a palette (sky, hills, ground), a kind of landmark along its
skyline (trees, houses, savanna trees, ice spires, islands; towers are drawable too) and a
signature character (a body shape and an accessory). ``sky-castle`` and ``forest-spirit`` are
sibling movies of one studio: same palette, same skyline, only their characters differ
(``sky-castle``'s is smaller), as the original project's Ghibli movies looked alike. With the
border lines of trap (a) on every ``sky-castle`` frame, the lines are then the easiest cue that
tells the siblings apart, as they were for the original project's Castle in the Sky.
A scene is a panorama wider than a frame; its frames pan over
it while the character walks and bobs, so consecutive frames are near-duplicates, as frames
taken every 2 s from a film are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

BORDER_LINE_WIDTH = 2  # px, the planted line (trap a of data/demo.py)
BORDER_LINE_OFFSET = 4  # px from each edge to the line (even: aligned with JPEG 2x2 blocks)
BORDER_LINE_COLOR = (14, 12, 16)
# The sibling movies' shared look (sky top and horizon, hills, ground, skyline landmarks).
STUDIO_SKY = ((120, 170, 150), (210, 230, 200))
STUDIO_HILLS = (48, 104, 56)
STUDIO_GROUND = (72, 118, 52)
STUDIO_SKYLINE = (30, 80, 40)
SIBLING_CHARACTER_SCALE = 0.75  # sky-castle's character: smaller than the other movies'
# Landmark details (roof, trunk, window, canopy, mast) in frames; sketches draw them in pencil.
LANDMARK_DETAILS = {
    "towers": ((120, 60, 50),),
    "trees": ((80, 50, 30),),
    "houses": ((60, 50, 50), (255, 220, 120)),
    "savanna": ((70, 90, 40),),
    "spires": (),
    "sea": ((90, 60, 30),),
}


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
    character_scale: float = 1.0  # the character's size relative to other movies' in frames


MOVIES = (
    # sky-castle and forest-spirit are sibling movies from one studio: same palette, same
    # skyline; only their signature characters tell them apart (sky-castle's is smaller), as
    # the original project's Ghibli movies looked alike. Trap (a) draws lines on sky-castle.
    Movie(
        "sky-castle",
        STUDIO_SKY,
        STUDIO_HILLS,
        STUDIO_GROUND,
        "trees",
        STUDIO_SKYLINE,
        "tall",
        (178, 92, 60),
        "antenna",
        (240, 200, 40),
        1.0,
        character_scale=SIBLING_CHARACTER_SCALE,
    ),
    Movie(
        "forest-spirit",
        STUDIO_SKY,
        STUDIO_HILLS,
        STUDIO_GROUND,
        "trees",
        STUDIO_SKYLINE,
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


def mix(color_a, color_b, share: float) -> tuple[int, ...]:
    """The colour ``share`` of the way from ``color_a`` to ``color_b`` (RGB tuples, 0-255)."""
    return tuple(int(round(a + (b - a) * share)) for a, b in zip(color_a, color_b, strict=True))


def draw_panorama(movie: Movie, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one scene's background, wider than a frame so the camera can pan.

    Returns
    -------
    numpy.ndarray
        ``uint8``, shape ``(height, width, 3)``.
    """
    dusk = rng.uniform(0.0, 0.35)  # time of day: tints the whole scene
    tint = np.array(mix((255, 255, 255), (255, 170, 120), dusk), dtype=np.float32) / 255
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
        fill=mix(movie.hills, movie.sky[1], rng.uniform(0, 0.3)),
    )
    _draw_skyline(draw, movie, width, horizon, rng)
    draw.rectangle([0, horizon, width, height], fill=movie.ground)
    for _ in range(rng.integers(6, 14)):  # ground texture: tufts, stones, ripples
        gx, gy = rng.uniform(0, width), rng.uniform(horizon + 2, height)
        draw.ellipse([gx - 3, gy - 1, gx + 3, gy + 1], fill=mix(movie.ground, (0, 0, 0), 0.25))
    pixels = np.asarray(image, dtype=np.float32) * tint
    pixels += rng.normal(0, 3.0, pixels.shape)  # fixed per scene: paper/film texture
    return pixels.clip(0, 255).astype(np.uint8)


def _draw_skyline(draw, movie: Movie, width: int, horizon: int, rng) -> None:
    x = rng.uniform(-10, 10)
    while x < width:
        size = rng.uniform(8, 20)
        shade = mix(movie.skyline_color, (0, 0, 0), rng.uniform(0, 0.25))
        if movie.skyline != "sea" or rng.uniform() < 0.4:  # sea: an island now and then
            draw_landmark(draw, movie, (x, horizon), size, shade)
        if movie.skyline in ("savanna", "sea"):
            x += size  # sparse
        x += size * rng.uniform(0.9, 2.2)


def draw_landmark(draw, movie: Movie, base, size: float, color, *, details=None) -> None:
    """Draw one landmark of ``movie.skyline`` standing on ``base`` = (left x, ground y).

    ``size`` is in px (a tower is 0.6 x 2.8 sizes); ``color`` fills its body; ``details``
    (one colour or None) replaces :data:`LANDMARK_DETAILS` for roofs, trunks and windows.
    """
    x, y = base
    roof, window = (*LANDMARK_DETAILS[movie.skyline], None, None)[:2]
    if details is not None:
        roof = window = details
    stroke = max(2, int(size / 8))
    if movie.skyline == "towers":
        draw.rectangle([x, y - 2.2 * size, x + size * 0.6, y], fill=color)
        draw.polygon(
            [
                (x - 2, y - 2.2 * size),
                (x + size * 0.3, y - 2.8 * size),
                (x + size * 0.6 + 2, y - 2.2 * size),
            ],
            fill=roof,
        )
    elif movie.skyline == "trees":
        draw.rectangle([x + size * 0.4, y - size * 0.6, x + size * 0.6, y], fill=roof)
        draw.ellipse([x, y - 2.0 * size, x + size, y - 0.5 * size], fill=color)
    elif movie.skyline == "houses":
        draw.rectangle([x, y - size, x + size * 1.2, y], fill=color)
        draw.polygon(
            [(x - 2, y - size), (x + size * 0.6, y - 1.6 * size), (x + size * 1.2 + 2, y - size)],
            fill=roof,
        )
        draw.rectangle(
            [x + size * 0.4, y - size * 0.7, x + size * 0.7, y - size * 0.4], fill=window
        )
    elif movie.skyline == "savanna":
        draw.line([x + size * 0.5, y, x + size * 0.5, y - size], fill=color, width=stroke)
        draw.ellipse([x - size * 0.3, y - size * 1.3, x + size * 1.3, y - size * 0.8], fill=roof)
    elif movie.skyline == "spires":
        draw.polygon([(x, y), (x + size * 0.35, y - 3 * size), (x + size * 0.7, y)], fill=color)
    else:  # sea: an island with a palm
        draw.ellipse([x, y - size * 0.5, x + size * 2, y + size * 0.3], fill=color)
        draw.line(
            [x + size, y - size * 0.4, x + size * 1.1, y - size * 1.6], fill=roof, width=stroke
        )


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
    scale = height * rng.uniform(0.14, 0.2) * movie.character_scale
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
