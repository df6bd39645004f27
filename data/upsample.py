"""Upsample with the original project's six scikit-image augmentations, with lineage.

The movie project had few internet sketches and fan art (about 7% of its images) and
upsampled them seven-fold with scikit-image: each source kept, plus six copies made by
``grayscale``, ``invert``, ``poisson`` noise, ``rescale_intensity``, ``log`` and
``sigmoid`` adjustment. Copies are written beside their source as
``<stem>__<operation><suffix>`` and recorded in the lineage record (``parent`` = the
source, ``origin`` and ``group`` copied from it), so ``scan`` keeps every copy on the
same side of a split as its source and audits can see which images are copies.

Rerunning adds nothing: existing copies are skipped and a copy (a row with a parent, or
a name ending in ``__<operation>``) is never augmented again. Sources are never changed.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from data.lineage import append_lineage
from data.scan import dataset_root, scan

OPERATIONS = ("grayscale", "invert", "poisson", "rescale_intensity", "log", "sigmoid")
COPY_SEPARATOR = "__"
# Percentiles for rescale_intensity: the scikit-image gallery's contrast stretching example.
RESCALE_PERCENTILES = (2.0, 98.0)
JPEG_QUALITY = 95  # re-encoding quality for copies of JPEG sources


def augment(image: np.ndarray, operation: str, *, seed: int = 0) -> np.ndarray:
    """Apply one of the six augmentations to an image.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8``, shape ``(H, W, 3)`` (RGB) or ``(H, W)`` (gray), values 0-255.
    operation : str
        One of :data:`OPERATIONS`.
    seed : int
        Seeds the random generator of ``poisson`` (the only random operation).

    Returns
    -------
    numpy.ndarray
        ``uint8``, 0-255; shape ``(H, W)`` for ``grayscale``, else the input's shape.

    Notes
    -----
    ``grayscale`` is ``skimage.color.rgb2gray`` (luminance weights 0.2125, 0.7154, 0.0721),
    ``invert`` is ``skimage.util.invert``, ``poisson`` is ``random_noise(mode="poisson")``,
    ``rescale_intensity`` stretches the 2nd-98th percentiles to the full range, ``log`` is
    ``adjust_log(gain=1)`` and ``sigmoid`` is ``adjust_sigmoid(cutoff=0.5, gain=10)``
    (scikit-image's defaults).
    """
    from skimage import color, exposure, util

    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; expected one of {list(OPERATIONS)}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(
            f"augment expects a uint8 (H, W) or (H, W, 3) array; got {image.dtype} {image.shape}"
        )
    if operation == "grayscale":
        result = color.rgb2gray(image) if image.ndim == 3 else image
    elif operation == "invert":
        result = util.invert(image)
    elif operation == "poisson":
        result = util.random_noise(image, mode="poisson", rng=np.random.default_rng(seed))
    elif operation == "rescale_intensity":
        low, high = np.percentile(image, RESCALE_PERCENTILES)
        if high <= low:  # a flat image: nothing to stretch
            result = image
        else:
            result = exposure.rescale_intensity(image, in_range=(low, high))
    elif operation == "log":
        result = exposure.adjust_log(image, 1)
    else:
        result = exposure.adjust_sigmoid(image, cutoff=0.5, gain=10)
    return util.img_as_ubyte(np.clip(result, 0, 1) if result.dtype.kind == "f" else result)


def copy_path(path: str, operation: str) -> str:
    """The copy's path: ``dir/name.jpg`` -> ``dir/name__invert.jpg`` (POSIX strings)."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}{COPY_SEPARATOR}{operation}{suffix}"


def is_copy_name(path: str) -> bool:
    """True when the file name ends in ``__<operation>`` (a copy this module made)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return any(stem.endswith(f"{COPY_SEPARATOR}{operation}") for operation in OPERATIONS)


def operation_seed(seed: int, path: str, operation: str) -> int:
    """A stable per-copy seed (independent of process hash randomisation)."""
    return zlib.crc32(f"{seed}:{path}:{operation}".encode()) & 0x7FFFFFFF


def plan_upsample(
    manifest: pd.DataFrame,
    *,
    where: dict[str, str] | None = None,
    operations: tuple[str, ...] = OPERATIONS,
) -> pd.DataFrame:
    """Decide which copies to make (pure).

    Parameters
    ----------
    manifest : pandas.DataFrame
        A manifest (``data.scan``).
    where : dict
        Column -> value; rows matching all of them are sources. Default ``{"origin": "internet"}``.
    operations : tuple of str
        Subset of :data:`OPERATIONS`.

    Returns
    -------
    pandas.DataFrame
        One row per copy: ``path`` (the copy), ``parent``, ``group``, ``origin``,
        ``operation``, ``split``, ``label``. Sources with an ``error``, and copies
        (non-empty ``parent`` or a ``__<operation>`` name) are never sources.
    """
    where = {"origin": "internet"} if where is None else dict(where)
    unknown = sorted(set(operations) - set(OPERATIONS))
    if unknown:
        raise ValueError(f"unknown operation(s) {unknown}; expected a subset of {list(OPERATIONS)}")
    missing = sorted(set(where) - set(manifest.columns))
    if missing:
        raise ValueError(
            f"--where column(s) {missing} not in the manifest; columns: {list(manifest.columns)}"
        )
    chosen = manifest["error"].eq("") & manifest["parent"].eq("")
    chosen &= ~manifest["path"].map(is_copy_name)
    for column, value in where.items():
        chosen &= manifest[column].astype(str).eq(str(value))
    rows = []
    for source in manifest.loc[chosen].itertuples(index=False):
        for operation in operations:
            rows.append(
                {
                    "path": copy_path(source.path, operation),
                    "parent": source.path,
                    "group": source.group,
                    "origin": source.origin,
                    "operation": operation,
                    "split": source.split,
                    "label": source.label,
                }
            )
    columns = ["path", "parent", "group", "origin", "operation", "split", "label"]
    return pd.DataFrame(rows, columns=columns)


def write_augmented(source: Path, target: Path, operation: str, *, seed: int) -> None:
    """Read ``source``, augment it, and write ``target`` in the source's format."""
    with Image.open(source) as opened:
        opened.load()
        image = opened.convert("L" if opened.mode in ("L", "1", "I;16", "I") else "RGB")
    result = Image.fromarray(augment(np.asarray(image), operation, seed=seed))
    options = {"quality": JPEG_QUALITY} if target.suffix.lower() in (".jpg", ".jpeg") else {}
    temporary = target.with_name(f".{target.name}.partial{target.suffix}")
    result.save(
        temporary, format=Image.registered_extensions().get(target.suffix.lower()), **options
    )
    os.replace(temporary, target)


def upsample(
    dataset: str | os.PathLike,
    *,
    where: dict[str, str] | None = None,
    operations: tuple[str, ...] = OPERATIONS,
    dry_run: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Write augmented copies beside their sources and record them in the lineage.

    Parameters
    ----------
    dataset : path
        A dataset folder (split or label folders). CSV datasets are refused: the copies
        would not be listed in the CSV.
    where, operations
        See :func:`plan_upsample`. Default: every ``origin == "internet"`` image, all six.
    dry_run : bool
        Plan only: nothing is written.
    seed : int
        Seeds the ``poisson`` noise (per copy, from the seed, path and operation).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        The plan (:func:`plan_upsample`) plus ``status``: ``"written"``, ``"exists"``
        (already there; its lineage row is refreshed), ``"would write"`` (dry run) or
        ``"failed: <reason>"``.
    """
    from tqdm import tqdm

    dataset = Path(dataset)
    if dataset.is_file():
        raise ValueError(
            f"upsample writes copies into a dataset folder; {dataset} is a file. "
            "Materialise it first (python -m data split ... --materialize OUT)."
        )
    root = dataset_root(dataset)
    plan = plan_upsample(scan(dataset), where=where, operations=operations)
    status = []
    for row in tqdm(
        plan.itertuples(index=False),
        total=len(plan),
        disable=not progress,
        desc="upsample",
        unit="copy",
    ):
        target = root / row.path
        if target.exists():
            status.append("exists")
        elif dry_run:
            status.append("would write")
        else:
            try:
                write_augmented(
                    root / row.parent,
                    target,
                    row.operation,
                    seed=operation_seed(seed, row.parent, row.operation),
                )
                status.append("written")
            except (OSError, ValueError) as error:
                status.append(f"failed: {error}")
    plan = plan.assign(status=status)
    if not dry_run:
        done = plan[plan["status"].isin(["written", "exists"])]
        if len(done):
            append_lineage(root, done.loc[:, ["path", "parent", "group", "origin", "operation"]])
    return plan


def parse_where(items: list[str] | None) -> dict[str, str]:
    """``["origin=internet", "label=cat"]`` -> ``{"origin": "internet", "label": "cat"}``."""
    where = {}
    for item in items or ["origin=internet"]:
        column, separator, value = item.partition("=")
        if not separator or not column:
            raise ValueError(f"--where {item!r}: expected COLUMN=VALUE, e.g. origin=internet")
        where[column.strip()] = value.strip()
    return where


def run(args) -> int:
    operations = tuple(o.strip() for o in args.ops.split(",") if o.strip())
    plan = upsample(
        args.dataset,
        where=parse_where(args.where),
        operations=operations,
        dry_run=args.dry_run,
        seed=args.seed,
    )
    counts = plan["status"].str.replace(r"^failed: .*", "failed", regex=True).value_counts()
    sources = plan["parent"].nunique()
    if args.dry_run:
        for row in plan[plan["status"] == "would write"].head(20).itertuples(index=False):
            print(f"would write {row.path}  ({row.operation} of {row.parent})")
        print(
            f"dry run: {int(counts.get('would write', 0))} copies of {sources} sources would be "
            f"written; {int(counts.get('exists', 0))} exist already. Nothing written."
        )
        return 0
    for row in plan[plan["status"].str.startswith("failed")].itertuples(index=False):
        print(f"could not write {row.path}: {row.status[len('failed: ') :]}")
    print(
        f"{int(counts.get('written', 0))} copies written, {int(counts.get('exists', 0))} existed, "
        f"{int(counts.get('failed', 0))} failed, from {sources} sources; lineage in "
        f"{dataset_root(Path(args.dataset)) / 'splitsafe-lineage.csv'}"
    )
    return 1 if counts.get("failed", 0) else 0


def register_command(subparsers) -> None:
    parser = subparsers.add_parser(
        "upsample",
        help="write augmented copies (six scikit-image operations) beside chosen images",
        description="Write augmented copies <stem>__<op><suffix> beside each chosen image and "
        "record parent, group and origin in splitsafe-lineage.csv. Rerunning adds nothing; "
        "copies are never augmented again; sources are never changed.",
    )
    parser.add_argument("dataset", help="dataset folder (split or label folders)")
    parser.add_argument(
        "--where",
        action="append",
        metavar="COLUMN=VALUE",
        help="choose sources by a manifest column; repeat to combine (default: origin=internet)",
    )
    parser.add_argument(
        "--ops",
        default=",".join(OPERATIONS),
        help=f"comma-separated operations (default: all six: {','.join(OPERATIONS)})",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be written; write nothing"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the poisson noise (default 0)")
    parser.set_defaults(run=run)
