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

from data.findings import Finding

_COLUMNS = ["path", "split", "parent", "parent_split", "label"]


def _augmented(manifest: pd.DataFrame) -> pd.DataFrame:
    """Rows with a parent, with ``parent_split`` ("" when the parent is not in the manifest)."""
    copies = manifest.loc[manifest["parent"] != ""]
    split_of = dict(zip(manifest["path"], manifest["split"], strict=True)) if len(copies) else {}
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
    paths = set(manifest["path"]) if len(copies) else set()
    missing = pd.Series([p not in paths for p in copies["parent"]], index=copies.index, dtype=bool)
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


# --- audits: Finding builders (called by audits/test_lineage.py) -----------------------------

MESSAGE_EXAMPLES = 3  # offenders named in a message; the report shows them all


def lineage_skip_reason(manifest: pd.DataFrame) -> str:
    """Why the lineage audits cannot run ("" when they can)."""
    if not has_augmented_copies(manifest):
        return (
            "no augmented copies (no manifest row has a parent; copies are recorded by "
            "python -m data upsample in splitsafe-lineage.csv, or a parent column in the CSV)"
        )
    if not (manifest["split"] != "").any():
        return "the dataset is not split yet"
    return ""


def _shown(offenders: pd.DataFrame) -> str:
    text = "; ".join(
        f"{row.path} (parent {row.parent} in {row.parent_split or 'no split'})"
        for row in offenders.head(MESSAGE_EXAMPLES).itertuples()
    )
    more = len(offenders) - MESSAGE_EXAMPLES
    return text + (f"; and {more} more" if more > 0 else "")


def audit_copies_with_parent(manifest: pd.DataFrame) -> Finding:
    """Fail when an augmented copy is in another split than its parent."""
    offenders = find_copies_outside_parent_split(manifest)
    missing = int(offenders.attrs["parent_missing"])
    note = f" ({missing} copies have a parent outside the dataset)" if missing else ""
    if offenders.empty:
        summary = f"every augmented copy is in its parent's split{note}"
    else:
        summary = (
            f"{len(offenders)} augmented copies are in another split than their parent, e.g. "
            f"{_shown(offenders)}{note}; fix: python -m data split DATASET --by group "
            "(a copy shares its parent's group)"
        )
    return Finding(
        rule="augmentation-lineage",
        title="Augmented copies stay in their parent's split",
        passed=offenders.empty,
        summary=summary,
        count=len(offenders),
        examples=offenders,
        details={
            "augmented_copies": int((manifest["parent"] != "").sum()),
            "parent_missing": missing,
        },
    )


def audit_copies_in_allowed_splits(
    manifest: pd.DataFrame, *, allowed_splits: tuple[str, ...]
) -> Finding:
    """Fail when an augmented copy is in a split outside ``allowed_splits``."""
    offenders = find_copies_in_held_out_splits(manifest, allowed_splits=allowed_splits)
    allowed = ", ".join(allowed_splits) or "none"
    if offenders.empty:
        summary = f"augmented copies are only in allowed splits ({allowed})"
    else:
        by_split = offenders["split"].value_counts().sort_index()
        where = ", ".join(f"{count} in {split}" for split, count in by_split.items())
        summary = (
            f"{len(offenders)} augmented copies are outside the allowed splits ({where}; "
            f"allowed: {allowed}, setting augmented_allowed_splits), e.g. {_shown(offenders)}; "
            "fix: evaluate on originals only: python -m data split DATASET --by group "
            "leaves copies out of valid"
        )
    return Finding(
        rule="augmentation-lineage",
        title=f"Augmented copies only in {allowed}",
        passed=offenders.empty,
        summary=summary,
        count=len(offenders),
        examples=offenders,
        details={"allowed_splits": list(allowed_splits)},
    )
