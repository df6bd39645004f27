"""fastai DataLoaders from the manifest, so folder datasets, CSV datasets and the output of
``python -m data split`` all train the same way: the ``split`` column decides train and valid."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def training_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows the trainer uses, as ``from_df`` wants them.

    Parameters
    ----------
    manifest : DataFrame
        ``data.scan`` output (``attrs["root"]`` set).

    Returns
    -------
    DataFrame
        Columns ``path`` (absolute, str), ``label`` (str), ``is_valid`` (bool); the ``train`` and
        ``valid`` rows without a scan error, in manifest order. ``test`` rows are left out.

    Raises
    ------
    ValueError
        When the dataset has no ``train`` or no ``valid`` images, with the fix.
    """
    root = Path(manifest.attrs["root"])
    usable = manifest[(manifest["error"] == "") & manifest["split"].isin(["train", "valid"])]
    counts = usable["split"].value_counts()
    missing = [split for split in ("train", "valid") if counts.get(split, 0) == 0]
    if missing:
        raise ValueError(
            f"dataset {root} has no {' and no '.join(repr(s) for s in missing)} images "
            f"(splits found: {dict(manifest['split'].value_counts())}); the trainer never splits "
            "at random - split it by group first: python -m data split"
        )
    return pd.DataFrame(
        {
            "path": [str(root / path) for path in usable["path"]],
            "label": usable["label"].to_numpy(),
            "is_valid": (usable["split"] == "valid").to_numpy(),
        }
    ).reset_index(drop=True)


def make_dataloaders(
    table: pd.DataFrame,
    *,
    size: int,
    batch_size: int,
    workers: int = 0,
    pin_memory: bool = False,
    device: str = "cpu",
    seed: int = 0,
):
    """fastai ``DataLoaders`` for one resizing step.

    Items are resized to ``size`` x ``size`` (centre crop on valid, a random crop on train),
    batches get fastai's ``aug_transforms`` (flips, small rotations, zoom, lighting) and ImageNet
    normalisation (always, so a model trained from scratch sees the same input scale as a
    pretrained one).

    Parameters
    ----------
    table : DataFrame
        ``training_table`` output.
    size : int
        Image side in pixels.
    batch_size, workers : int
    pin_memory : bool
    device : str
        "cuda" or "cpu".
    seed : int
        Seeds the shuffling of the training batches.
    """
    import torch
    from fastai.vision.all import (
        ImageDataLoaders,
        Normalize,
        RandomResizedCrop,
        aug_transforms,
        imagenet_stats,
    )

    return ImageDataLoaders.from_df(
        table,
        path="/",
        fn_col="path",
        label_col="label",
        valid_col="is_valid",
        seed=seed,
        item_tfms=RandomResizedCrop(size, min_scale=0.75),
        batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)],
        bs=batch_size,
        num_workers=workers,
        pin_memory=pin_memory,
        device=torch.device(device),
    )
