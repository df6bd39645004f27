"""Tests of the trainer (``python -m train``): the audit gate, the recipe, resume, the report.

Training runs on the CPU with a tiny generated dataset (3 colours x 6 train + 2 valid images of
32 px, a coloured square on noise), resnet18 from random weights, 1 epoch per stage, batch 8.
The fast unit tests never import fastai.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from train.config import TrainConfig, stage_names
from train.gate import GateResult, describe_gate, interpret_audit_run
from train.hardware import largest_batch_size

REPOSITORY = Path(__file__).resolve().parent.parent
COLOURS = {"red": (230, 30, 30), "green": (30, 210, 40), "blue": (30, 50, 235)}
QUICK = [
    "--arch",
    "resnet18",
    "--sizes",
    "32",
    "--epochs",
    "1",
    "1",
    "--bs",
    "8",
    "--lr",
    "1e-3",
    "--no-pretrained",
    "--workers",
    "0",
]


def draw_image(rng: np.random.Generator, colour: tuple, size: int):
    """A smooth random background (a 4x4 colour grid, upsampled), three random discs, and a
    square of the class colour: every image distinct (the duplicate audits pass), classes easy."""
    from PIL import Image, ImageDraw

    grid = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        radius = int(rng.integers(2, size // 4))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill)
    side = int(rng.integers(size // 3, size // 2))
    left, top = (int(v) for v in rng.integers(0, size - side, 2))
    draw.rectangle([left, top, left + side, top + side], fill=colour)
    return image


def make_dataset(
    root: Path, *, train_per_class: int = 6, valid_per_class: int = 2, size: int = 32, seed: int = 0
) -> Path:
    """``root/<split>/<colour>/*.png`` drawn by :func:`draw_image`."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("valid", valid_per_class)):
        for label, colour in COLOURS.items():
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                draw_image(rng, colour, size).save(folder / f"{label}_{split}_{index}.png")
    return root


@pytest.fixture
def one_thread():
    """Train with one CPU thread: on a shared, busy machine torch's default (one per core) is
    many times slower than one thread, and the result is the same."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pass_the_gate(monkeypatch):
    """Replace the audit subprocess with a passing result (the gate has its own tests)."""
    monkeypatch.setattr(
        "train.gate.run_audit_gate", lambda *args, **kwargs: GateResult("passed", exit_code=0)
    )


def gallery_pictures_in(html: str) -> list[tuple[bytes, str, str]]:
    """The top-losses gallery's cards: (embedded PNG bytes, caption text, path), in order."""
    import base64

    cards = re.findall(
        r'<div class="loss-card"><img src="data:image/png;base64,([^"]+)"[^>]*>'
        r'<p class="loss-caption">(.*?)</p><p class="loss-path"[^>]*>(.*?)</p></div>',
        html,
    )
    return [
        (base64.b64decode(content), re.sub(r"<[^>]+>", "", caption), path)
        for content, caption, path in cards
    ]


def embedded_confusion(html: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="confusion-matrix">(.*?)</script>', html, re.S
    )
    assert match, "the report has no embedded confusion matrix"
    return json.loads(match.group(1).replace("<\\/", "</"))


# --- the gate's reading of audit results (no subprocess) ------------------------------------


def test_gate_reads_failures_from_audit_json(tmp_path):
    findings = [
        {
            "rule": "near-duplicates",
            "test": "audits/test_duplicates.py::test_a",
            "status": "failed",
            "summary": "3 valid images have a copy in train\nmore",
        },
        {
            "rule": "integrity",
            "test": "audits/test_integrity.py::test_b",
            "status": "passed",
            "summary": "",
        },
        {
            "rule": "class-balance",
            "test": "audits/test_balance.py::test_c",
            "status": "error",
            "summary": "crashed",
        },
    ]
    (tmp_path / "audit.json").write_text(json.dumps({"passed": False, "findings": findings}))
    result = interpret_audit_run(1, tmp_path)
    assert result.status == "failed" and not result.passed
    assert [f["rule"] for f in result.failures] == ["near-duplicates", "class-balance"]
    text = describe_gate(result)
    assert "FAILED near-duplicates: 3 valid images have a copy in train" in text
    assert "more" not in text  # first line of each summary only


def test_gate_falls_back_to_junit_xml(tmp_path):
    (tmp_path / "audit-junit.xml").write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="audits.test_duplicates" name="test_no_leak">'
        '<failure message="AssertionError: 2 valid images copy train">trace</failure></testcase>'
        '<testcase classname="audits.test_integrity" name="test_ok"/>'
        '<testcase classname="audits.test_x" name="test_skip"><skipped message="no model"/>'
        "</testcase></testsuite></testsuites>"
    )
    result = interpret_audit_run(1, tmp_path)
    assert result.status == "failed"
    assert [f["rule"] for f in result.failures] == ["test_no_leak"]
    assert result.failures[0]["summary"] == "AssertionError: 2 valid images copy train"
    assert [f["status"] for f in result.findings] == ["failed", "passed", "skipped"]
    assert interpret_audit_run(0, tmp_path.parent / "nothing-here").status == "error"


@pytest.mark.parametrize("exit_code", [2, 3, 4, 5])
def test_gate_is_an_error_when_the_suite_cannot_run(tmp_path, exit_code):
    result = interpret_audit_run(exit_code, tmp_path, output="ERROR: usage")
    assert result.status == "error" and not result.passed


def test_gate_passes_when_every_audit_passes(tmp_path):
    (tmp_path / "audit.json").write_text(
        json.dumps(
            [
                {"rule": "integrity", "test": "t", "status": "passed", "summary": ""},
                {"rule": "near-duplicates", "test": "u", "status": "warning", "summary": "w"},
            ]
        )
    )
    assert interpret_audit_run(0, tmp_path).passed


# --- pure pieces ----------------------------------------------------------------------------


def test_largest_batch_size_finds_the_limit():
    tried = []

    def fits(size):
        tried.append(size)
        return size <= 100

    found = largest_batch_size(fits, start=8, limit=1024)
    assert 100 - 100 // 8 <= found <= 100
    assert max(tried) < 256  # doubling stops at the first failure
    assert largest_batch_size(lambda size: True, start=8, limit=64) == 64
    with pytest.raises(RuntimeError, match="does not fit"):
        largest_batch_size(lambda size: False)


def test_config_validates_and_names_stages():
    config = TrainConfig(dataset=Path("d"), sizes=(300, 350), epochs=(4, 2))
    assert stage_names(config) == ["frozen-300", "unfrozen-300", "frozen-350", "unfrozen-350"]
    assert stage_names(config.replace(stage2=False)) == ["frozen-300", "frozen-350"]
    assert config.as_dict()["sizes"] == [300, 350]
    with pytest.raises(ValueError, match="--epochs"):
        TrainConfig(dataset=Path("d"), epochs=(1,))
    with pytest.raises(ValueError, match="--bs"):
        TrainConfig(dataset=Path("d"), batch_size=0)


def test_prediction_tables_agree_with_sklearn():
    from sklearn.metrics import confusion_matrix

    from train.report import class_metrics, confusion_table, most_confused, prediction_table

    vocab = ["a", "b", "c"]
    probabilities = np.array(
        [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]]
    )
    targets = np.array([0, 1, 1, 2, 1])
    table = prediction_table(list("vwxyz"), probabilities, targets, np.arange(5.0), vocab)
    assert list(table["predicted"]) == ["a", "b", "a", "c", "a"]
    assert table["probability"].tolist() == [0.8, 0.7, 0.6, 0.8, 0.5]
    confusion = confusion_table(table, vocab)
    expected = confusion_matrix(targets, probabilities.argmax(1), labels=[0, 1, 2])
    assert (confusion.to_numpy() == expected).all()
    metrics = class_metrics(table, vocab).set_index("label")
    assert metrics.loc["b", "recall"] == pytest.approx(1 / 3)
    assert metrics.loc["a", "precision"] == pytest.approx(1 / 3)
    pairs = most_confused(confusion)
    assert pairs.iloc[0][["actual", "predicted", "count"]].tolist() == ["b", "a", 2]
    with pytest.raises(ValueError, match="expected"):
        prediction_table(["v"], probabilities, targets, np.zeros(5), vocab)


def test_training_table_refuses_an_unsplit_dataset(tmp_path):
    from data import scan
    from train.loaders import training_table

    root = make_dataset(tmp_path / "d", train_per_class=2, valid_per_class=0)
    with pytest.raises(ValueError, match="python -m data split"):
        training_table(scan(root))  # train/ only: no valid images
    table = training_table(scan(make_dataset(tmp_path / "e", train_per_class=2)))
    assert table["is_valid"].sum() == 6 and (~table["is_valid"]).sum() == 6
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in table["path"])

    # A CSV dataset (as `python -m data split` writes) trains the same way; test rows are left
    # out and the CSV's split names are normalised by the scan (val -> valid).
    rows = [(p, Path(p).parent.name, "train" if "_train_" in p else "val") for p in table["path"]]
    rows.append((rows[0][0], rows[0][1], "test"))
    csv_path = tmp_path / "split.csv"
    pd.DataFrame(rows, columns=["path", "label", "split"]).to_csv(csv_path, index=False)
    from_csv = training_table(scan(csv_path))
    assert len(from_csv) == 12 and from_csv["is_valid"].sum() == 6
    assert (
        from_csv.set_index("path")["label"].to_dict() == table.set_index("path")["label"].to_dict()
    )


def test_help_is_quick_and_does_not_import_fastai():
    code = (
        "import sys; from train.__main__ import build_parser; "
        "text = build_parser().format_help(); "
        "print('--allow-audit-failures' in text and '--threads' in text, 'fastai' in sys.modules, "
        "'torch' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True
    )
    assert completed.stdout.split() == ["True", "False", "False"]


def test_progress_bars_only_on_a_terminal():
    from train.recipe import wants_progress_bars

    class Stream:
        def __init__(self, terminal):
            self.terminal = terminal

        def isatty(self):
            if self.terminal is None:
                raise ValueError("I/O operation on closed file")
            return self.terminal

    assert wants_progress_bars(Stream(True))
    assert not wants_progress_bars(Stream(False))
    assert not wants_progress_bars(Stream(None))  # closed
    assert not wants_progress_bars(object())  # no isatty at all
    with pytest.raises(ValueError, match="--threads"):
        TrainConfig(dataset=Path("d"), threads=0)


# --- end to end (fastai on the CPU) ---------------------------------------------------------


@pytest.mark.slow
def test_gate_refuses_a_leaky_dataset_and_the_override_trains(
    tmp_path, monkeypatch, capsys, one_thread
):
    if not any((REPOSITORY / "audits").glob("test_*duplicate*.py")):
        pytest.skip("the duplicate audits (audits/) are not in this checkout")
    from fastai.vision.all import load_learner
    from sklearn.metrics import confusion_matrix

    from train.__main__ import main

    monkeypatch.setenv("SPLITSAFE_CACHE", str(tmp_path / "cache"))
    root = make_dataset(tmp_path / "leaky")
    copied = root / "valid" / "red" / "copy_of_train.png"
    copied.write_bytes((root / "train" / "red" / "red_train_0.png").read_bytes())
    out, reports = tmp_path / "models", tmp_path / "reports"
    arguments = ["--dataset", str(root), "--out", str(out), "--report-dir", str(reports), *QUICK]

    import train.gate

    recorded = []
    real_gate = train.gate.run_audit_gate

    def gate_once(*args, **kwargs):
        # The audits run for real once; the override run reuses that result (it takes ~10 s).
        if not recorded:
            recorded.append(real_gate(*args, **kwargs))
        return recorded[0]

    monkeypatch.setattr(train.gate, "run_audit_gate", gate_once)
    assert main(arguments) == 1
    captured = capsys.readouterr()
    assert "FAILED near-duplicates" in captured.out
    assert "copy_of_train.png" in captured.out
    assert "--allow-audit-failures" in captured.err
    assert not (out / "export.pkl").exists()

    assert main([*arguments, "--allow-audit-failures"]) == 0
    html = (reports / "training.html").read_text()
    assert "Trained despite failing audits" in html and "near-duplicates" in html
    assert len(gallery_pictures_in(html)) == 7  # the top-losses gallery: all 7 valid images
    assert (out / "export.pkl").is_file()
    history = pd.read_csv(out / "history.csv")
    assert history["stage"].tolist() == ["frozen-32", "unfrozen-32"]
    assert {"train_loss", "valid_loss", "accuracy"} <= set(history.columns)

    # The confusion matrix in the report and confusion.csv are the saved predictions' matrix.
    predictions = pd.read_csv(reports / "predictions.csv")
    assert len(predictions) == 7 and copied.as_posix() in set(predictions["path"])
    vocab = sorted(COLOURS)
    expected = confusion_matrix(predictions["actual"], predictions["predicted"], labels=vocab)
    embedded = embedded_confusion(html)
    assert embedded["labels"] == vocab and embedded["counts"] == expected.tolist()
    saved = pd.read_csv(reports / "confusion.csv", index_col=0)
    assert (saved.loc[vocab, vocab].to_numpy() == expected).all()
    probabilities = predictions[[f"probability:{label}" for label in vocab]].to_numpy()
    assert (np.array(vocab)[probabilities.argmax(1)] == predictions["predicted"]).all()

    learn = load_learner(out / "export.pkl")
    label, _, probabilities = learn.predict(str(copied))
    assert label in COLOURS and float(probabilities.sum()) == pytest.approx(1, abs=1e-4)


@pytest.mark.slow
def test_resume_skips_finished_stages(tmp_path, monkeypatch, capsys, one_thread):
    from fastai.learner import Learner

    from train.__main__ import main

    pass_the_gate(monkeypatch)
    root = make_dataset(tmp_path / "clean")
    out = tmp_path / "models"
    arguments = [
        "--dataset",
        str(root),
        "--out",
        str(out),
        "--report-dir",
        str(tmp_path / "reports"),
        "--no-tta",
        *QUICK,
    ]
    original = Learner.fit_one_cycle
    calls = []

    def interrupted_on_second_stage(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Learner, "fit_one_cycle", interrupted_on_second_stage)
    assert main(arguments) == 130
    state = json.loads((out / "train-state.json").read_text())
    assert [entry["stage"] for entry in state["finished"]] == ["frozen-32"]
    assert (out / "export.pkl").is_file()  # the finished stage's export survives
    first_export = (out / "export.pkl").stat().st_mtime_ns

    calls.clear()

    def counted(self, *args, **kwargs):
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Learner, "fit_one_cycle", counted)
    assert main([*arguments, "--resume"]) == 0
    assert len(calls) == 1  # only the unfinished stage trained
    assert "frozen-32: finished in an earlier run, skipped" in capsys.readouterr().out
    state = json.loads((out / "train-state.json").read_text())
    assert [entry["stage"] for entry in state["finished"]] == ["frozen-32", "unfrozen-32"]
    assert pd.read_csv(out / "history.csv")["stage"].tolist() == ["frozen-32", "unfrozen-32"]
    assert (out / "export.pkl").stat().st_mtime_ns > first_export

    # A changed setting cannot resume: a clear error naming it, exit 2, nothing trained.
    assert main([*arguments, "--resume", "--arch", "resnet34"]) == 2
    assert "arch: was 'resnet18', now 'resnet34'" in capsys.readouterr().err
    assert len(calls) == 1


@pytest.mark.slow
def test_offline_without_cached_weights_says_no_pretrained(tmp_path, monkeypatch, capsys):
    from urllib.error import URLError

    import torch.hub

    from train.__main__ import main

    pass_the_gate(monkeypatch)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty weights cache

    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    root = make_dataset(tmp_path / "clean", train_per_class=2, valid_per_class=1)
    arguments = [a for a in QUICK if a != "--no-pretrained"]
    code = main(["--dataset", str(root), "--out", str(tmp_path / "m"), *arguments])
    err = capsys.readouterr().err
    assert code == 2
    assert "--no-pretrained" in err and "Traceback" not in err


@pytest.mark.slow
def test_gallery_has_a_three_panel_picture_per_top_loss(tmp_path, one_thread):
    """The report's gallery: one original | Grad-CAM | guided Grad-CAM PNG per top-loss image,
    all the same size whatever the model's input size, captioned from the one prediction pass."""
    from PIL import Image

    from data import scan
    from interpret.pictures import CAPTION_HEIGHT
    from train.hardware import Hardware
    from train.loaders import make_dataloaders, training_table
    from train.recipe import create_learner, progress_output
    from train.report import GALLERY_PANEL, write_training_report

    table = training_table(scan(make_dataset(tmp_path / "d", train_per_class=2)))
    config = TrainConfig(dataset=tmp_path / "d", arch="resnet18", pretrained=False, out=tmp_path)
    cpu = Hardware("cpu", "fp32", channels_last=False, workers=0, pin_memory=False, note="cpu")
    learn = create_learner(make_dataloaders(table, size=40, batch_size=4), config, cpu)

    with progress_output(learn, bars=False) as callbacks:  # the non-terminal mode
        assert not hasattr(learn, "progress") and len(callbacks) == 1
    assert hasattr(learn, "progress")  # fastai's bars are back afterwards (and in the export)

    reports = tmp_path / "reports"
    write_training_report(
        learn,
        settings={"arch": "resnet18"},
        gate=None,
        allowed=False,
        hardware_note="cpu",
        history=pd.DataFrame(columns=["stage"]),
        report_dir=reports,
        tta=False,
        top_losses=4,
        progress_bars=False,
    )
    html = (reports / "training.html").read_text()
    cards = gallery_pictures_in(html)
    assert len(cards) == 4
    predictions = pd.read_csv(reports / "predictions.csv")
    top = predictions.sort_values("loss", ascending=False, kind="stable").head(4)
    assert [path for _, _, path in cards] == list(top["path"])  # highest loss first
    first = top.iloc[0]
    assert cards[0][1] == (
        f"actual {first['actual']} / predicted {first['predicted']} / "
        f"p={first['probability']:.2f} / loss {first['loss']:.2f}"
    )
    gap = 4  # interpret.pictures.panels_png
    for content, _, _ in cards:
        picture = np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))
        assert picture.shape == (GALLERY_PANEL + CAPTION_HEIGHT, 3 * GALLERY_PANEL + 2 * gap, 3)
        panels = [
            picture[
                CAPTION_HEIGHT:,
                i * (GALLERY_PANEL + gap) : i * (GALLERY_PANEL + gap) + GALLERY_PANEL,
            ]
            for i in range(3)
        ]
        original, heat, guided = (panel.astype(int) for panel in panels)
        assert np.abs(heat - original).mean() > 5  # the Grad-CAM colours are blended in
        assert np.abs(guided - original).mean() > 5  # and the guided panel is another picture
    # self-contained: every image embedded, nothing fetched from elsewhere
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)


@pytest.mark.slow
def test_log_has_epoch_lines_and_no_bar_spam_when_not_a_terminal(
    tmp_path, monkeypatch, capsys, one_thread
):
    """Redirected output (capsys is not a terminal) gets one plain line per epoch and no
    carriage-return bar updates; a terminal gets fastai's bars. --threads sets torch's threads."""
    import torch

    from train.__main__ import main

    pass_the_gate(monkeypatch)
    root = make_dataset(tmp_path / "clean", train_per_class=4, valid_per_class=1)
    arguments = [
        "--dataset",
        str(root),
        "--report-dir",
        str(tmp_path / "reports"),
        "--no-tta",
        "--top-losses",
        "2",
        *QUICK,
        "--epochs",
        "2",
        "0",
        "--threads",
        "1",
    ]
    torch.set_num_threads(2)
    assert main([*arguments, "--out", str(tmp_path / "log")]) == 0
    assert torch.get_num_threads() == 1
    captured = capsys.readouterr()
    assert "\r" not in captured.out and "\r" not in captured.err
    lines = captured.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("epoch"))
    assert lines[header].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    rows = [line.split() for line in lines[header + 1 :] if line[:1].isdigit()]
    assert [row[0] for row in rows] == ["0", "1"]  # one line per epoch ("Better model" between)
    assert all(len(row) == 5 for row in rows)  # epoch, two losses, accuracy, time
    history = pd.read_csv(tmp_path / "log" / "history.csv")
    assert len(history) == 2  # the CSV log still gets every epoch

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # now "a terminal"
    assert main([*arguments, "--out", str(tmp_path / "terminal")]) == 0
    assert "\r" in capsys.readouterr().out  # fastprogress's console bars
