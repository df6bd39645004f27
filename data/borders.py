"""Border profile of one image: per side, a uniform strip touching the edge or a thin line near it.

A pure function over an RGB array, computed once per image by the feature extractor; the
border audit compares how often each class has a border, and the crop-borders tool crops
``offset + width`` pixels from each side.

Two structures are found, scanning the lines (rows for top/bottom, columns for left/right)
from the edge inward:

- a **strip** (letterbox, pillarbox, a frame): uniform lines starting at the edge
  (``offset`` 0), ending within ``band`` of the side, followed by a clear change;
- a **line**: at most ``max_line_width`` px of uniform lines starting within
  ``max_line_offset`` of the edge, with a clear change on both sides (the thin black lines near
  the border of every frame of *Castle in the Sky*).

Uniform lines directly adjacent to the structure that also end within the band with a clear
change after them (a letterbox and then a thin line) extend it, so cropping ``offset + width``
removes all of it. The colour is that of the outermost run.

Thresholds and why
------------------
``tolerance`` 32 (0-255, per channel)
    JPEG ringing next to a sharp edge moves a flat bar by up to ~20 levels; random content has
    only (65/256)**3 = 1.6 % of pixels within 32 of any colour.
``uniform_share`` 0.9
    A line is uniform when 90 % of its pixels are within ``tolerance`` of its mean colour: a
    logo or a subtitle crossing a few percent of a bar does not break it.
``colour_tolerance`` 16
    Consecutive uniform lines belong to one run when their colours differ by at most 16: a
    slow gradient (sky) drifts out of a run instead of forming one long border.
``change_share`` 0.5
    A "clear change" is a neighbouring line with at least half of its pixels more than
    ``tolerance`` away from the run's colour: flat sky fading into slightly different sky, or
    a horizon crossing part of a line, is not a border.
``band`` 0.15
    A strip must end within 15 % of the side: a letterbox of 2.39:1 film in 16:9 is 12 % per
    side; flat content spanning deeper (sky, a wall) is content.
``max_line_width`` 4 px, ``max_line_offset`` 0.05 of the side (at least 4 px)
    "Thin lines near the border": 1-3 px drawn a few px inside the frame.

Precision: the array may be a reduced decode (JPEG draft at ``scale`` 2, 4, 8); widths and
offsets are returned in original pixels (lines times ``scale``), so they are exact at scale 1
and within about ``scale`` px otherwise. A line thinner than ``scale`` px is blended with its
neighbours by the reduced decode and can be missed on busy content.
"""

from __future__ import annotations

import math

import numpy as np

SIDES = ("top", "bottom", "left", "right")
MIN_LINES = 8  # a side shorter than this (in decoded lines) has no measurable border
SAMPLES_PER_LINE = 64  # pixels sampled along a line (every k-th): uniformity is a share


def border_columns() -> list[str]:
    """The ``border_{side}_{width,offset,color}`` keys, in a fixed order."""
    return [f"border_{side}_{part}" for side in SIDES for part in ("width", "offset", "color")]


def empty_profile() -> dict:
    """A profile with no border on any side (also the values used for unreadable files)."""
    profile = {}
    for side in SIDES:
        profile.update({f"border_{side}_width": 0, f"border_{side}_offset": 0})
        profile[f"border_{side}_color"] = ""
    return profile


