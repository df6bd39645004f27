"""Drawing the demo's "internet" images: pencil sketches and fan art of the movies' characters.

Real fan art and sketches have content of their own, so each image here is a composition of
its own: fan art is a background (a sunburst, a diagonal two-tone split or a spotlight, in a
random palette), a few of the movie's landmarks (towers, trees, ...) at random sizes and places
and one or two characters at random sizes and places; a sketch is the character in pencil on
paper with a few lightly shaded landmarks and some hatching.

Why: the similarity descriptor of :mod:`data.hashing` ranks the cells of a blurred gray grid,
so a layout shared by many images (a plain vertical gradient with a small character) makes them
near-duplicates whatever their palette: such fan art of two movies matched at |cosine| 0.99
(a label conflict) and chained the fan art of one movie into one "scene". Random compositions
give every image its own layout, and none is laid out like a frame (sky above a horizon).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from data.demo_drawing import Movie, draw_character, draw_landmark, mix

INTERNET_SIZES = ((160, 96), (128, 128), (120, 160), (200, 120), (144, 108))  # (width, height)
SKETCH_SHARE = 0.5  # share of internet images that are sketches (the rest is fan art)
FAN_ART_BACKGROUNDS = ("sunburst", "split", "spotlight")


def draw_internet_image(movie: Movie, rng: np.random.Generator) -> Image.Image:
    """A sketch (grayscale pencil drawing, mode ``L``) or fan art (mode ``RGB``).

    The size is one of :data:`INTERNET_SIZES`; the kind is a sketch with probability
    :data:`SKETCH_SHARE`.
    """
    size = INTERNET_SIZES[rng.integers(len(INTERNET_SIZES))]
    if rng.uniform() < SKETCH_SHARE:
        return draw_sketch(movie, size, rng)
    return draw_fan_art(movie, size, rng)


def _random_color(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def _place(rng: np.random.Generator, size, scale: float, *, low=0.15, high=0.85):
    """A point inside a ``size`` = (width, height) image, ``scale`` px from its edges at least."""
    width, height = size
    x = np.clip(rng.uniform(low, high) * width, scale, width - scale)
    y = np.clip(rng.uniform(low, high) * height, 1.2 * scale, height - scale)
    return float(x), float(y)


def fan_art_background(
    kind: str, size: tuple[int, int], light, dark, rng: np.random.Generator
) -> np.ndarray:
    """A fan-art background: ``sunburst``, ``split`` or ``spotlight`` between two colours.

    Returns
    -------
    numpy.ndarray
        ``float32``, shape ``(height, width, 3)``, values 0-255.
    """
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(-0.2, 1.2) * width, rng.uniform(-0.2, 1.2) * height
    if kind == "sunburst":  # rays from a point, soft-edged
        rays, phase = int(rng.integers(5, 13)), rng.uniform(0, 2 * np.pi)
        weight = 0.5 + 0.5 * np.tanh(3 * np.sin(rays * np.arctan2(ys - cy, xs - cx) + phase))
    elif kind == "split":  # two tones on either side of a line at any angle, shaded along it
        angle = rng.uniform(0, 2 * np.pi)
        across = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)
        along = (-(xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle)) / max(width, height)
        weight = (across > 0) * 0.75 + 0.25 * np.clip(along + 0.5, 0, 1)
    elif kind == "spotlight":  # light at a point, fading out with distance
        distance = np.hypot(xs - cx, ys - cy) / np.hypot(width, height)
        weight = np.clip(1 - distance * rng.uniform(1.2, 2.5), 0, 1) ** rng.uniform(0.6, 1.6)
    else:
        raise ValueError(f"fan-art background {kind!r}; expected one of {FAN_ART_BACKGROUNDS}")
    light, dark = np.array(light, np.float32), np.array(dark, np.float32)
    return dark + (light - dark) * weight[..., None]


def draw_fan_art(movie: Movie, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Fan art: a random background and palette, the movie's landmarks, one or two characters.

    Returns
    -------
    PIL.Image.Image
        Mode ``RGB``, ``size`` = (width, height).
    """
    width, height = size
    # a quieter background than the content, so the landmarks and characters shape the layout
    light = _random_color(rng, 140, 256)
    dark = mix(light, _random_color(rng, 0, 120), rng.uniform(0.35, 0.6))
    kind = FAN_ART_BACKGROUNDS[rng.integers(len(FAN_ART_BACKGROUNDS))]
    canvas = fan_art_background(kind, size, light, dark, rng)
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    short = min(width, height)
    landmark_color = _random_color(rng)
    for _ in range(int(rng.integers(4, 9))):
        landmark = short * rng.uniform(0.12, 0.3)
        base = (rng.uniform(-0.1, 0.9) * width, rng.uniform(0.35, 1.1) * height)
        shade = mix(landmark_color, (0, 0, 0), rng.uniform(0, 0.4))
        draw_landmark(draw, movie, base, landmark, shade, details=_random_color(rng))
    for _ in range(int(rng.integers(1, 3))):
        scale = short * rng.uniform(0.14, 0.3)
        body = _random_color(rng)
        draw_character(
            draw,
            movie,
            _place(rng, size, scale),
            scale,
            body_color=body,
            accessory_color=tuple(255 - v for v in body),
        )
    pixels = np.asarray(image, np.float32) + rng.normal(0, 3, (height, width, 1))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def draw_sketch(movie: Movie, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A pencil sketch on paper: shaded landmarks, hatching, the character in outline.

    Returns
    -------
    PIL.Image.Image
        Mode ``L``, ``size`` = (width, height).
    """
    width, height = size
    paper = int(rng.integers(225, 250))
    pencil = int(rng.integers(10, 60))
    image = Image.new("RGB", size, (paper,) * 3)
    draw = ImageDraw.Draw(image)
    short = min(width, height)
    for _ in range(int(rng.integers(3, 7))):  # landmarks, shaded lightly
        tone = (int(paper - rng.integers(25, 90)),) * 3
        base = (rng.uniform(-0.1, 0.9) * width, rng.uniform(0.3, 1.1) * height)
        draw_landmark(draw, movie, base, short * rng.uniform(0.12, 0.3), tone, details=tone)
    for _ in range(int(rng.integers(2, 6))):  # hatching: a patch of parallel strokes
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        step, length = rng.uniform(3, 6), short * rng.uniform(0.15, 0.35)
        slant = rng.uniform(-1, 1)
        for k in range(int(rng.integers(4, 10))):
            start = x + k * step
            draw.line(
                [start, y, start + slant * length, y + length],
                fill=(int(paper - rng.integers(40, 110)),) * 3,
            )
    scale = short * rng.uniform(0.16, 0.32)
    draw_character(draw, movie, _place(rng, size, scale), scale, line=(pencil,) * 3)
    gray = np.asarray(image.convert("L"), np.float32) + rng.normal(0, 4, (height, width))
    return Image.fromarray(gray.clip(0, 255).astype(np.uint8), "L")
