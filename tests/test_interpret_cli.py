"""load_model for both formats, the PNG pictures, and ``python -m interpret`` end to end."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from interpret.__main__ import main
from interpret.model_loading import Preprocess, load_model
from interpret.pictures import interpretation_png, overlay, two_label_png

ROOT = Path(__file__).resolve().parents[1]


def write_images(folder: Path, count: int = 2, size=(40, 30)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = folder / f"frame_{index}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def torch_model_path(tmp_path_factory) -> Path:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=3)
    model.class_names = ["castle", "mermaid", "totoro"]
    model.input_size = 64
    path = tmp_path_factory.mktemp("models") / "resnet.pt"
    torch.save(model, path)
    return path


def read_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)))


def test_load_torch_module_gives_eval_model_names_and_preprocess(torch_model_path):
    model, class_names, preprocess = load_model(torch_model_path, device="cpu")
    assert not model.training
    assert class_names == ["castle", "mermaid", "totoro"]
    tensor = preprocess(Image.new("RGB", (100, 50), (255, 0, 0)))
    assert tensor.shape == (3, 64, 64)
    # ImageNet normalisation of pure red
    assert tensor[0, 0, 0].item() == pytest.approx((1.0 - 0.485) / 0.229, rel=1e-4)


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        load_model(tmp_path / "missing.pkl")
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="junk.pkl"):
        load_model(junk)
    weights = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, weights)
    with pytest.raises(ValueError, match=r"weights.pt holds a dict, not a fastai Learner"):
        load_model(weights)


def test_preprocess_crop_squish_and_pad_keep_the_size():
    image = Image.new("RGB", (90, 30), (0, 255, 0))
    for method in ("crop", "squish", "pad"):
        resized = Preprocess(size=(32, 48), method=method, mean=None, std=None).resize(image)
        assert resized.size == (48, 32)
    tensor = Preprocess(size=(8, 8), mean=None, std=None)(image)
    assert float(tensor.max()) == pytest.approx(1.0) and float(tensor.min()) == 0.0


def test_overlay_blends_and_pictures_are_pngs_with_three_panels():
    image = np.zeros((20, 30, 3), np.uint8)
    cam = np.zeros((20, 30))
    cam[:, 15:] = 1.0
    blended = overlay(image, cam, colormap="jet", alpha=0.5)
    assert blended.shape == (20, 30, 3)
    assert blended[:, 20:].mean() > blended[:, :10].mean() - 1  # jet(1) is red, jet(0) dark blue
    assert not np.array_equal(blended[:, 20:], blended[:, :10])
    three = read_png(interpretation_png(image, cam, np.random.randn(3, 20, 30), caption="x"))
    two = read_png(interpretation_png(image, cam, caption="x"))
    assert three.shape[1] > two.shape[1] > 0
    labels = read_png(two_label_png(image, cam, 1 - cam, label1="castle", label2="mermaid"))
    assert labels.shape[1] == three.shape[1]


def test_cli_writes_gradcam_and_two_label_pictures(torch_model_path, tmp_path, capsys):
    images = write_images(tmp_path / "in")
    out = tmp_path / "out"
    code = main(
        [
            "--model",
            str(torch_model_path),
            *map(str, images),
            "--label1",
            "castle",
            "--label2",
            "totoro",
            "--out",
            str(out),
            "--cpu",
        ]
    )
    assert code == 0
    for path in images:
        for suffix in ("gradcam", "labels"):
            picture = out / f"{path.stem}.{suffix}.png"
            assert picture.is_file()
            assert Image.open(picture).size[0] > 64 * 3
    printed = capsys.readouterr().out
    assert "predicted" in printed and "edge focus" in printed


def test_cli_rejects_unknown_label_and_lone_label(torch_model_path, tmp_path, capsys):
    images = write_images(tmp_path / "in", count=1)
    args = ["--model", str(torch_model_path), str(images[0]), "--out", str(tmp_path / "o")]
    assert main([*args, "--label1", "dumbo", "--label2", "castle"]) == 2
    assert "'dumbo' is not a class" in capsys.readouterr().err
    assert main([*args, "--label1", "castle"]) == 2
    assert "give both or neither" in capsys.readouterr().err
    assert main([*args[:2], str(tmp_path / "nope.png")]) == 2
    assert "nope.png" in capsys.readouterr().err


def test_cli_help_runs_as_a_module():
    completed = subprocess.run(
        [sys.executable, "-m", "interpret", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0
    assert "--label1" in completed.stdout and "--out" in completed.stdout


def test_exported_fastai_learner_loads_with_vocab_size_and_runs_the_cli(tmp_path):
    from fastai.vision.all import ImageDataLoaders, Resize, resnet18, vision_learner

    for split in ("train", "valid"):
        for label in ("castle", "mermaid"):
            write_images(tmp_path / "data" / split / label, count=2)
    loaders = ImageDataLoaders.from_folder(
        tmp_path / "data",
        train="train",
        valid="valid",
        item_tfms=Resize((32, 48)),
        bs=2,
        num_workers=0,
    )
    learner = vision_learner(loaders, resnet18, pretrained=False)
    learner.export(tmp_path / "export.pkl")
    model, class_names, preprocess = load_model(tmp_path / "export.pkl", device="cpu")
    assert class_names == ["castle", "mermaid"]
    assert preprocess.size == (32, 48) and preprocess.method == "crop"  # (height, width)
    assert preprocess.mean is None  # pretrained=False: fastai adds no Normalize
    assert not model.training
    image = tmp_path / "data" / "valid" / "castle" / "frame_0.png"
    assert (
        main(
            [
                "--model",
                str(tmp_path / "export.pkl"),
                str(image),
                "--out",
                str(tmp_path / "out"),
                "--label1",
                "castle",
                "--label2",
                "mermaid",
            ]
        )
        == 0
    )
    assert (tmp_path / "out" / "frame_0.labels.png").is_file()


def test_gradcam_pictures_gives_one_three_panel_png_per_image(torch_model_path, tmp_path):
    from interpret.pictures import gradcam_pictures

    model, class_names, preprocess = load_model(torch_model_path, device="cpu")
    paths = write_images(tmp_path / "gallery", count=2)
    shown = [preprocess.resize(path) for path in paths]
    batch = torch.stack([preprocess.to_tensor(image) for image in shown])
    pictures = gradcam_pictures(model, batch, shown, targets=[0, 2], class_names=class_names)
    assert len(pictures) == 2
    for picture in pictures:
        array = read_png(picture)
        assert array.shape[1] >= 3 * 64 * 2  # three panels, small images shown at 2x