def profile_borders(
    rgb: np.ndarray,
    *,
    scale: int = 1,
    band: float = 0.15,
    max_line_width: int = 4,
    max_line_offset: float = 0.05,
    tolerance: int = 32,
    uniform_share: float = 0.9,
    colour_tolerance: int = 16,
    change_share: float = 0.5,
) -> dict:
    """Find a uniform strip or thin line on each side of an image.

    Parameters
    ----------
    rgb : numpy.ndarray, shape (height, width, 3), uint8
        The decoded image (possibly reduced by ``scale``).
    scale : int
        Original pixels per pixel of ``rgb`` (the JPEG draft reduction); results are multiplied
        by it.
    band, max_line_width, max_line_offset, tolerance, uniform_share, colour_tolerance, change_share
        See the module docstring for what each means and why its default.

    Returns
    -------
    dict
        For each side in top, bottom, left, right: ``border_{side}_width`` (int, original px,
        0 = none), ``border_{side}_offset`` (int, original px from the edge to where the border
        starts), ``border_{side}_color`` (str ``#rrggbb``, "" = none).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"profile_borders expects an (height, width, 3) array, got {rgb.shape}")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    profile = empty_profile()
    height, width = rgb.shape[:2]
    # Top/bottom lines are rows and left/right lines columns: the two sides of one orientation
    # have the same geometry, so their bands are measured together (one batch of numpy calls
    # per orientation; a side without any uniform line stops there, as most do).
    for sides, count, length in (
        (("top", "bottom"), height, width),
        (("left", "right"), width, height),
    ):
        if count < MIN_LINES or length == 0:
            continue
        geometry = _side_geometry(
            count,
            length,
            scale=scale,
            band=band,
            max_line_width=max_line_width,
            max_line_offset=max_line_offset,
        )
        examined, step = geometry["examined"], geometry["step"]
        lines = [_side_lines(rgb, side) for side in sides]
        block = np.empty((2 * examined, 3, len(range(0, length, step))), dtype=np.int16)
        block[:examined] = _channels_first(lines[0][:examined, ::step])
        block[examined:] = _channels_first(lines[1][:examined, ::step])
        colours, uniform = _line_uniformity(block, tolerance, uniform_share)
        for index, side in enumerate(sides):
            part = slice(index * examined, (index + 1) * examined)
            if not uniform[part].any():
                continue
            found = _profile_side(
                lines[index],
                colours[part],
                uniform[part],
                geometry=geometry,
                tolerance=tolerance,
                colour_tolerance=colour_tolerance,
                change_share=change_share,
            )
            if found is not None:
                offset, border_width, colour = found
                profile[f"border_{side}_width"] = border_width * scale
                profile[f"border_{side}_offset"] = offset * scale
                profile[f"border_{side}_color"] = "#{:02x}{:02x}{:02x}".format(*colour)
    return profile


def _side_lines(rgb: np.ndarray, side: str) -> np.ndarray:
    """Lines parallel to ``side``, the edge one first: a view of shape (n, length, 3)."""
    if side == "top":
        return rgb
    if side == "bottom":
        return rgb[::-1]
    if side == "left":
        return rgb.transpose(1, 0, 2)
    return rgb[:, ::-1].transpose(1, 0, 2)


def _side_geometry(
    count: int,
    length: int,
    *,
    scale: int,
    band: float,
    max_line_width: int,
    max_line_offset: float,
) -> dict:
    """Line counts of one side: the band, a thin line, the lines examined first, the sampling."""
    band_lines = max(1, math.ceil(band * count))
    thin_lines = max(1, math.ceil(max_line_width / scale))
    offset_lines = max(4 / scale, max_line_offset * count)
    return {
        "count": count,
        "step": max(1, length // SAMPLES_PER_LINE),
        "band_lines": band_lines,
        "thin_lines": thin_lines,
        "offset_lines": offset_lines,
        # The band and the line just after it: every line a strip or a thin line can touch
        # (measured in one batch: cheaper than a second pass when an edge line is uniform).
        "examined": min(count, max(band_lines + 1, math.floor(offset_lines) + thin_lines + 2)),
    }


def _profile_side(
    lines: np.ndarray,
    colours: np.ndarray,
    uniform: np.ndarray,
    *,
    geometry: dict,
    tolerance: int,
    colour_tolerance: int,
    change_share: float,
):
    """(offset, width, colour) in decoded lines of the outermost border of one side, or None.

    ``colours`` and ``uniform`` are :func:`_line_uniformity` of the first ``examined`` lines
    (the band and the line after it).
    """
    count, step = geometry["count"], geometry["step"]
    band_lines, thin_lines = geometry["band_lines"], geometry["thin_lines"]
    offset_lines = geometry["offset_lines"]
    if not uniform.any():
        return None

    def differs(index: int, colour: np.ndarray) -> bool:
        if index < 0 or index >= count:
            return False
        line = lines[index, ::step].T.astype(np.int16)  # (3, samples)
        off = _channel_max(np.abs(line - np.rint(colour).astype(np.int16)[:, None])) > tolerance
        return bool(np.count_nonzero(off) >= change_share * off.size)

    runs = []  # [start, end) of consecutive uniform lines of similar colour
    colour_list = colours.tolist()  # 3-element arithmetic is cheaper on Python floats
    start = None
    for index, is_uniform in enumerate(uniform.tolist()):
        if not is_uniform:
            start = None
            continue
        if start is not None:
            (red, green, blue), (red2, green2, blue2) = colour_list[start], colour_list[index]
            if (
                abs(red - red2) <= colour_tolerance
                and abs(green - green2) <= colour_tolerance
                and abs(blue - blue2) <= colour_tolerance
            ):
                runs[-1][1] = index + 1
                continue
        start = index
        runs.append([index, index + 1])

    def run_colour(run) -> np.ndarray:
        return colours[run[0] : run[1]].sum(axis=0) / (run[1] - run[0])  # the mean, faster

    for position, run in enumerate(runs):
        if run[0] == 0:
            colour = run_colour(run)
            found = run[1] <= band_lines and differs(run[1], colour)
        elif run[0] > offset_lines:
            break  # runs are in order: no later run starts near enough to the edge
        else:
            found = run[1] - run[0] <= thin_lines
            if found:
                colour = run_colour(run)
                found = differs(run[0] - 1, colour) and differs(run[1], colour)
        if not found:
            continue
        end = run[1]
        for following in runs[position + 1 :]:
            if following[0] != end or following[1] > band_lines:
                break
            if not differs(following[1], run_colour(following)):
                break
            end = following[1]
        rounded = np.clip(np.rint(colour), 0, 255).astype(int)
        return run[0], end - run[0], tuple(int(c) for c in rounded)
    return None


def _channels_first(lines: np.ndarray) -> np.ndarray:
    """A (n, length, 3) view as (n, 3, length): numpy's loops then run along the lines."""
    return lines.transpose(0, 2, 1)


def _channel_max(values: np.ndarray) -> np.ndarray:
    """Max over the channel axis (second to last, size 3) of channels-first values."""
    return np.maximum(np.maximum(values[..., 0, :], values[..., 1, :]), values[..., 2, :])


def _line_uniformity(block: np.ndarray, tolerance: int, uniform_share: float):
    """Mean colour and uniformity of each line.

    Parameters
    ----------
    block : numpy.ndarray, shape (n, 3, length), int16
        Sampled lines, channels first (:func:`_channels_first`).

    Returns
    -------
    colours : numpy.ndarray, shape (n, 3), float64
    uniform : numpy.ndarray, shape (n,), bool
    """
    length = block.shape[2]
    colours = block.sum(axis=2) / length
    deviation = _channel_max(np.abs(block - np.rint(colours).astype(np.int16)[:, :, None]))
    within = np.count_nonzero(deviation <= tolerance, axis=1)
    return colours, within >= uniform_share * length
