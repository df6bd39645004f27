"""Features: columns and types, values, the cache (reuse, invalidation, version), workers, CLI."""

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

import data.image_features as image_features
from data.__main__ import main
from data.hashing import DESCRIPTOR_SIDE
from data.image_features import FEATURE_COLUMNS, features
from data.scan import scan


def scene(seed, size=(96, 64)):
    random = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(c) for c in random.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = int(random.integers(0, size[0])), int(random.integers(0, size[1]))
        box = [x, y, x + int(random.integers(5, 40)), y + int(random.integers(5, 40))]
        draw.ellipse(box, fill=tuple(int(c) for c in random.integers(0, 256, 3)))
    return image


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    for index in range(6):
        split, label = ("train", "valid")[index % 2], ("cat", "dog")[index // 3]
        path = root / split / label / f"image{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        scene(index).save(path)
    big = root / "train" / "cat" / "frame.jpg"
    scene(99, (700, 400)).save(big, quality=90)
    return root


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def count_analyses(monkeypatch):
    calls = []
    original = image_features.analyse_file

    def spy(path, **options):
        calls.append(path)
        return original(path, **options)

    monkeypatch.setattr(image_features, "analyse_file", spy)
    return calls


def run(root, cache_dir, **options):
    options.setdefault("workers", 1)
    return features(scan(root), root, cache_dir=cache_dir, progress=False, **options)


def test_columns_types_and_values(dataset, cache_dir):
    manifest = scan(dataset)
    table = features(manifest, dataset, cache_dir=cache_dir, workers=1, progress=False)
    assert list(table.columns) == list(manifest.columns) + [
        c for c in FEATURE_COLUMNS if c != "error"
    ]
    assert table.index.equals(manifest.index)
    for column in ("file_size", "width", "height", "frames", "decode_scale", "phash", "dhash"):
        assert table[column].dtype == np.int64, column
    for column in ("brightness", "contrast", "sharpness", "entropy"):
        assert table[column].dtype == np.float64, column
    assert table["is_grayscale"].dtype == bool
    assert (table["error"] == "").all()
    frame = table.set_index("path").loc["train/cat/frame.jpg"]
    assert (frame["width"], frame["height"], frame["format"], frame["mode"]) == (
        700,
        400,
        "JPEG",
        "RGB",
    )
    assert frame["decode_scale"] == 2  # 400 / 2 = 200 >= 128 px short side; / 4 would be 100
    assert frame["file_size"] == (dataset / "train/cat/frame.jpg").stat().st_size
    assert len(frame["sha256"]) == 64 and len(frame["pixel_digest"]) == 64
    assert frame["descriptor"].shape == (DESCRIPTOR_SIDE**2,)
    assert 0 < frame["brightness"] < 255 and frame["contrast"] > 0 and 0 < frame["entropy"] <= 8
    assert table["sha256"].nunique() == len(table)


def test_same_pixels_saved_differently_share_pixel_digest(tmp_path, cache_dir):
    picture = scene(5)
    (tmp_path / "cat").mkdir()
    picture.save(tmp_path / "cat" / "a.png")
    picture.save(tmp_path / "cat" / "a.bmp")
    picture.convert("L").convert("RGB").save(tmp_path / "cat" / "gray.png")
    table = run(tmp_path, cache_dir).set_index("path")
    assert table.loc["cat/a.png", "pixel_digest"] == table.loc["cat/a.bmp", "pixel_digest"]
    assert table.loc["cat/a.png", "sha256"] != table.loc["cat/a.bmp", "sha256"]
    assert table.loc["cat/a.png", "phash"] == table.loc["cat/a.bmp", "phash"]
    assert table.loc["cat/gray.png", "is_grayscale"] and not table.loc["cat/a.png", "is_grayscale"]


def test_rerun_reads_the_cache_with_identical_values(dataset, cache_dir, count_analyses):
    fresh = run(dataset, cache_dir)
    assert len(count_analyses) == 7 and fresh.attrs["feature_counts"]["computed"] == 7
    cached = run(dataset, cache_dir)
    assert len(count_analyses) == 7  # nothing decoded again
    assert cached.attrs["feature_counts"] == {"cached": 7, "computed": 0, "errors": 0, "total": 7}
    pd.testing.assert_frame_equal(
        fresh.drop(columns="descriptor"), cached.drop(columns="descriptor")
    )
    for first, second in zip(fresh["descriptor"], cached["descriptor"], strict=True):
        np.testing.assert_array_equal(first, second)
    uncached = run(dataset, cache_dir, use_cache=False)
    assert uncached.attrs["feature_counts"]["computed"] == 7


def test_changed_file_is_recomputed(dataset, cache_dir, count_analyses):
    run(dataset, cache_dir)
    changed = dataset / "train" / "cat" / "image0.png"
    scene(1234).save(changed)  # new content and size
    touched = dataset / "valid" / "cat" / "image1.png"
    info = touched.stat()
    os.utime(touched, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))  # mtime only
    count_analyses.clear()
    table = run(dataset, cache_dir)
    assert sorted(os.path.basename(p) for p in count_analyses) == ["image0.png", "image1.png"]
    assert table.attrs["feature_counts"]["cached"] == 5
    fresh = run(dataset, cache_dir, use_cache=False).set_index("path")
    assert (
        table.set_index("path").loc["train/cat/image0.png", "sha256"]
        == fresh.loc["train/cat/image0.png", "sha256"]
    )


