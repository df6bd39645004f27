"""The demo's story end to end, as ``make demo`` tells it, on the ``--small`` demo (CPU).

Generate the demo, audit it (exactly the rules of the planted traps fail), fix it with the
tools (split by group, crop the border lines, upsample the smallest class), audit again (every
audit passes or skips), train a small model without pretrained weights (the trainer's audit gate
passes), and audit the model's focus. Every step is the command line a user types, run in a
subprocess from the repository root.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# The rules the planted traps of data/demo.py trip, and which trap trips each.
EXPECTED_BEFORE = {
    "border-artifacts",  # (a) thin dark lines on every sky-castle frame
    "metadata-shortcut",  # (a) the lines' border profile predicts the label
    "group-leakage",  # (b) scenes in both splits, (c) a source and its copies on both sides
    "scene-leakage",  # (b) inferred from the images alone
    "near-duplicates",  # (b) neighbouring frames, (c) copies across splits
    "expectations",  # (c) a grayscale copy of a gray sketch has its source's bytes, other split
    "augmentation-lineage",  # (c) copies in valid, copies apart from their source
    "class-balance",  # (d) the largest class has about 4 times the images of the smallest
}
FIXED_STATUSES = {"passed", "warning", "skipped"}  # a warning is reported, never failed


def run(*arguments, env):
    return subprocess.run(
        [sys.executable, *map(str, arguments)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def audit(dataset, report_dir, env, *extra):
    done = run(
        "-m",
        "pytest",
        "audits/",
        "--dataset",
        dataset,
        "--report-dir",
        report_dir,
        "--cache-dir",
        env["SPLITSAFE_CACHE"],
        "-q",
        "-p",
        "no:cacheprovider",
        *extra,
        env=env,
    )
    report = report_dir / "audit.json"
    return done, json.loads(report.read_text()) if report.is_file() else None


def statuses(report, status):
    return {finding["rule"] for finding in report["findings"] if finding["status"] == status}


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Every step's CompletedProcess (and audit.json where there is one), in story order."""
    work = tmp_path_factory.mktemp("story")
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    env["SPLITSAFE_CACHE"] = str(work / "cache")  # python -m train has no --cache-dir
    out = work / "demo"
    steps = {"demo": run("-m", "data", "demo", out, "--small", env=env)}
    steps["before"] = audit(out / "movies", work / "reports-before", env)
    steps["split"] = run(
        "-m", "data", "split", out / "movies", "--by", "group", "--seed", 0,
        "--materialize", out / "split", env=env,
    )  # fmt: skip
    steps["crop"] = run(
        "-m", "data", "crop-borders", out / "split", out / "fixed", "--keep-size",
        "--cache-dir", env["SPLITSAFE_CACHE"], env=env,
    )  # fmt: skip
    steps["upsample"] = run(
        "-m", "data", "upsample", out / "fixed", "--where", "label=ocean-voyage",
        "--where", "split=train", "--where", "origin=frame", "--ops", "invert,log", env=env,
    )  # fmt: skip
    steps["after"] = audit(out / "fixed", work / "reports-after", env)
    steps["train"] = run(
        "-m", "train", "--dataset", out / "fixed", "--arch", "resnet18", "--no-pretrained",
        "--sizes", 64, "--epochs", 0, 2, "--lr", "1e-2", "--top-losses", 4,
        "--out", work / "models", "--report-dir", work / "reports-train", env=env,
    )  # fmt: skip
    steps["model"] = audit(
        out / "fixed", work / "reports-model", env, "--model", work / "models" / "export.pkl"
    )
    return {"work": work, "out": out, **steps}


def explain(done):
    return f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def test_the_planted_traps_fail_exactly_their_audits(story):
    assert story["demo"].returncode == 0, explain(story["demo"])
    assert (story["out"] / "PLANTED.md").is_file()
    done, report = story["before"]
    assert done.returncode == 1, explain(done)
    assert statuses(report, "failed") == EXPECTED_BEFORE, explain(done)
    assert not report["passed"]
    assert (story["work"] / "reports-before" / "audit.html").is_file()


def test_the_fixed_demo_passes_every_audit(story):
    for step in ("split", "crop", "upsample"):
        assert story[step].returncode == 0, f"{step}: {explain(story[step])}"
    done, report = story["after"]
    assert done.returncode == 0, explain(done)
    assert report["passed"]
    assert {finding["status"] for finding in report["findings"]} <= FIXED_STATUSES
    assert statuses(report, "passed") >= {"border-artifacts", "near-duplicates", "class-balance"}
    # the crop kept every frame's size, so no class has a size of its own
    frames = [p for p in (story["out"] / "fixed").rglob("*.jpg") if "web-" not in p.name]
    assert {Image.open(path).size for path in frames} == {(160, 96)}


def test_training_passes_the_gate_and_writes_the_model_and_report(story):
    done = story["train"]
    assert done.returncode == 0, explain(done)
    assert "audit gate: passed" in done.stdout + done.stderr
    assert (story["work"] / "models" / "export.pkl").stat().st_size > 0
    html = (story["work"] / "reports-train" / "training.html").read_text()
    assert "ocean-voyage" in html and "sky-castle" in html


def test_the_model_focus_audit_runs_on_the_trained_model(story):
    done, report = story["model"]
    focus = [finding for finding in report["findings"] if finding["rule"] == "model-focus"]
    assert [finding["status"] for finding in focus] == ["passed"], explain(done)
    assert done.returncode == 0, explain(done)
