"""Augmentation lineage: augmented copies stay with their source, and only where allowed.

An augmented copy (a manifest row with a non-empty ``parent``) is its source with a colour or
noise change; a copy in valid whose source is in train is a near-duplicate the model has seen.
Two rules:

- :func:`find_copies_outside_parent_split`: a copy's split equals its parent's split;
- :func:`find_copies_in_held_out_splits`: copies live only in ``allowed_splits`` (by default
  train: the original project upsampled the training data only, so validation measured
  accuracy on real frames and sketches, not on its own augmentations).
"""

from __future__ import annotations

import pandas as pd

_COLUMNS = ["path", "split", "parent", "parent_split", "label"]


def _augmented(manifest: pd.DataFrame) -> pd.DataFrame:
    """Rows with a parent, with ``parent_split`` ("" when the parent is not in the manifest)."""
    copies = manifest.loc[manifest["parent"] != ""]
    split_of = dict(zip(manifest["path"], manifest["split"], strict=True))
    parent_split = [split_of.get(parent, "") for parent in copies["parent"]]
    return copies.assign(parent_split=parent_split).loc[:, _COLUMNS]


def has_augmented_copies(manifest: pd.DataFrame) -> bool:
    """True when any manifest row has a non-empty ``parent``."""
    return bool((manifest["parent"] != "").any())


def find_copies_outside_parent_split(manifest: pd.DataFrame) -> pd.DataFrame:
    """Augmented copies whose split differs from their parent's split.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``path``, ``split``, ``label``, ``parent`` (str; ``parent`` is a manifest path,
        "" for originals).

    Returns
    -------
    pandas.DataFrame
        One row per offending copy, sorted by path, columns ``path``, ``split``, ``parent``,
        ``parent_split``, ``label`` (str). Copies whose parent is not in the manifest are not
        offenders here; ``attrs["parent_missing"]`` counts them (a source deleted after
        augmentation, or kept outside the dataset).
    """
    copies = _augmented(manifest)
    missing = copies["parent_split"].eq("") & ~copies["parent"].isin(manifest["path"])
    offenders = copies.loc[~missing & (copies["split"] != copies["parent_split"])]
    offenders = offenders.sort_values("path", ignore_index=True)
    offenders.attrs["parent_missing"] = int(missing.sum())
    return offenders


def find_copies_in_held_out_splits(
    manifest: pd.DataFrame, *, allowed_splits: tuple[str, ...]
) -> pd.DataFrame:
    """Augmented copies in a split where copies are not allowed.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``path``, ``split``, ``label``, ``parent`` (str).
    allowed_splits : tuple of str, keyword-only
        Splits that may hold augmented copies (``AuditConfig.augmented_allowed_splits``,
        default ``("train",)``). Copies of an unsplit dataset (split "") are never offenders.

    Returns
    -------
    pandas.DataFrame
        One row per offending copy, sorted by split then path, columns ``path``, ``split``,
        ``parent``, ``parent_split``, ``label`` (str).
    """
    copies = _augmented(manifest)
    offenders = copies.loc[(copies["split"] != "") & ~copies["split"].isin(allowed_splits)]
    return offenders.sort_values(["split", "path"], ignore_index=True)
