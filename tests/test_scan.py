"""Scan: every layout, lineage, skipped files, malformed CSVs, the scan command."""

import pandas as pd
import pytest
from PIL import Image

from data.__main__ import main
from data.lineage import append_lineage
from data.scan import MANIFEST_COLUMNS, scan


def image(path, colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 12), colour).save(path)
    return path


def test_split_folders_with_aliases(tmp_path):
    for split in ("train", "val", "validation", "test"):
        image(tmp_path / split / "cat" / f"{split}.png")
    image(tmp_path / "valid" / "dog" / "d.jpg")
    manifest = scan(tmp_path)
    assert manifest.attrs["layout"] == "split-folders"
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    splits = dict(zip(manifest["path"], manifest["split"], strict=True))
    assert splits == {
        "test/cat/test.png": "test",
        "train/cat/train.png": "train",
        "val/cat/val.png": "valid",
        "valid/dog/d.jpg": "valid",
        "validation/cat/validation.png": "valid",
    }
    assert set(manifest["label"]) == {"cat", "dog"}
    assert (manifest["error"] == "").all()


def test_label_folders_and_skipped_files(tmp_path):
    image(tmp_path / "cat" / "a.png")
    image(tmp_path / "dog" / "nested" / "b.jpg")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    image(tmp_path / "loose.png")
    manifest = scan(tmp_path)
    assert manifest.attrs["layout"] == "label-folders"
    assert manifest[["path", "split", "label"]].values.tolist() == [
        ["cat/a.png", "", "cat"],
        ["dog/nested/b.jpg", "", "dog"],
    ]
    skipped = {item["path"]: item["reason"] for item in manifest.attrs["skipped"]}
    assert skipped == {
        "cat/notes.txt": "not an image (.txt)",
        "loose.png": "not inside a <label>/ folder",
    }


def test_csv_with_relative_paths(tmp_path):
    image(tmp_path / "images" / "one.png")
    image(tmp_path / "images" / "two.png")
    (tmp_path / "list.csv").write_text(
        "path,label,split,group\nimages/one.png,cat,train,g1\nimages/two.png,dog,val,g2\n"
        "images/missing.png,dog,test,g3\n"
    )
    manifest = scan(tmp_path / "list.csv")
    assert manifest.attrs["layout"] == "csv"
    assert manifest.attrs["root"] == str(tmp_path.resolve())
    rows = manifest.set_index("path")
    assert rows.loc["images/two.png", "split"] == "valid"
    assert rows.loc["images/one.png", "group"] == "g1"
    assert rows.loc["images/missing.png", "error"] == "file not found"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,label\na.png,cat\n", "missing column"),
        ("path,label,split\na.png,cat,tst\n", "column 'split' has values"),
        ('path,label\n"a.png,cat\n', "not a readable CSV"),
    ],
)
def test_malformed_csv_errors_name_the_file(tmp_path, text, message):
    source = tmp_path / "broken.csv"
    source.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        scan(source)
    assert "broken.csv" in str(error.value)


def test_lineage_fills_group_parent_origin_and_copies_inherit_group(tmp_path):
    image(tmp_path / "train" / "cat" / "source.png")
    image(tmp_path / "train" / "cat" / "source_invert.png")
    image(tmp_path / "valid" / "cat" / "other.png")
    append_lineage(
        tmp_path,
        [
            {"path": "train/cat/source.png", "group": "scene-7", "origin": "frame"},
            {
                "path": "train/cat/source_invert.png",
                "parent": "train/cat/source.png",
                "origin": "internet",
                "operation": "invert",
            },
        ],
    )
    manifest = scan(tmp_path).set_index("path")
    assert manifest.loc["train/cat/source.png", "group"] == "scene-7"
    assert manifest.loc["train/cat/source_invert.png", "parent"] == "train/cat/source.png"
    assert manifest.loc["train/cat/source_invert.png", "group"] == "scene-7"
    assert manifest.loc["train/cat/source_invert.png", "origin"] == "internet"
    assert manifest.loc["valid/cat/other.png", "group"] == ""
    assert "splitsafe-lineage.csv" not in {s["path"] for s in scan(tmp_path).attrs["skipped"]}


def test_copy_without_group_takes_parent_path_as_group(tmp_path):
    image(tmp_path / "cat" / "a.png")
    image(tmp_path / "cat" / "a_noise.png")
    append_lineage(tmp_path, [{"path": "cat/a_noise.png", "parent": "cat/a.png"}])
    manifest = scan(tmp_path).set_index("path")
    assert manifest.loc["cat/a_noise.png", "group"] == "cat/a.png"


def test_missing_dataset_and_non_csv_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="not a CSV"):
        scan(tmp_path / "file.txt")


def test_scan_command_prints_summary_and_writes_manifest(tmp_path, capsys):
    image(tmp_path / "data" / "train" / "cat" / "a.png")
    image(tmp_path / "data" / "valid" / "dog" / "b.png")
    (tmp_path / "data" / "train" / "cat" / "readme.md").write_text("x")
    out = tmp_path / "manifest.csv"
    assert main(["scan", str(tmp_path / "data"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "layout: split-folders" in printed and "images: 2" in printed
    assert "skipped files: 1" in printed and "not an image (.md)" in printed
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert written["path"].tolist() == ["train/cat/a.png", "valid/dog/b.png"]
    assert main(["scan", str(tmp_path / "missing")]) == 2
