"""Proof: a model trained with the border trap looks at the edges; on the fixed data it does not.

Generates the demo dataset (``data.demo``: one movie, ``sky-castle``, has a thin dark line
near every frame's border), trains a small fastai model on it on the CPU, runs the
model-focus audit's logic (``interpret.model_focus.audit_model_focus``) and prints the
mean Grad-CAM edge focus per class; then does the same on the fixed dataset (borders
cropped) and prints both side by side.

Variants (``--variant``):

- ``demo``: the demo as generated. Its movies also differ by palette and content, so a
  model may learn the content and ignore the lines (then the audit rightly passes).
- ``lines-only`` (a controlled, stronger trap): ``sky-castle`` is replaced by the frames of
  another movie with the same border line drawn on them, so the line is the only cue that
  separates the two classes. A model that reaches high accuracy must read the line.

Measured output and what it shows: benchmarks/results/gradcam.md ("Edge-focus proof"). In
short: on ``demo`` the model learns content and the audit passes before and after the fix;
on ``lines-only`` the audit fails for ``sky-castle`` (0.54 > 0.50) and passes after
``crop-borders`` (0.37).

Usage (about 8 minutes on 2 shared CPU cores)::

    .venv/bin/python benchmarks/edge_focus_proof.py --variant both
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BORDERED = "sky-castle"  # the demo's bordered movie
DONOR = "forest-spirit"  # lines-only variant: its frames + the line become sky-castle
CROP_MARGIN = 10  # px cut from every side when no crop-borders tool is available


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/splitsafe-edge-proof"))
    parser.add_argument("--variant", choices=["demo", "lines-only", "both"], default="both")
    parser.add_argument("--frames-per-scene", type=int, default=12)
    parser.add_argument("--scenes-per-movie", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--arch",
        choices=["small", "resnet18"],
        default="small",
        help="small: a 4-block CNN (trains from scratch on a CPU in about a minute); "
        "resnet18: fastai vision_learner, pretrained=False",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--band", type=float, default=0.10)
    parser.add_argument("--threshold", type=float, default=0.50)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def make_lines_only(demo_movies: Path, out_movies: Path) -> None:
    """Copy the demo; replace the bordered class by the donor's frames with the line drawn."""
    from PIL import Image, ImageDraw

    from data.demo import BORDER_LINE_COLOR, BORDER_LINE_OFFSET, BORDER_LINE_WIDTH

    shutil.copytree(demo_movies, out_movies)
    for split_folder in sorted(p for p in out_movies.iterdir() if p.is_dir()):
        target = split_folder / BORDERED
        shutil.rmtree(target)
        target.mkdir()
        for source in sorted((split_folder / DONOR).iterdir()):
            with Image.open(source) as opened:
                image = opened.convert("RGB")
            draw = ImageDraw.Draw(image)
            for k in range(BORDER_LINE_WIDTH):
                inset = BORDER_LINE_OFFSET + k
                draw.rectangle(
                    [inset, inset, image.width - 1 - inset, image.height - 1 - inset],
                    outline=BORDER_LINE_COLOR,
                )
            image.save(target / f"lined-{source.stem}.png")


def crop_borders(movies: Path, out_movies: Path) -> str:
    """The fixed dataset: ``python -m data crop-borders`` when present, else a fixed margin."""
    import subprocess

    from PIL import Image

    has_tool = (ROOT / "data" / "crop.py").is_file()
    if has_tool:
        completed = subprocess.run(
            [sys.executable, "-m", "data", "crop-borders", str(movies), str(out_movies)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if completed.returncode == 0 and any(out_movies.rglob("*.*")):
            return "python -m data crop-borders"
        print(f"crop-borders failed ({completed.stderr.strip()[-300:]}); cropping a margin")
        shutil.rmtree(out_movies, ignore_errors=True)
    for source in sorted(movies.rglob("*")):
        if source.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
            continue
        target = out_movies / source.relative_to(movies)
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(source) as opened:
            width, height = opened.size
            box = (CROP_MARGIN, CROP_MARGIN, width - CROP_MARGIN, height - CROP_MARGIN)
            opened.convert("RGB").crop(box).save(target.with_suffix(".png"))
    return f"every image cropped by {CROP_MARGIN} px on each side (no crop-borders tool yet)"


def small_cnn(classes: int):
    """fastai-shaped (body, head) CNN from standard modules, so the export unpickles anywhere."""
    from torch import nn

    def block(inputs: int, outputs: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True),
        )

    body = nn.Sequential(block(3, 32), block(32, 64), block(64, 128), block(128, 128))
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, classes))
    return nn.Sequential(body, head)


