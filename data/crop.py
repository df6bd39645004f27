"""Crop detected border strips and thin lines, writing cropped copies to a new dataset folder.

The feature extractor profiles each image's borders (:func:`data.borders.profile_borders`):
per side, ``border_{side}_offset`` px from the edge to where a uniform strip or thin line
starts and ``border_{side}_width`` px of it. ``crop_borders`` removes ``offset + width +
margin`` px from each side that has one (the margin takes the JPEG ringing next to a line),
re-profiles the cropped image and crops again while a border shows (a frame line along a
side is only uniform once the lines across it are gone), writes the result to ``OUT`` under
the same relative path, and copies images without a border byte for byte. The originals are
never changed. With ``keep_size`` (``--keep-size``) each cropped image is resized back to its
original width and height, so that the crop does not leave the cropped class with a size of its
own (the metadata-shortcut audit would then find the class by its width and height).

Lineage in ``OUT``: every written file gets a row with the original's ``group``, ``parent``
(an augmented copy stays a copy of its cropped source, at the same relative path) and
``origin``; ``operation`` is ``crop-borders`` or ``copy``; ``source`` is the original file's
absolute path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
from PIL import Image

from data.lineage import append_lineage
from data.settings import copy_dataset_config

SIDES = ("top", "bottom", "left", "right")
CROP_MARGIN = 1  # px beyond the detected line: JPEG ringing around a sharp dark line
JPEG_QUALITY = 95  # re-encoding quality of cropped JPEGs
MIN_KEPT_SIDE = 8  # px: a crop that would leave less is refused for that image
MAX_PASSES = 3  # profile-and-crop rounds per image


def crop_box(
    width: int, height: int, profile: dict | pd.Series, *, margin: int = CROP_MARGIN
) -> tuple[int, int, int, int] | None:
    """The box ``(left, top, right, bottom)`` that removes each detected border, or None.

    Parameters
    ----------
    width, height : int
        Image size in px.
    profile : mapping
        ``border_{side}_width`` and ``border_{side}_offset`` (int px) for the four sides.
    margin : int
        Extra px removed beyond each border.

    Returns
    -------
    tuple of int or None
        PIL crop box; None when no side has a border or the crop would leave less than
        :data:`MIN_KEPT_SIDE` px.
    """
    cut = {}
    for side in SIDES:
        border = int(profile.get(f"border_{side}_width", 0) or 0)
        offset = int(profile.get(f"border_{side}_offset", 0) or 0)
        cut[side] = offset + border + margin if border > 0 else 0
    if not any(cut.values()):
        return None
    box = (cut["left"], cut["top"], width - cut["right"], height - cut["bottom"])
    if box[2] - box[0] < MIN_KEPT_SIDE or box[3] - box[1] < MIN_KEPT_SIDE:
        return None
    return box


def crop_borders(
    dataset: str | os.PathLike,
    out: str | os.PathLike,
    *,
    features: pd.DataFrame | None = None,
    margin: int = CROP_MARGIN,
    cache_dir: str | os.PathLike | None = None,
    keep_size: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Write a copy of ``dataset`` into ``out`` with detected borders cropped.

    Parameters
    ----------
    dataset : path
        Dataset folder or CSV (:func:`data.scan`).
    out : path
        New folder; files are written under the same relative paths (a CSV dataset's paths
        must stay inside its folder).
    features : pandas.DataFrame, optional
        ``data.features`` of the dataset's manifest (computed when not given).
    margin : int
        Extra px removed beyond each border (default :data:`CROP_MARGIN`).
    cache_dir : path, optional
        Feature cache folder (see ``data.features``).
    keep_size : bool
        Resize each cropped image back to its original size (Lanczos), so cropping one class
        does not give it a size of its own.
    progress : bool
        Show progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per image: ``path``, ``operation`` ("crop-borders", "copy" or "skipped:
        <reason>"), ``box`` (the crop box or None).
    """
    from tqdm import tqdm

    import data
    from data.scan import dataset_root, scan

    dataset, out = Path(dataset), Path(out)
    root = dataset_root(dataset).resolve()
    if out.resolve() == root or out.resolve().is_relative_to(root):
        raise ValueError(f"OUT {out} is inside the dataset {root}; choose a folder outside it")
    if features is None:
        features = data.features(scan(dataset), root, cache_dir=cache_dir, progress=progress)
    results, lineage = [], []
    for row in tqdm(
        features.itertuples(index=False),
        total=len(features),
        disable=not progress,
        desc="crop-borders",
        unit="image",
    ):
        relative = Path(row.path)
        if relative.is_absolute() or ".." in relative.parts:
            results.append(
                {"path": row.path, "operation": "skipped: outside the dataset", "box": None}
            )
            continue
        source, target = root / relative, out / relative
        if row.error:
            results.append({"path": row.path, "operation": f"skipped: {row.error}", "box": None})
            continue
        box = crop_box(int(row.width), int(row.height), row._asdict(), margin=margin)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if box is None:
                shutil.copy2(source, target)
                operation = "copy"
            else:
                box = _write_cropped(source, target, box, margin=margin, keep_size=keep_size)
                operation = "crop-borders"
        except OSError as error:
            results.append({"path": row.path, "operation": f"skipped: {error}", "box": None})
            continue
        results.append({"path": row.path, "operation": operation, "box": box})
        lineage.append(
            {
                "path": row.path,
                "parent": row.parent,
                "group": row.group,
                "origin": row.origin,
                "operation": operation,
                "source": str(source),
            }
        )
    if lineage:
        out.mkdir(parents=True, exist_ok=True)
        append_lineage(out, lineage)
        copy_dataset_config(root, out)
    if dataset.is_file():  # a CSV dataset: the same rows describe the copies in OUT
        shutil.copy2(dataset, out / dataset.name)
    return pd.DataFrame(results, columns=["path", "operation", "box"])


