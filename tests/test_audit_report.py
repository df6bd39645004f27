"""The audit report and its HTML helpers: self-contained, evidence shown, robust to bad files."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
from PIL import Image

from data.findings import Finding
from interpret import html
from interpret.audit_report import audit_json, border_boxes, json_text, write_audit_report


def save_gray(path, value: int = 128, size=(80, 60)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def decode(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB")).astype(int)


def is_red(pixel) -> bool:
    red, green, blue = pixel
    return red > 120 and red - max(green, blue) > 70


def test_thumbnail_is_small_jpeg_and_never_enlarged(tmp_path):
    save_gray(tmp_path / "big.png", size=(640, 320))
    save_gray(tmp_path / "small.png", size=(40, 30))
    big = Image.open(io.BytesIO(html.thumbnail_bytes(tmp_path / "big.png", size=160)))
    small = Image.open(io.BytesIO(html.thumbnail_bytes(tmp_path / "small.png", size=160)))
    assert big.format == "JPEG" and big.size == (160, 80)
    assert small.size == (40, 30)


def test_rectangle_marks_the_strip_in_thumbnail_coordinates(tmp_path):
    save_gray(tmp_path / "frame.png", size=(400, 200))
    # a strip 10 px tall starting 20 px below the top edge, in original pixels
    boxes = border_boxes({"border_top_width": 10, "border_top_offset": 20})
    assert boxes(400, 200) == [(0, 20, 400, 30)]
    pixels = decode(html.thumbnail_bytes(tmp_path / "frame.png", size=200, boxes=boxes))
    # thumbnail is 200x100 (scale 0.5): the outline runs along rows ~10 and ~15
    assert is_red(pixels[10, 100]) or is_red(pixels[9, 100])
    assert not is_red(pixels[50, 100])  # the middle of the image is untouched
    assert not is_red(pixels[3, 100])


def test_border_boxes_for_every_side():
    row = {f"border_{side}_width": 2 for side in ("top", "bottom", "left", "right")}
    row |= {f"border_{side}_offset": 3 for side in ("top", "bottom", "left", "right")}
    assert border_boxes(row)(100, 50) == [
        (0, 3, 100, 5),
        (0, 45, 100, 47),
        (3, 0, 5, 50),
        (95, 0, 97, 50),
    ]


def test_broken_or_missing_file_gives_a_placeholder(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    broken = html.thumbnail_tag(tmp_path / "broken.jpg", caption="broken.jpg")
    missing = html.thumbnail_tag(tmp_path / "gone.png", caption="gone.png")
    for tag in (broken, missing):
        assert 'class="placeholder"' in tag and "<img" not in tag
    assert "cannot show broken.jpg" in broken


def test_table_escapes_text_and_renders_custom_cells():
    frame = pd.DataFrame({"name": ["<script>alert(1)</script>", "b"], "score": [0.123456, 2.0]})
    rendered = html.table(frame, cell=lambda column, value, row: "<b>x</b>" if row == 1 else None)
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
    assert "0.123" in rendered and "<b>x</b>" in rendered
    assert "more rows not shown" in html.table(frame, max_rows=1)


def findings_for(tmp_path):
    root = tmp_path / "dataset"
    save_gray(root / "valid/a/1.png", 100)
    save_gray(root / "train/a/2.png", 104)
    save_gray(root / "train/b/3.png", 30)
    (root / "train/b/4.jpg").parent.mkdir(parents=True, exist_ok=True)
    (root / "train/b/4.jpg").write_bytes(b"broken")
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 0, 255)).save(buffer, format="PNG")
    pairs = pd.DataFrame(
        {
            "path_a": ["valid/a/1.png"],
            "path_b": ["train/a/2.png"],
            "kind": ["near"],
            "similarity": [0.97],
            "phash_distance": [3],
        }
    )
    borders = pd.DataFrame(
        {
            "path": ["train/b/3.png", "train/b/4.jpg"],
            "label": ["b", "b"],
            "border_left_width": [2, 2],
            "border_left_offset": [3, 3],
        }
    )
    findings = [
        Finding(
            rule="near-duplicates",
            title="No valid image has a near-duplicate in train",
            passed=False,
            summary="1 valid images have a near-duplicate in train, e.g. valid/a/1.png ~ "
            "train/a/2.png (similarity 0.97, pHash distance 3)",
            count=1,
            examples=pairs,
            details={"pairs_by_kind": {"near": 1}},
            test="audits/test_duplicates.py::test_no_near_duplicates_across_splits[valid-train]",
        ),
        Finding(
            rule="border-artifacts",
            title="No class is marked by a border",
            passed=True,
            summary="no class differs",
            examples=borders,
            figures={"share with a border": buffer.getvalue()},
            details={"per_class": {"a": {"share": 0.0}, "b": {"share": 1.0}}},
            warning=True,
            test="audits/test_borders.py::test_no_border_marks_a_class",
        ),
    ]
    outcomes = [
        {
            "test": "audits/test_model_focus.py::test_model_looks_at_content",
            "status": "skipped",
            "reason": "no --model given",
            "rule": "model-focus",
        }
    ]
    return root, findings, outcomes


def test_report_is_self_contained_with_sections_and_evidence(tmp_path):
    root, findings, outcomes = findings_for(tmp_path)
    report_dir = tmp_path / "reports"
    (report_dir / "data_docs").mkdir(parents=True)
    (report_dir / "data_docs" / "index.html").write_text("<html></html>")
    html_path, json_path = write_audit_report(
        findings,
        report_dir=report_dir,
        config={"near_duplicate_similarity": 0.9, "split_pairs": [["valid", "train"]]},
        dataset={"dataset": str(root), "images": 4},
        dataset_root=root,
        outcomes=outcomes,
    )
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "splitsafe audit: FAILED" in page
    for anchor in (
        "summary",
        "near-duplicates",
        "border-artifacts",
        "model-focus",
        "configuration",
    ):
        assert f'id="{anchor}"' in page
    assert "http://" not in page and "https://" not in page
    # the pair side by side (2 thumbnails), the border example (1) and a placeholder for 4.jpg
    assert page.count("data:image/jpeg;base64,") == 3
    assert page.count('class="placeholder"') == 1
    assert page.count("data:image/png;base64,") == 1  # the figure
    assert "status-failed" in page and "status-warning" in page and "status-skipped" in page
    assert "no --model given" in page and 'href="data_docs/index.html"' in page
    assert "near_duplicate_similarity" in page  # the effective configuration
    report = json.loads(json_path.read_text())
    assert report["passed"] is False
    assert report["counts"] == {"failed": 1, "warning": 1, "skipped": 1}
    assert report["findings"][0]["examples"] == [
        {
            "path_a": "valid/a/1.png",
            "path_b": "train/a/2.png",
            "kind": "near",
            "similarity": 0.97,
            "phash_distance": 3,
        }
    ]
    assert report["findings"][1]["figures"] == ["share with a border"]
    assert report["data_docs"] == "data_docs/index.html"


def test_border_example_thumbnail_has_the_strip_outlined(tmp_path):
    root, findings, _ = findings_for(tmp_path)
    page = write_audit_report(
        findings[1:], report_dir=tmp_path / "r", config={}, dataset={}, dataset_root=root
    )[0].read_text()
    start = page.index("data:image/jpeg;base64,") + len("data:image/jpeg;base64,")
    encoded = page[start : page.index('"', start)]
    import base64

    pixels = decode(base64.b64decode(encoded))  # 80x60 image, strip at x = 3..5
    assert any(is_red(pixels[30, x]) for x in range(1, 7))
    assert not is_red(pixels[30, 40])


def test_json_lists_skipped_and_errored_tests_and_passes_when_clean():
    passed = Finding(rule="integrity", title="t", passed=True, summary="all decode", test="x")
    report = audit_json(
        [passed],
        config={},
        dataset={},
        outcomes=[{"test": "y", "status": "skipped", "reason": "no test split", "rule": ""}],
    )
    assert report["passed"] is True
    assert report["findings"][1] == {
        "rule": "",
        "title": "",
        "test": "y",
        "status": "skipped",
        "summary": "no test split",
        "count": 0,
        "examples": [],
        "details": {},
        "figures": [],
    }
    errored = audit_json(
        [passed],
        config={},
        dataset={},
        outcomes=[{"test": "z", "status": "error", "reason": "boom"}],
    )
    assert errored["passed"] is False


def test_json_text_is_the_same_data_with_one_line_per_flat_record():
    value = {
        "passed": False,
        "findings": [
            {"rule": "image-quality", "examples": [{"path": "a.png", "width": 3}, {"path": "b"}]},
            {"rule": "integrity", "examples": [], "details": {"counts": [1, 2], "nan": None}},
        ],
        "dataset": {"splits": {"train": 7}, "name": "d\u00e9mo"},
    }
    text = json_text(value)
    assert json.loads(text) == value
    lines = text.splitlines()
    assert '      "examples": [' in lines  # nested containers are indented as with indent=2
    assert '        {"path": "a.png", "width": 3},' in lines  # each flat record on one line
    assert '        "counts": [1, 2],' in lines
    for scalar in (None, 1.5, "x", [], {}, [[]], {"a": {}}):
        assert json.loads(json_text(scalar)) == scalar
