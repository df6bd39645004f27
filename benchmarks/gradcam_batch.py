"""Batched Grad-CAM vs one image at a time, on the same model and images, in one run.

Three ways to get the same N maps:

- ``original loop``: the original project's recipe (fastai course style), one image per
  step: forward with hooks on the body's output, ``score.backward()`` through the whole
  network (gradients for every parameter), maps from the hooked activation and gradient;
- ``interpret.gradcam, batch 1``: this project's function called once per image;
- ``interpret.gradcam, batched``: one call for all N images (``batch_size`` per pass).

The maps of the three are checked to agree before timing counts. Results (median of
``--repeats``) go to benchmarks/results/gradcam.md.

Usage::

    .venv/bin/python benchmarks/gradcam_batch.py --images 64 --size 160 --arch resnet18
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEPT_SECTION = "## Edge-focus proof"


def original_loop(model, images, layer):
    """Per-image Grad-CAM as the original project did it (full backward, module hooks)."""
    import torch
    import torch.nn.functional as F

    maps, stored = [], {}
    for image in images:
        stored.clear()
        forward = layer.register_forward_hook(lambda m, i, o: stored.__setitem__("a", o))
        backward = layer.register_full_backward_hook(
            lambda m, gi, go: stored.__setitem__("g", go[0])
        )
        try:
            model.zero_grad()
            logits = model(image[None])
            logits[0, int(logits.argmax())].backward()
        finally:
            forward.remove()
            backward.remove()
        activation, gradient = stored["a"].detach(), stored["g"].detach()
        cam = torch.relu((gradient.mean(dim=(2, 3), keepdim=True) * activation).sum(1, True))
        cam = F.interpolate(cam, size=image.shape[1:], mode="bilinear", align_corners=False)[0, 0]
        maps.append((cam / cam.max().clamp(min=1e-12)).numpy())
    model.zero_grad()
    return np.stack(maps)


def timed(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main(argv=None) -> int:
    import torch
    import torchvision

    from interpret.gradcam import find_default_layer, gradcam

    parser = argparse.ArgumentParser(description="batched Grad-CAM vs one image at a time")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet34"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gradcam.md")
    arguments = parser.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(arguments.threads)
    model = getattr(torchvision.models, arguments.arch)(num_classes=10).eval()
    images = torch.randn(arguments.images, 3, arguments.size, arguments.size)
    layer = find_default_layer(model)
    gradcam(model, images[:2])  # warm-up

    loop_time, loop_maps = timed(lambda: original_loop(model, images, layer), arguments.repeats)
    single_time, single_maps = timed(
        lambda: np.concatenate([gradcam(model, image[None]) for image in images]),
        arguments.repeats,
    )
    batched_time, batched_maps = timed(
        lambda: gradcam(model, images, batch_size=arguments.batch_size), arguments.repeats
    )
    difference = max(
        float(np.abs(batched_maps - loop_maps).max()),
        float(np.abs(batched_maps - single_maps).max()),
    )
    if difference > 1e-3:
        raise SystemExit(f"maps disagree (max difference {difference:.2e}); timings not valid")

    rows = [
        ("original loop (batch 1, full backward)", loop_time),
        ("interpret.gradcam, batch 1", single_time),
        (f"interpret.gradcam, batched ({arguments.batch_size} per pass)", batched_time),
    ]
    lines = [
        "# Grad-CAM: batched vs one image at a time",
        "",
        f"Command: `.venv/bin/python benchmarks/gradcam_batch.py --images {arguments.images} "
        f"--size {arguments.size} --arch {arguments.arch} --batch-size {arguments.batch_size} "
        f"--repeats {arguments.repeats} --threads {arguments.threads}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{arguments.threads} threads, CPU; {arguments.arch} (random weights), "
        f"{arguments.images} images {arguments.size}x{arguments.size}; "
        f"median of {arguments.repeats}. Maps agree within {difference:.1e}.",
        "",
        "| method | seconds | images/s | speed-up vs original loop |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in rows:
        lines.append(
            f"| {name} | {seconds:.2f} | {arguments.images / seconds:.1f} | "
            f"{loop_time / seconds:.1f}x |"
        )
    lines.append("")
    report = "\n".join(lines)
    print(report)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    kept = ""  # sections written by hand below this one (the edge-focus proof) are kept
    if arguments.out.is_file() and KEPT_SECTION in arguments.out.read_text():
        previous = arguments.out.read_text()
        kept = "\n" + previous[previous.index(KEPT_SECTION) :]
    arguments.out.write_text(report + kept)
    print(f"wrote {arguments.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