def train_and_export(movies: Path, model_path: Path, arguments) -> tuple[float, float]:
    """Train briefly without augmentation, export the learner; (accuracy, seconds)."""
    import warnings

    from fastai.vision.all import (
        ImageDataLoaders,
        Learner,
        Resize,
        accuracy,
        resnet18,
        set_seed,
        vision_learner,
    )
    from PIL import Image

    warnings.filterwarnings("ignore")
    set_seed(arguments.seed, reproducible=True)
    first = next(path for path in movies.rglob("*") if path.suffix in {".png", ".jpg"})
    with Image.open(first) as opened:
        width, height = opened.size
    loaders = ImageDataLoaders.from_folder(
        movies,
        train="train",
        valid="valid",
        item_tfms=Resize((height, width), method="squish"),  # fastai takes (height, width)
        bs=arguments.batch_size,
        num_workers=0,
    )
    if arguments.arch == "small":
        learner = Learner(loaders, small_cnn(len(loaders.vocab)), metrics=accuracy)
    else:
        learner = vision_learner(loaders, resnet18, pretrained=False, metrics=accuracy)
    started = time.perf_counter()
    with learner.no_bar(), learner.no_logging():
        learner.fit_one_cycle(arguments.epochs, arguments.learning_rate)
    seconds = time.perf_counter() - started
    with learner.no_bar():
        _, score = learner.validate()
    learner.export(model_path)
    return float(score), seconds


def measure(movies: Path, model_path: Path, arguments):
    import data
    from interpret.model_focus import audit_model_focus

    manifest = data.scan(movies)
    return audit_model_focus(
        model_path,
        manifest,
        Path(manifest.attrs["root"]),
        band=arguments.band,
        threshold=arguments.threshold,
        per_class=arguments.per_class,
        seed=arguments.seed,
    )


def run_variant(name: str, movies: Path, work: Path, arguments) -> None:
    fixed = work / f"{name}-fixed" / "movies"
    shutil.rmtree(fixed.parent, ignore_errors=True)
    how = crop_borders(movies, fixed)
    results = {}
    for stage, folder in (("trap", movies), ("fixed", fixed)):
        model_path = work / f"{name}-{stage}.pkl"
        score, seconds = train_and_export(folder, model_path, arguments)
        finding = measure(folder, model_path, arguments)
        results[stage] = (score, seconds, finding)
        print(
            f"[{name} / {stage}] {arguments.arch}: accuracy {score:.3f} after "
            f"{arguments.epochs} epochs "
            f"({seconds:.0f} s); Grad-CAM layer {finding.details['layer']}; "
            f"audit {'PASSED' if finding.passed else 'FAILED'}",
            flush=True,
        )
    print(f"\nvariant {name}: fixed dataset = {how}")
    uniform = 1 - (1 - 2 * arguments.band) ** 2
    print(
        f"mean Grad-CAM mass in the outer {arguments.band:.0%} band per class "
        f"(threshold {arguments.threshold:.2f}; uniform map {uniform:.2f})"
    )
    print(f"{'class':<18} {'with trap':>10} {'fixed':>10}")
    tables = {
        stage: {row["label"]: row for row in finding.details["classes"]}
        for stage, (_, _, finding) in results.items()
    }
    for label in sorted(tables["trap"]):
        trap, after = tables["trap"][label], tables["fixed"].get(label, {})
        mark = " <- fails" if trap["flagged"] else ""
        print(
            f"{label:<18} {trap['mean_edge_focus']:>10.3f} "
            f"{after.get('mean_edge_focus', float('nan')):>10.3f}{mark}"
        )
    for stage, (_, _, finding) in results.items():
        print(f"audit on {stage}: {'passed' if finding.passed else 'FAILED'}: {finding.summary}")
    print()


def main(argv=None) -> int:
    arguments = build_parser().parse_args(argv)
    from data.demo import generate_demo

    work = arguments.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    demo = generate_demo(
        work / "demo",
        seed=arguments.seed,
        frames_per_scene=arguments.frames_per_scene,
        scenes_per_movie=arguments.scenes_per_movie,
    )
    movies = demo if demo.name == "movies" else work / "demo" / "movies"
    if arguments.variant in ("demo", "both"):
        run_variant("demo", movies, work, arguments)
    if arguments.variant in ("lines-only", "both"):
        lines_only = work / "lines-only" / "movies"
        make_lines_only(movies, lines_only)
        run_variant("lines-only", lines_only, work, arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
