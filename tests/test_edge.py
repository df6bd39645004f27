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


# --- the model-focus audit's logic (interpret/model_focus.py) ----------------------------------


class BrightPixelModel(nn.Module):
    """Both classes score the amount of bright pixels (normalised > 0.5), wherever they are."""

    class_names = ["centred", "lined"]
    input_size = 48

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 1, kernel_size=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
        with torch.no_grad():
            self.features[0].weight.fill_(1.0 / 3.0)
            self.features[0].bias.fill_(-0.5)
            self.head[2].weight.fill_(1.0)
            self.head[2].bias.copy_(torch.tensor([0.0, 0.1]))

    def forward(self, images):
        return self.head(self.features(images))


def write_focus_dataset(root, *, lined: bool):
    """valid/centred: a bright square in the middle; valid/lined: bright lines at the frame
    (or, ``lined=False``, a bright square like the others)."""
    from PIL import Image, ImageDraw

    for label in ("centred", "lined"):
        for split in ("train", "valid"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(3):
                image = Image.new("RGB", (48, 48), (20, 30, 40))
                draw = ImageDraw.Draw(image)
                if label == "lined" and lined:
                    draw.rectangle([1, 1, 46, 46], outline=(255, 255, 255), width=2)
                else:
                    draw.rectangle([18 + index, 18, 29 + index, 29], fill=(255, 255, 255))
                image.save(folder / f"{label}-{index}.png")


@pytest.mark.parametrize("lined", [True, False])
def test_model_focus_audit_fails_for_a_class_seen_by_its_frame(tmp_path, lined):
    import data
    from interpret.model_focus import audit_model_focus

    write_focus_dataset(tmp_path / "set", lined=lined)
    model_path = tmp_path / "model.pt"
    torch.save(BrightPixelModel(), model_path)
    manifest = data.scan(tmp_path / "set")
    finding = audit_model_focus(
        model_path, manifest, manifest.attrs["root"], band=0.1, threshold=0.5, per_class=2, seed=0
    )
    assert finding.rule == "model-focus"
    shares = {row["label"]: row["mean_edge_focus"] for row in finding.details["classes"]}
    assert shares["centred"] < 0.05
    if lined:
        assert not finding.passed and finding.count == 1
        assert shares["lined"] > 0.9
        assert "lined: 1.00 of the mass" in finding.summary or "lined: 0.9" in finding.summary
        assert set(finding.examples["label"]) == {"lined"}
        assert all(path.startswith("valid/lined/") for path in finding.examples["path"])
        assert len(finding.figures) == 2 and all(
            png[:4] == b"\x89PNG" for png in finding.figures.values()
        )
    else:
        assert finding.passed and finding.count == 0 and not finding.figures
        assert shares["lined"] < 0.05


def test_focus_sample_takes_held_out_readable_images_per_class():
    import pandas as pd

    from interpret.model_focus import select_focus_sample

    manifest = pd.DataFrame(
        {
            "path": [
                f"{split}/{label}/{i}.png"
                for split in ("train", "valid")
                for label in ("a", "b")
                for i in range(5)
            ],
            "split": ["train"] * 10 + ["valid"] * 10,
            "label": (["a"] * 5 + ["b"] * 5) * 2,
            "error": [""] * 19 + ["cannot decode"],
        }
    )
    sample = select_focus_sample(manifest, per_class=3, seed=0)
    assert (sample["split"] == "valid").all()
    assert sample["label"].value_counts().to_dict() == {"a": 3, "b": 3}
    assert "valid/b/4.png" not in set(sample["path"])
    again = select_focus_sample(manifest, per_class=3, seed=0)
    assert sample["path"].tolist() == again["path"].tolist()


def test_cam_side_makes_cells_no_wider_than_the_band():
    from interpret.model_focus import MIN_CAM_SIDE, cam_side_for

    assert cam_side_for(0.1) == 10
    assert cam_side_for(0.05) == 20
    assert cam_side_for(0.3) == MIN_CAM_SIDE
