"""Upsampling: six operations, copies beside sources, lineage, idempotent, dry run."""

import numpy as np
import pytest
from PIL import Image

from data.lineage import append_lineage, read_lineage
from data.scan import scan
from data.upsample import OPERATIONS, augment, upsample


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for number in range(3):
            name = f"{label}/{label}-{number}.jpg"
            pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name, quality=95)
            origin = "internet" if number == 0 else "frame"
            rows.append({"path": name, "origin": origin, "group": f"{label}/g{number}"})
    Image.fromarray(rng.integers(0, 256, (24, 32), dtype=np.uint8)).save(tmp_path / "cat/gray.png")
    rows.append({"path": "cat/gray.png", "origin": "internet"})
    append_lineage(tmp_path, rows)
    return tmp_path


def file_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_each_operation_changes_the_image_as_documented():
    rng = np.random.default_rng(1)
    image = rng.integers(20, 236, (16, 16, 3), dtype=np.uint8)
    assert augment(image, "grayscale").shape == (16, 16)
    assert np.array_equal(augment(image, "invert"), 255 - image)
    noisy = augment(image, "poisson", seed=3)
    assert np.array_equal(noisy, augment(image, "poisson", seed=3))
    assert not np.array_equal(noisy, augment(image, "poisson", seed=4))
    stretched = augment(image, "rescale_intensity")
    assert stretched.min() == 0 and stretched.max() == 255
    assert augment(image, "log").mean() > image.mean()  # log lifts the mid-tones
    assert augment(image, "sigmoid").std() > image.std()  # sigmoid raises contrast
    with pytest.raises(ValueError, match="unknown operation"):
        augment(image, "blur")


def test_copies_beside_sources_with_lineage_and_rerun_adds_nothing(dataset):
    originals = file_bytes(dataset)
    plan = upsample(dataset, progress=False)
    assert (plan["status"] == "written").all()
    assert len(plan) == 3 * len(OPERATIONS)  # cat-0, dog-0 and gray.png are internet
    for source, copies in plan.groupby("parent"):
        assert sorted(copies["operation"]) == sorted(OPERATIONS)
        for copy in copies["path"]:
            assert (dataset / copy).is_file()
            assert copy.rsplit("/", 1)[0] == source.rsplit("/", 1)[0]  # beside the source
    after = file_bytes(dataset)
    assert {k: v for k, v in after.items() if k in originals and k != "splitsafe-lineage.csv"} == {
        k: v for k, v in originals.items() if k != "splitsafe-lineage.csv"
    }
    assert Image.open(dataset / "cat/cat-0__grayscale.jpg").mode == "L"
    assert Image.open(dataset / "cat/gray__invert.png").format == "PNG"

    manifest = scan(dataset)
    copies = manifest[manifest["parent"] != ""]
    assert len(copies) == 18
    assert (copies["origin"] == "internet").all()
    cat_copies = copies[copies["parent"] == "cat/cat-0.jpg"]
    assert (cat_copies["group"] == "cat/g0").all()  # the source's group
    gray_copies = copies[copies["parent"] == "cat/gray.png"]
    assert (gray_copies["group"] == "cat/gray.png").all()  # no group: the source itself
    assert set(read_lineage(dataset).query("parent != ''")["operation"]) == set(OPERATIONS)

    again = upsample(dataset, progress=False)
    assert (again["status"] == "exists").all() and len(again) == 18  # copies not augmented
    assert file_bytes(dataset).keys() == after.keys()
    widened = upsample(dataset, where={}, progress=False)  # every original, never a copy
    assert not widened["parent"].str.contains("__").any()


def test_dry_run_writes_nothing(dataset, capsys):
    from data.__main__ import main

    before = file_bytes(dataset)
    assert main(["upsample", str(dataset), "--ops", "invert,log", "--dry-run"]) == 0
    assert file_bytes(dataset) == before
    out = capsys.readouterr().out
    assert "6 copies of 3 sources would be written" in out
    assert "would write cat/cat-0__invert.jpg" in out


def test_where_selects_sources_and_bad_input_is_named(dataset):
    plan = upsample(
        dataset,
        where={"label": "dog", "origin": "frame"},
        operations=("invert",),
        dry_run=True,
        progress=False,
    )
    assert sorted(plan["parent"]) == ["dog/dog-1.jpg", "dog/dog-2.jpg"]
    with pytest.raises(ValueError, match="colour"):
        upsample(dataset, where={"colour": "red"}, dry_run=True, progress=False)
    with pytest.raises(ValueError, match="blur"):
        upsample(dataset, operations=("blur",), dry_run=True, progress=False)