def _write_cropped(
    source: Path, target: Path, box, *, margin: int, keep_size: bool = False
) -> tuple[int, int, int, int]:
    """Crop ``box``, then re-profile and crop again while a border shows (at most
    :data:`MAX_PASSES` passes: a frame line is only uniform along a side once the lines across
    it are gone). Returns the total box in original coordinates."""
    import numpy as np
    from PIL import ImageOps

    from data.borders import profile_borders

    with Image.open(source) as image:
        image_format = image.format
        oriented = ImageOps.exif_transpose(image)  # features measure after EXIF
        original_size = oriented.size
        cropped = oriented.crop(box)
    left, top = box[0], box[1]
    for _ in range(MAX_PASSES - 1):
        profile = profile_borders(np.asarray(cropped.convert("RGB")))
        again = crop_box(cropped.width, cropped.height, profile, margin=margin)
        if again is None:
            break
        cropped = cropped.crop(again)
        left, top = left + again[0], top + again[1]
    total = (left, top, left + cropped.width, top + cropped.height)
    if keep_size:
        cropped = cropped.resize(original_size, Image.Resampling.LANCZOS)
    options = {"quality": JPEG_QUALITY} if image_format == "JPEG" else {}
    if image_format == "JPEG" and cropped.mode not in ("RGB", "L", "CMYK"):
        cropped = cropped.convert("RGB")
    temporary = target.with_name(f".{target.name}.partial")
    cropped.save(temporary, format=image_format, **options)
    os.replace(temporary, target)
    return total


def run(args) -> int:
    result = crop_borders(
        args.dataset,
        args.out,
        margin=args.margin,
        cache_dir=args.cache_dir,
        keep_size=args.keep_size,
    )
    counts = result["operation"].str.replace(r"^skipped: .*", "skipped", regex=True).value_counts()
    for row in result[result["operation"].str.startswith("skipped")].head(20).itertuples():
        print(f"skipped {row.path}: {row.operation[len('skipped: ') :]}")
    print(
        f"{int(counts.get('crop-borders', 0))} images cropped, {int(counts.get('copy', 0))} "
        f"copied unchanged, {int(counts.get('skipped', 0))} skipped; written to {args.out} "
        f"(lineage in {Path(args.out) / 'splitsafe-lineage.csv'})"
    )
    return 0


def register_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "crop-borders",
        help="write a copy of a dataset with detected border strips and thin lines cropped",
        description="Crop each detected uniform border strip or thin line (border profile of "
        "data.features: offset + width + margin px per side) and write the images to OUT "
        "under the same relative paths; images without a border are copied unchanged. "
        "Writes OUT/splitsafe-lineage.csv; never changes DATASET.",
    )
    parser.add_argument("dataset", help="dataset folder or CSV")
    parser.add_argument("out", help="new folder to write into (outside DATASET)")
    parser.add_argument(
        "--margin",
        type=int,
        default=CROP_MARGIN,
        help=f"extra px cut beyond each border (default {CROP_MARGIN})",
    )
    parser.add_argument(
        "--keep-size",
        action="store_true",
        help="resize each cropped image back to its original size (so the cropped class has "
        "no size of its own for a model or the metadata-shortcut audit to learn)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="feature cache folder (default $SPLITSAFE_CACHE or ~/.cache/splitsafe)",
    )
    parser.set_defaults(run=run)
