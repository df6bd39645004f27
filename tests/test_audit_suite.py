"""The audit suite end to end: small generated datasets, one planted fault each, a clean twin.

Each dataset is audited by ``python -m pytest <audit files> --dataset X`` in a subprocess (as a
user or CI runs it); the tests read the exit code, the JUnit XML and audit.json. Also: the
usage errors of the plugin, and the pure audit functions on hand-made tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data.duplicate_audit import (
    audit_cross_split_duplicates,
    audit_duplicates_within_splits,
    audit_label_conflicts,
    cross_split_pairs,
    distinct_sources,
    missing_splits_reason,
    within_split_pairs,
)
from data.integrity import audit_integrity
from data.settings import AuditConfig

REPOSITORY = Path(__file__).resolve().parents[1]
MY_AUDITS = ["audits/test_integrity.py", "audits/test_expectations.py", "audits/test_duplicates.py"]
LABELS = ("cat", "dog")
SIDE = 64

INTEGRITY = "audits/test_integrity.py::test_every_image_decodes"
EXPECTATIONS = "audits/test_expectations.py::test_dataset_meets_expectations"
NEAR_VALID_TRAIN = "audits/test_duplicates.py::test_no_near_duplicates_across_splits[valid-train]"
LABEL_CONFLICTS = "audits/test_duplicates.py::test_no_image_under_two_labels"
WITHIN_SPLIT = "audits/test_duplicates.py::test_no_duplicates_within_a_split"


# --- generated datasets ---------------------------------------------------------------------


def random_picture(generator: np.random.Generator) -> Image.Image:
    """A 64x64 RGB picture of smooth random structure (independent pictures are far apart)."""
    coarse = generator.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    picture = Image.fromarray(coarse, "RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    noise = generator.normal(0, 6, size=(SIDE, SIDE, 3))
    return Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8), "RGB")


def make_clean_dataset(root: Path, *, seed: int = 0, train: int = 10, valid: int = 4) -> Path:
    """``root/{train,valid}/{cat,dog}/NN.png``: 28 distinct pictures, nothing wrong."""
    generator = np.random.default_rng(seed)
    for split, count in (("train", train), ("valid", valid)):
        for label in LABELS:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for number in range(count):
                random_picture(generator).save(folder / f"{label}-{split}-{number:02d}.png")
    return root


def brightened(path: Path, amount: int = 20) -> Image.Image:
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(np.int16) + amount
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def plant(root: Path, fault: str) -> dict:
    """Plant one fault into a clean dataset; return what the audits should report.

    Returns
    -------
    dict
        ``failed``: node ids expected to fail; ``files``: paths each failing test must name.
    """
    if fault == "clean":
        return {"failed": set(), "files": {}}
    if fault == "broken-file":
        (root / "train" / "cat" / "truncated.jpg").write_bytes(
            b"\xff\xd8\xff\xe0 not really a jpeg"
        )
        named = "train/cat/truncated.jpg"
        return {
            "failed": {INTEGRITY, EXPECTATIONS},
            "files": {INTEGRITY: [named], EXPECTATIONS: [named]},
        }
    if fault == "exact-copy":
        shutil.copyfile(root / "train/cat/cat-train-03.png", root / "valid/cat/copied.png")
        pair = ["valid/cat/copied.png", "train/cat/cat-train-03.png"]
        return {"failed": {NEAR_VALID_TRAIN, EXPECTATIONS}, "files": {NEAR_VALID_TRAIN: pair}}
    if fault == "near-copy":
        brightened(root / "train/dog/dog-train-05.png").save(
            root / "valid/dog/brighter.jpg", quality=80
        )
        pair = ["valid/dog/brighter.jpg", "train/dog/dog-train-05.png"]
        return {"failed": {NEAR_VALID_TRAIN}, "files": {NEAR_VALID_TRAIN: pair}}
    if fault == "label-conflict":
        brightened(root / "train/cat/cat-train-07.png", 12).save(root / "train/dog/mislabelled.png")
        pair = ["train/cat/cat-train-07.png", "train/dog/mislabelled.png"]
        return {"failed": {LABEL_CONFLICTS}, "files": {LABEL_CONFLICTS: pair}}
    raise ValueError(fault)


def run_audits(dataset: Path, report_dir: Path, cache_dir: Path, *extra: str, files=MY_AUDITS):
    """Run the audit suite in a subprocess; return (exit code, output, junit root, audit.json)."""
    junit = report_dir / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "pytest",
        *files,
        "--dataset",
        str(dataset),
        "--report-dir",
        str(report_dir),
        "--cache-dir",
        str(cache_dir),
        f"--junitxml={junit}",
        "-p",
        "no:cacheprovider",
        "-q",
        *extra,
    ]
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        command, cwd=REPOSITORY, capture_output=True, text=True, timeout=600, env=environment
    )
    output = done.stdout + done.stderr
    tree = ElementTree.parse(junit).getroot() if junit.is_file() else None
    report_json = report_dir / "audit.json"
    report = json.loads(report_json.read_text()) if report_json.is_file() else None
    return done.returncode, output, tree, report


def junit_outcomes(tree) -> dict[str, str]:
    """node id -> passed / failed / error / skipped from a JUnit XML tree."""
    outcomes = {}
    for case in tree.iter("testcase"):
        module = case.get("classname").replace(".", "/") + ".py"
        name = f"{module}::{case.get('name')}"
        status = "passed"
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                status = "failed" if child.tag == "failure" else child.tag
        outcomes[name] = status
    return outcomes


# Faults that trip disjoint sets of tests share a dataset (one subprocess run each scenario).
SCENARIOS = {
    "clean": (),
    "broken-near-conflict": ("broken-file", "near-copy", "label-conflict"),
    "exact-copy": ("exact-copy",),
}


def plant_all(root: Path, faults) -> dict:
    expected = {"failed": set(), "files": {}}
    for fault in faults:
        planted = plant(root, fault)
        assert not expected["failed"] & planted["failed"], "scenario faults must not overlap"
        expected["failed"] |= planted["failed"]
        expected["files"].update(planted["files"])
    return expected


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """Each scenario audited once: name -> (expected, exit code, output, junit, json)."""
    base = tmp_path_factory.mktemp("audit-suite")
    cache_dir = base / "cache"
    results = {}
    for name, faults in SCENARIOS.items():
        dataset = make_clean_dataset(base / name / "data")
        expected = plant_all(dataset, faults)
        results[name] = (expected, *run_audits(dataset, base / name / "reports", cache_dir))
    return results


@pytest.mark.parametrize("fault", SCENARIOS)
def test_exactly_the_intended_audits_fail(audited, fault):
    expected, code, output, tree, _ = audited[fault]
    assert tree is not None, output
    outcomes = junit_outcomes(tree)
    failed = {name for name, status in outcomes.items() if status in {"failed", "error"}}
    assert failed == expected["failed"], output
    assert code == (1 if expected["failed"] else 0), output
    # test/valid pairs are skipped with the reason, not passed silently
    assert (
        outcomes["audits/test_duplicates.py::test_no_near_duplicates_across_splits[test-train]"]
        == "skipped"
    )


@pytest.mark.parametrize("fault", [name for name in SCENARIOS if name != "clean"])
def test_messages_and_report_name_the_planted_files(audited, fault):
    expected, _, output, _, report = audited[fault]
    by_test = {entry["test"]: entry for entry in report["findings"]}
    for test, paths in expected["files"].items():
        entry = by_test[test]
        assert entry["status"] == "failed"
        for path in paths:
            assert path in entry["summary"], entry["summary"]
            assert path in output  # the terminal shows the evidence too
        assert f"audit.html#{entry['rule']}" in entry["summary"]
    # the planted files appear nowhere among the passing findings' examples
    planted = {p for paths in expected["files"].values() for p in paths}
    for entry in report["findings"]:
        if entry["status"] == "passed":
            listed = json.dumps(entry["examples"])
            assert not any(path in listed for path in planted), entry


def test_near_copy_evidence_in_json_and_html(audited, tmp_path):
    _, _, _, _, report = audited["broken-near-conflict"]
    entry = next(e for e in report["findings"] if e["test"] == NEAR_VALID_TRAIN)
    assert entry["rule"] == "near-duplicates" and entry["count"] == 1
    (pair,) = entry["examples"]
    assert (pair["path_a"], pair["path_b"]) == (
        "valid/dog/brighter.jpg",
        "train/dog/dog-train-05.png",
    )
    assert pair["kind"] == "near" and pair["similarity"] >= 0.9
    report_dir = Path(report["dataset"]["root"]).parent / "reports"
    page = (report_dir / "audit.html").read_text()
    assert 'id="near-duplicates"' in page
    assert page.count("data:image/jpeg;base64,") >= 2  # both images of the pair as thumbnails
    assert "https://" not in page and "http://" not in page


def test_clean_twin_passes_and_writes_reports(audited):
    _, code, output, _, report = audited["clean"]
    assert code == 0, output
    assert report["passed"] is True
    statuses = {e["test"]: e["status"] for e in report["findings"]}
    assert statuses[INTEGRITY] == "passed" and statuses[NEAR_VALID_TRAIN] == "passed"
    skipped = [e for e in report["findings"] if e["status"] == "skipped"]
    assert {e["rule"] for e in skipped} == {"near-duplicates"}
    assert all("no 'test' split" in e["summary"] for e in skipped)
    assert "splitsafe audit report" in output and "audit.html" in output
    report_dir = Path(report["dataset"]["root"]).parent / "reports"
    assert (report_dir / "data_docs" / "index.html").is_file()
    assert report["data_docs"] == "data_docs/index.html"
    assert 'href="data_docs/index.html"' in (report_dir / "audit.html").read_text()


def test_broken_file_inventory_and_within_split_warning(audited):
    _, _, _, _, report = audited["broken-near-conflict"]
    by_test = {entry["test"]: entry for entry in report["findings"]}
    # the mislabelled copy is also a duplicate within train: reported, not failed (default)
    assert by_test[WITHIN_SPLIT]["status"] == "warning"
    assert "train/dog/mislabelled.png" in by_test[WITHIN_SPLIT]["summary"]
    integrity = by_test[INTEGRITY]
    assert [row["path"] for row in integrity["examples"]] == ["train/cat/truncated.jpg"]
    assert integrity["details"]["inventory"]["decodable"] == 30
    assert integrity["details"]["inventory"]["formats"] == {"PNG": 29, "JPEG": 1}


@pytest.mark.skipif(
    len(list((REPOSITORY / "audits").glob("test_*.py"))) < 8,
    reason="the whole audit suite (audits 1-10) is not in place yet",
)
def test_clean_twin_passes_the_whole_audit_folder(tmp_path):
    dataset = make_clean_dataset(tmp_path / "data", train=12, valid=6)
    code, output, tree, report = run_audits(
        dataset, tmp_path / "reports", tmp_path / "cache", files=["audits/"]
    )
    failed = [e["test"] for e in report["findings"] if e["status"] in {"failed", "error"}]
    assert code == 0 and not failed, output


# --- usage errors and settings through the command line --------------------------------------


def run_pytest(*arguments: str, cwd: Path = REPOSITORY):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stdout + done.stderr


def test_missing_dataset_is_a_usage_error(tmp_path):
    code, output = run_pytest("audits/test_integrity.py", "--dataset", str(tmp_path / "nowhere"))
    assert code == pytest.ExitCode.USAGE_ERROR
    assert f"--dataset {tmp_path / 'nowhere'}: no such file or folder" in output
    assert "Traceback" not in output


def test_unreadable_csv_is_a_usage_error(tmp_path):
    table = tmp_path / "images.csv"
    table.write_text("file,class\na.png,cat\n")
    code, output = run_pytest("audits/test_integrity.py", "--dataset", str(table))
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "missing column(s) ['path', 'label']" in output and "Traceback" not in output


def test_no_dataset_says_how_to_get_the_demo():
    code, output = run_pytest("audits/test_integrity.py")
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "python -m data demo demo/" in output and "--dataset demo/movies" in output


def test_project_tests_need_no_dataset(tmp_path):
    code, output = run_pytest("tests/test_audit_report.py", "-q", "--co")
    assert code == 0, output
    # a configured default that does not exist matters only when audits are collected
    missing = f"splitsafe_dataset={tmp_path / 'gone'}"
    code, output = run_pytest("tests/test_audit_report.py", "-q", "--co", "-o", missing)
    assert code == 0, output
    code, output = run_pytest("audits/test_integrity.py", "--co", "-o", missing)
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "splitsafe_dataset (ini)" in output and "no such file or folder" in output


def test_configured_default_dataset_is_used(tmp_path):
    dataset = make_clean_dataset(tmp_path, train=1, valid=1)
    code, output = run_pytest(
        "audits/test_integrity.py", "--co", "-o", f"splitsafe_dataset={dataset}"
    )
    assert code == 0, output
    assert f"splitsafe: dataset {dataset} (split-folders, 4 images" in output


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("near_duplicate_similarity", "expected KEY=VALUE"),
        ("no_such_key=1", "unknown splitsafe setting(s) ['no_such_key']"),
        ("near_duplicate_similarity=high", "expected a float"),
    ],
)
def test_bad_splitsafe_set_is_a_usage_error(tmp_path, setting, message):
    dataset = make_clean_dataset(tmp_path, train=1, valid=1)
    code, output = run_pytest(
        "audits/test_integrity.py", "--dataset", str(dataset), "--splitsafe-set", setting, "--co"
    )
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "--splitsafe-set" in output and message in output


def test_unknown_metadata_ignore_name_is_a_usage_error(tmp_path):
    dataset = make_clean_dataset(tmp_path, train=1, valid=1)
    code, output = run_pytest(
        "audits/test_integrity.py", "--dataset", str(dataset),
        "--splitsafe-set", "metadata_ignore=brightness,colour", "--co",
    )  # fmt: skip
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "metadata_ignore has unknown feature(s) ['colour']" in output


def test_settings_from_dataset_toml_and_command_line_reach_the_header(tmp_path):
    dataset = make_clean_dataset(tmp_path, train=1, valid=1)
    (dataset / "splitsafe.toml").write_text(
        "near_duplicate_similarity = 0.97\n"
        "balance_max_ratio = 5.0\n"
        'split_pairs = [["valid", "train"]]\n'
    )
    code, output = run_pytest(
        "audits/test_duplicates.py",
        "--dataset",
        str(dataset),
        "--splitsafe-set",
        "balance_max_ratio=7",
        "--co",
    )
    assert code == 0, output
    assert "near_duplicate_similarity=0.97" in output  # splitsafe.toml over the default
    assert "balance_max_ratio=7.0" in output  # command line over splitsafe.toml
    assert "split-folders, 4 images (train 2, valid 2), 2 labels" in output
    # split_pairs from splitsafe.toml drives the parametrisation
    assert "test_no_near_duplicates_across_splits[valid-train]" in output
    assert "[test-train]" not in output


def test_bad_dataset_toml_is_a_usage_error(tmp_path):
    dataset = make_clean_dataset(tmp_path, train=1, valid=1)
    (dataset / "splitsafe.toml").write_text("near_duplicat_similarity = 0.97\n")
    code, output = run_pytest("audits/test_integrity.py", "--dataset", str(dataset), "--co")
    assert code == pytest.ExitCode.USAGE_ERROR
    assert "splitsafe.toml: unknown splitsafe setting(s) ['near_duplicat_similarity']" in output


# --- the pure audit functions on hand-made tables --------------------------------------------


def pair_table(rows: list[dict]) -> pd.DataFrame:
    defaults = {
        "group_a": "",
        "group_b": "",
        "kind": "near",
        "similarity": 0.95,
        "phash_distance": 4,
        "inverted": False,
        "flipped": False,
    }
    return pd.DataFrame([{**defaults, **row} for row in rows])


def test_cross_split_pairs_are_oriented_and_counted_per_query_image():
    pairs = pair_table(
        [
            {"path_a": "train/a/1.png", "path_b": "valid/a/9.png", "split_a": "train",
             "split_b": "valid", "label_a": "a", "label_b": "a"},
            {"path_a": "valid/a/9.png", "path_b": "train/a/2.png", "split_a": "valid",
             "split_b": "train", "label_a": "a", "label_b": "a", "kind": "exact"},
            {"path_a": "test/a/5.png", "path_b": "train/a/3.png", "split_a": "test",
             "split_b": "train", "label_a": "a", "label_b": "a"},
        ]
    )  # fmt: skip
    oriented = cross_split_pairs(pairs, query_split="valid", reference_split="train")
    assert list(oriented["path_a"]) == ["valid/a/9.png", "valid/a/9.png"]
    assert list(oriented["path_b"]) == ["train/a/2.png", "train/a/1.png"]  # exact first
    finding = audit_cross_split_duplicates(
        pairs,
        query_split="valid",
        reference_split="train",
        rule=AuditConfig().near_duplicate_rule(),
    )
    assert not finding.passed and finding.count == 1
    assert finding.summary.startswith("1 valid images have a copy or near-duplicate in train")
    assert "valid/a/9.png ~ train/a/2.png (same file bytes)" in finding.summary
    assert "rule: descriptor |cosine| >= 0.94" in finding.summary  # the rule the search applied


def test_within_split_ignores_relatives_and_fails_only_when_asked():
    pairs = pair_table(
        [
            {"path_a": "train/a/1.png", "path_b": "train/a/1_invert.png", "split_a": "train",
             "split_b": "train", "label_a": "a", "label_b": "a", "group_a": "g1",
             "group_b": "g1"},
            {"path_a": "train/a/2.png", "path_b": "train/b/7.png", "split_a": "train",
             "split_b": "train", "label_a": "a", "label_b": "b"},
        ]
    )  # fmt: skip
    assert list(within_split_pairs(pairs)["path_b"]) == ["train/b/7.png"]
    reported = audit_duplicates_within_splits(pairs, rule=AuditConfig().near_duplicate_rule())
    assert reported.passed and reported.status == "warning" and reported.count == 1
    assert not audit_duplicates_within_splits(
        pairs, rule=AuditConfig().near_duplicate_rule(), fail=True
    ).passed
    conflicts = audit_label_conflicts(pairs, similarity=0.9)
    assert conflicts.count == 1 and "labelled 'a' and 'b'" in conflicts.summary
    # a look-alike (descriptor close, pHash far) under another label is not a conflict
    look_alike = pairs.assign(phash_distance=20)
    assert audit_label_conflicts(look_alike, similarity=0.9).passed
    copies = look_alike.assign(kind="exact")
    assert audit_label_conflicts(copies, similarity=0.9).count == 1  # same label: not a conflict


def test_distinct_sources_groups_augmented_copies():
    pairs = pair_table(
        [
            {"path_a": f"train/a/x_{n}.png", "path_b": "train/b/y.png", "split_a": "train",
             "split_b": "train", "label_a": "a", "label_b": "b", "group_a": "train/a/x.png"}
            for n in range(6)
        ]
    )  # fmt: skip
    assert distinct_sources(pairs) == 1


def test_missing_splits_reason_names_what_is_there():
    features = pd.DataFrame({"split": ["train", "valid"]})
    assert missing_splits_reason(features, ("valid", "train")) == ""
    reason = missing_splits_reason(features, ("test", "train"))
    assert reason == "the dataset has no 'test' split (splits present: train, valid)"


def test_integrity_names_broken_files_and_warns_on_skipped_files():
    features = pd.DataFrame(
        {
            "path": ["train/a/1.png", "train/a/2.png"],
            "split": ["train", "train"],
            "label": ["a", "a"],
            "error": ["", "cannot identify image file"],
            "format": ["PNG", ""],
            "mode": ["RGB", ""],
            "width": [64, 0],
            "height": [48, 0],
            "file_size": [1000, 12],
        }
    )
    finding = audit_integrity(features)
    assert not finding.passed and finding.count == 1
    assert "train/a/2.png (cannot identify image file)" in finding.summary
    assert finding.details["inventory"]["sizes"]["width"] == {"min": 64, "median": 64.0, "max": 64}
    fine = audit_integrity(
        features.iloc[:1], skipped=[{"path": "notes.txt", "reason": "not an image"}]
    )
    assert fine.passed and fine.status == "warning" and "notes.txt" in fine.summary
