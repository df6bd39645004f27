"""``python -m interpret``: where a model looks, as PNG pictures, for any images.

For each IMAGE writes ``OUT/<stem>.gradcam.png`` (original | Grad-CAM overlay | guided
Grad-CAM for the predicted class) and, with ``--label1``/``--label2``,
``OUT/<stem>.labels.png`` (where the model sees label1 | where it sees label2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from interpret.edge import DEFAULT_BAND
from interpret.pictures import DEFAULT_COLORMAP


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interpret",
        description="Grad-CAM, guided Grad-CAM and the two-label view for any images, as PNGs.",
    )
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        help="exported fastai learner (.pkl) or torch.save'd nn.Module",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    parser.add_argument("--label1", help="first class of the two-label view (needs --label2)")
    parser.add_argument("--label2", help="second class of the two-label view (needs --label1)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("reports/interpret"),
        help="folder for the PNGs (default: reports/interpret)",
    )
    parser.add_argument(
        "--colormap",
        default=DEFAULT_COLORMAP,
        help=f"matplotlib colormap of the overlay (default: {DEFAULT_COLORMAP})",
    )
    parser.add_argument(
        "--band",
        type=float,
        default=DEFAULT_BAND,
        help=f"edge band for the printed edge focus (default: {DEFAULT_BAND})",
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even if CUDA is there")
    return parser


def run(args: argparse.Namespace) -> int:
    import torch
    from matplotlib import colormaps

    from interpret.edge import edge_focus
    from interpret.gradcam import gradcam_with_scores
    from interpret.guided import guided_backprop
    from interpret.model_loading import load_model
    from interpret.pictures import interpretation_png, two_label_png

    if args.colormap not in colormaps:
        raise ValueError(
            f"--colormap {args.colormap!r} is not a matplotlib colormap; try jet or magma"
        )
    if (args.label1 is None) != (args.label2 is None):
        raise ValueError("--label1 and --label2 go together: give both or neither")
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {', '.join(missing)}")
    model, class_names, preprocess = load_model(args.model, device="cpu" if args.cpu else None)
    pair = []
    for label in (args.label1, args.label2):
        if label is None:
            continue
        if label not in class_names:
            raise ValueError(
                f"--label {label!r} is not a class of {args.model}; "
                f"classes: {', '.join(class_names)}"
            )
        pair.append(class_names.index(label))
    resized, tensors = [], []
    for path in args.images:
        try:
            image = preprocess.resize(path)
        except OSError as error:
            raise ValueError(f"{path}: cannot read the image ({error})") from None
        resized.append(image)
        tensors.append(preprocess.to_tensor(image))
    batch = torch.stack(tensors)
    result = gradcam_with_scores(model, batch)
    guided = guided_backprop(model, batch, result.targets) * result.maps[:, None]
    shares = edge_focus(result.maps, band=args.band)
    args.out.mkdir(parents=True, exist_ok=True)
    if pair:
        first = gradcam_with_scores(model, batch, pair[0]).maps
        second = gradcam_with_scores(model, batch, pair[1]).maps
    stems = [path.stem for path in args.images]
    for row, path in enumerate(args.images):
        stem = stems[row] if stems.count(stems[row]) == 1 else f"{stems[row]}-{row}"
        target = int(result.targets[row])
        name, probability = class_names[target], float(result.probabilities[row, target])
        caption = f"{name} {probability:.2f}"
        target_path = args.out / f"{stem}.gradcam.png"
        target_path.write_bytes(
            interpretation_png(
                resized[row], result.maps[row], guided[row], caption=caption, colormap=args.colormap
            )
        )
        print(
            f"{path}: predicted {name} ({probability:.2f}), edge focus {shares[row]:.2f} "
            f"-> {target_path}"
        )
        if pair:
            labels_path = args.out / f"{stem}.labels.png"
            labels_path.write_bytes(
                two_label_png(
                    resized[row],
                    first[row],
                    second[row],
                    label1=args.label1,
                    label2=args.label2,
                    probability1=float(result.probabilities[row, pair[0]]),
                    probability2=float(result.probabilities[row, pair[1]]),
                    colormap=args.colormap,
                )
            )
            print(f"{path}: {args.label1} vs {args.label2} -> {labels_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
