"""edge_focus: known values, properties, models that look at a spot on the border or centre."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from interpret.edge import band_weights, edge_focus, edge_focus_by_class
from interpret.gradcam import gradcam


@pytest.mark.parametrize("band", [0.05, 0.1, 0.2, 0.25])
@pytest.mark.parametrize("shape", [(10, 10), (7, 13), (64, 48), (3, 3)])
def test_uniform_map_puts_the_band_area_share_on_the_edge(band, shape):
    expected = 1.0 - (1.0 - 2.0 * band) ** 2
    assert edge_focus(np.ones(shape), band=band)[0] == pytest.approx(expected)


def test_uniform_map_at_the_default_band_is_036():
    assert edge_focus(np.full((2, 50, 50), 0.3)) == pytest.approx([0.36, 0.36])


def test_mass_only_on_border_or_only_in_centre():
    border = np.zeros((20, 20))
    border[0, :] = 1.0  # top row, inside the 2-pixel band
    centre = np.zeros((20, 20))
    centre[8:12, 8:12] = 1.0
    assert edge_focus(np.stack([border, centre]), band=0.1) == pytest.approx([1.0, 0.0])


def test_partial_pixels_count_in_part():
    weights = band_weights(5, 0.1)  # band of 0.5 pixel each side
    np.testing.assert_allclose(weights, [0.5, 1, 1, 1, 0.5])


def test_zero_map_gives_nan_and_bad_inputs_raise():
    assert np.isnan(edge_focus(np.zeros((1, 8, 8)))[0])
    with pytest.raises(ValueError, match="non-negative"):
        edge_focus(-np.ones((8, 8)))
    with pytest.raises(ValueError, match=r"band must be in \(0, 0.5\)"):
        edge_focus(np.ones((8, 8)), band=0.5)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        edge_focus(np.ones(8))


maps_strategy = arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(2, 24), st.integers(2, 24)),
    elements=st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(maps=maps_strategy, band=st.floats(0.01, 0.49), scale=st.floats(1e-3, 1e3))
def test_edge_focus_is_a_share_and_ignores_scale(maps, band, scale):
    shares = edge_focus(maps, band=band)
    assert shares.shape == (maps.shape[0],)
    has_mass = maps.sum(axis=(1, 2)) > 0
    assert np.isnan(shares[~has_mass]).all()
    assert ((shares[has_mass] >= 0) & (shares[has_mass] <= 1)).all()
    np.testing.assert_allclose(edge_focus(maps * scale, band=band), shares, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(maps=maps_strategy)
def test_wider_band_never_holds_less_mass(maps):
    narrow, wide = edge_focus(maps, band=0.1), edge_focus(maps, band=0.3)
    has_mass = np.isfinite(narrow)
    assert (wide[has_mass] >= narrow[has_mass] - 1e-9).all()


class BrightSpotModel(nn.Module):
    """Class 1 scores the amount of bright (> 0.5) pixels, wherever they are: 1x1 conv + GAP."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 1, kernel_size=1), nn.ReLU())
        with torch.no_grad():
            self.features[0].weight.fill_(1.0)
            self.features[0].bias.fill_(-0.5)  # only bright pixels (> 0.5) activate
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
        with torch.no_grad():
            self.head[2].weight.copy_(torch.tensor([[-1.0], [1.0]]))
            self.head[2].bias.zero_()

    def forward(self, images):
        return self.head(self.features(images))


def spot_images(where: str, count: int = 4, size: int = 32) -> torch.Tensor:
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 0.3, size=(count, 1, size, size)).astype(np.float32)
    for image in images:
        if where == "border":
            image[0, 0:2, rng.integers(4, size - 8) :][:, :6] = 1.0  # on the top edge
        else:
            top, left = rng.integers(size // 2 - 6, size // 2 + 2, size=2)
            image[0, top : top + 4, left : left + 4] = 1.0
    return torch.from_numpy(images)


def test_model_looking_at_a_border_spot_has_high_edge_focus_and_centre_spot_low():
    model = BrightSpotModel()
    on_border = edge_focus(gradcam(model, spot_images("border"), targets=1), band=0.1)
    in_centre = edge_focus(gradcam(model, spot_images("centre"), targets=1), band=0.1)
    assert (on_border > 0.9).all(), on_border
    assert (in_centre < 0.05).all(), in_centre


def test_edge_focus_by_class_table_flags_and_lists_worst_examples():
    table = edge_focus_by_class(
        [0.9, 0.8, np.nan, 0.2, 0.3],
        ["castle", "castle", "castle", "mermaid", "mermaid"],
        paths=["c1.png", "c2.png", "c3.png", "m1.png", "m2.png"],
        threshold=0.5,
        examples=1,
    )
    assert table["label"].tolist() == ["castle", "mermaid"]
    castle = table.iloc[0]
    assert castle["images"] == 2 and castle["mean_edge_focus"] == pytest.approx(0.85)
    assert bool(castle["flagged"]) and castle["examples"] == ["c1.png"]
    assert not bool(table.iloc[1]["flagged"]) and table.iloc[1]["examples"] == ["m2.png"]