def test_feature_version_change_recomputes_everything(dataset, cache_dir, monkeypatch):
    run(dataset, cache_dir)
    monkeypatch.setattr(image_features, "FEATURE_VERSION", "test-next-version")
    table = run(dataset, cache_dir)
    assert table.attrs["feature_counts"]["computed"] == 7
    assert run(dataset, cache_dir).attrs["feature_counts"]["cached"] == 7


def test_two_workers_give_the_same_table(dataset, cache_dir, monkeypatch):
    monkeypatch.setattr(image_features, "IN_PROCESS_LIMIT", 1)  # use the pool for 7 files
    pooled = run(dataset, cache_dir, workers=2, use_cache=False)
    single = run(dataset, cache_dir, workers=1, use_cache=False)
    pd.testing.assert_frame_equal(
        pooled.drop(columns="descriptor"), single.drop(columns="descriptor")
    )


def test_rows_already_in_error_keep_their_error(tmp_path, cache_dir):
    (tmp_path / "cat").mkdir()
    scene(1).save(tmp_path / "cat" / "a.png")
    (tmp_path / "list.csv").write_text("path,label\ncat/a.png,cat\ncat/gone.png,cat\n")
    manifest = scan(tmp_path / "list.csv")
    table = features(manifest, tmp_path, cache_dir=cache_dir, workers=1, progress=False)
    errors = dict(zip(table["path"], table["error"], strict=True))
    assert errors == {"cat/a.png": "", "cat/gone.png": "file not found"}
    assert table.set_index("path").loc["cat/gone.png", "width"] == 0


def test_features_command(dataset, cache_dir, tmp_path, capsys):
    out = tmp_path / "features.parquet"
    arguments = ["features", str(dataset), "--cache-dir", str(cache_dir), "--workers", "1"]
    assert main([*arguments, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "0 from the cache, 7 computed, 0 errors" in printed
    assert "PNG" in printed and "JPEG" in printed
    written = pd.read_parquet(out)
    assert len(written) == 7 and len(written["descriptor"].iloc[0]) == DESCRIPTOR_SIDE**2
    assert main([*arguments, "--no-progress"]) == 0
    assert "7 from the cache, 0 computed" in capsys.readouterr().out
    csv_out = tmp_path / "features.csv"
    assert main([*arguments, "--no-cache", "--no-progress", "--out", str(csv_out)]) == 0
    assert len(pd.read_csv(csv_out)) == 7
    assert main([*arguments, "--out", str(tmp_path / "x.json")]) == 2
