"""crop-borders: planted lines removed, other images copied unchanged, lineage written."""

import numpy as np
import pytest
from PIL import Image

from data.borders import SIDES, profile_borders
from data.crop import crop_borders, crop_box
from data.lineage import append_lineage, read_lineage
from data.scan import scan


def textured(rng, width=96, height=64):
    """Smooth colourful content: no uniform line anywhere."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [120 + 60 * np.sin(x / 9.0), 120 + 60 * np.cos(y / 7.0), 120 + 40 * np.sin((x + y) / 11.0)],
        axis=-1,
    )
    return (base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)


def with_line(pixels, offset=4, width=2):
    pixels = pixels.copy()
    height, full = pixels.shape[:2]
    for k in range(offset, offset + width):
        pixels[k, k : full - k] = pixels[height - 1 - k, k : full - k] = 12
        pixels[k : height - k, k] = pixels[k : height - k, full - 1 - k] = 12
    return pixels


def has_border(path):
    profile = profile_borders(np.asarray(Image.open(path).convert("RGB")))
    return any(profile[f"border_{side}_width"] > 0 for side in SIDES)


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    rows = []
    for label, lined in (("castle", True), ("forest", False)):
        (root / label).mkdir(parents=True)
        for number in range(3):
            name = f"{label}/{label}-{number}.png"
            pixels = textured(rng)
            Image.fromarray(with_line(pixels) if lined else pixels).save(root / name)
            rows.append({"path": name, "group": f"{label}/scene-1", "origin": "frame"})
    rows.append(
        {
            "path": "castle/castle-2.png",
            "parent": "castle/castle-0.png",
            "group": "castle/scene-1",
            "origin": "frame",
            "operation": "invert",
        }
    )
    append_lineage(root, rows)
    return root


def test_crop_box_from_a_profile():
    profile = {
        "border_top_width": 2,
        "border_top_offset": 4,
        "border_left_width": 3,
        "border_left_offset": 0,
    }
    assert crop_box(100, 50, profile) == (4, 7, 100, 50)
    assert crop_box(100, 50, profile, margin=0) == (3, 6, 100, 50)
    assert crop_box(100, 50, {}) is None
    assert crop_box(10, 10, {"border_top_width": 4, "border_top_offset": 4}) is None  # too small


def test_planted_lines_removed_other_images_unchanged(dataset, tmp_path):
    assert all(has_border(p) for p in (dataset / "castle").glob("*.png"))
    assert not any(has_border(p) for p in (dataset / "forest").glob("*.png"))
    before = {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    out = tmp_path / "cropped"
    result = crop_borders(dataset, out, cache_dir=tmp_path / "cache", progress=False)
    assert {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()} == before
    operations = dict(zip(result["path"], result["operation"], strict=True))
    assert {operations[p] for p in operations if p.startswith("castle")} == {"crop-borders"}
    assert {operations[p] for p in operations if p.startswith("forest")} == {"copy"}
    for path in (out / "castle").glob("*.png"):
        assert not has_border(path), path
        assert Image.open(path).size == (96 - 2 * 7, 64 - 2 * 7)  # offset 4 + width 2 + margin 1
    for path in (out / "forest").glob("*.png"):
        assert path.read_bytes() == (dataset / "forest" / path.name).read_bytes()
    manifest = scan(out)
    assert len(manifest) == 6 and manifest["error"].eq("").all()
    assert manifest.set_index("path").loc["castle/castle-2.png", "parent"] == "castle/castle-0.png"
    assert (manifest["group"].str.endswith("scene-1")).all()
    lineage = read_lineage(out)
    assert set(lineage["operation"]) == {"crop-borders", "copy"}
    assert lineage["source"].str.startswith(str(dataset.resolve())).all()


def test_output_inside_the_dataset_is_refused(dataset, tmp_path):
    with pytest.raises(ValueError, match="inside the dataset"):
        crop_borders(dataset, dataset / "cropped", cache_dir=tmp_path / "cache", progress=False)
