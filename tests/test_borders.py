"""Border profile: planted strips and lines are found with their width, offset and colour;
content (noise, flat sky, gradients) is not a border."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.borders import SIDES, border_columns, profile_borders


def noise(height, width, seed):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def plant(rgb, side, offset, width, colour):
    """Paint a strip of ``width`` lines starting ``offset`` lines from ``side``."""
    rgb = rgb.copy()
    height, full_width = rgb.shape[:2]
    if side == "top":
        rgb[offset : offset + width] = colour
    elif side == "bottom":
        rgb[height - offset - width : height - offset] = colour
    elif side == "left":
        rgb[:, offset : offset + width] = colour
    else:
        rgb[:, full_width - offset - width : full_width - offset] = colour
    return rgb


def hex_to_rgb(text):
    return np.array([int(text[i : i + 2], 16) for i in (1, 3, 5)])


colours = st.tuples(*[st.integers(0, 255)] * 3)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(40, 160),
    width=st.integers(40, 160),
    side=st.sampled_from(SIDES),
    strip=st.integers(1, 20),
    colour=colours,
    seed=st.integers(0, 2**16),
)
def test_planted_strip_at_the_edge_is_found(height, width, side, strip, colour, seed):
    length = height if side in ("top", "bottom") else width
    strip = min(strip, int(0.15 * length) - 1)
    rgb = plant(noise(height, width, seed), side, 0, strip, colour)
    profile = profile_borders(rgb)
    assert abs(profile[f"border_{side}_width"] - strip) <= 1
    assert profile[f"border_{side}_offset"] == 0
    assert np.abs(hex_to_rgb(profile[f"border_{side}_color"]) - colour).max() <= 2


@settings(max_examples=60, deadline=None)
@given(
    side=st.sampled_from(SIDES),
    offset=st.integers(1, 6),
    line=st.integers(1, 3),
    colour=colours,
    seed=st.integers(0, 2**16),
)
def test_planted_thin_line_near_the_edge_is_found(side, offset, line, colour, seed):
    rgb = plant(noise(120, 160, seed), side, offset, line, colour)
    profile = profile_borders(rgb)
    assert abs(profile[f"border_{side}_width"] - line) <= 1
    assert abs(profile[f"border_{side}_offset"] - offset) <= 1
    assert np.abs(hex_to_rgb(profile[f"border_{side}_color"]) - colour).max() <= 2


@settings(max_examples=40, deadline=None)
@given(height=st.integers(8, 200), width=st.integers(8, 200), seed=st.integers(0, 2**16))
def test_random_content_has_no_border(height, width, seed):
    profile = profile_borders(noise(height, width, seed))
    assert all(profile[f"border_{side}_width"] == 0 for side in SIDES)
    assert all(profile[f"border_{side}_color"] == "" for side in SIDES)


def test_flat_sky_deeper_than_the_band_is_content():
    rgb = noise(200, 300, 1)
    rgb[:80] = (120, 170, 230)  # flat sky over 40% of the height
    assert profile_borders(rgb)["border_top_width"] == 0


def test_sky_gradient_ending_inside_the_band_is_not_a_border():
    rgb = noise(200, 300, 2)
    ramp = np.linspace(90, 200, 25)[:, None, None]  # 25 rows drifting slowly, then content
    rgb[:25] = np.broadcast_to(ramp, (25, 300, 3)).astype(np.uint8)
    assert profile_borders(rgb)["border_top_width"] == 0


def test_letterbox_then_thin_line_is_one_border_to_crop():
    rgb = plant(noise(200, 300, 3), "top", 0, 10, (0, 0, 0))
    rgb = plant(rgb, "top", 10, 2, (255, 255, 255))
    profile = profile_borders(rgb)
    assert (profile["border_top_offset"], profile["border_top_width"]) == (0, 12)
    assert profile["border_top_color"] == "#000000"


def test_widths_are_in_original_pixels_at_a_reduced_scale():
    rgb = plant(noise(100, 175, 4), "left", 0, 6, (10, 10, 10))
    profile = profile_borders(rgb, scale=4)
    assert profile["border_left_width"] == 24
    assert profile["border_left_color"] == "#0a0a0a"


def test_line_deep_inside_the_image_is_not_an_edge_line():
    rgb = plant(noise(200, 300, 5), "top", 60, 2, (0, 0, 0))
    assert profile_borders(rgb)["border_top_width"] == 0


def test_profile_keys_and_bad_input():
    profile = profile_borders(noise(4, 4, 0))  # too small to measure: no border
    assert list(profile) == border_columns()
    with pytest.raises(ValueError, match="expects an"):
        profile_borders(np.zeros((10, 10), dtype=np.uint8))
