"""Class balance after upsampling, and the mix of origins within each class.

The original project upsampled internet sketches x7 to about 40% of the data. Two things can go
wrong, and both are measured on counts that include the augmented copies (what the model sees):

- balance: per split, the largest class over the smallest (:func:`find_class_imbalance`);
- origin mix: one class mostly sketches while the others are mostly movie frames lets a model
  learn "sketch -> that class". :func:`find_origin_mix_outliers` compares each class's share of
  each origin with the mix of the other classes by total-variation distance,
  ``0.5 * sum(|p - q|)`` in [0, 1] (0 = same mix, 1 = no origin in common). The other classes'
  mix is the mean of their shares, each class weighted equally: pooling their counts would let
  one heavily upsampled class dominate the reference of every other class and flag them all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.findings import Finding

UNKNOWN_ORIGIN = "unknown"  # display name of origin "" (not recorded)


def class_counts(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per split, class, origin and augmented/original.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``split``, ``label``, ``parent``, ``origin`` (str).

    Returns
    -------
    pandas.DataFrame
        Columns ``split``, ``label``, ``origin`` (str; "" shown as ``"unknown"``), ``augmented``
        (bool, non-empty parent), ``images`` (int, > 0), sorted by split, label, origin.
    """
    table = pd.DataFrame(
        {
            "split": manifest["split"].to_numpy(),
            "label": manifest["label"].to_numpy(),
            "origin": manifest["origin"].replace("", UNKNOWN_ORIGIN).to_numpy(),
            "augmented": (manifest["parent"] != "").to_numpy(),
        }
    )
    counts = table.groupby(["split", "label", "origin", "augmented"]).size()
    return counts.rename("images").reset_index()


def find_class_imbalance(manifest: pd.DataFrame, *, max_ratio: float) -> pd.DataFrame:
    """Per split, the largest and smallest class and their ratio.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``split``, ``label``, ``parent`` (str).
    max_ratio : float, keyword-only
        Largest/smallest class count above which a split is imbalanced
        (``AuditConfig.balance_max_ratio``).

    Returns
    -------
    pandas.DataFrame
        One row per split, columns ``split``, ``largest``, ``smallest`` (str labels),
        ``largest_images``, ``smallest_images``, ``originals``, ``augmented`` (int; the last two
        over the whole split), ``ratio`` (float, ``inf`` when a label of the dataset is absent
        from the split), ``missing`` (str, labels absent from the split, comma-joined),
        ``is_imbalanced`` (bool, ``ratio > max_ratio``).
    """
    if max_ratio < 1:
        raise ValueError(f"max_ratio={max_ratio!r}; expected a ratio >= 1")
    labels = sorted(manifest["label"].unique())
    augmented = manifest["parent"] != ""
    rows = []
    for split, members in manifest.groupby("split", sort=True):
        counts = members["label"].value_counts().reindex(labels, fill_value=0)
        counts = counts.sort_index(kind="stable")
        largest, smallest = counts.idxmax(), counts.idxmin()
        ratio = counts[largest] / counts[smallest] if counts[smallest] else np.inf
        rows.append(
            {
                "split": split,
                "largest": largest,
                "smallest": smallest,
                "largest_images": int(counts[largest]),
                "smallest_images": int(counts[smallest]),
                "originals": int((~augmented[members.index]).sum()),
                "augmented": int(augmented[members.index].sum()),
                "ratio": float(ratio),
                "missing": ", ".join(counts.index[counts == 0]),
                "is_imbalanced": bool(ratio > max_ratio),
            }
        )
    return pd.DataFrame(rows)


def find_origin_mix_outliers(manifest: pd.DataFrame, *, max_distance: float) -> pd.DataFrame:
    """Each class's origin mix against the mean mix of the other classes.

    Parameters
    ----------
    manifest : pandas.DataFrame
        Columns ``label``, ``origin`` (str; "" = unknown, kept as its own origin), all splits
        pooled, augmented copies included.
    max_distance : float, keyword-only
        Total-variation distance above which a class's mix is an outlier
        (``AuditConfig.origin_mix_max_distance``), in [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per class, largest distance first, columns ``label`` (str), ``images`` (int),
        ``share_<origin>`` (float in [0, 1], one column per origin, sorted by name),
        ``main_difference`` (str, the origin this class has most in excess, e.g.
        "internet 0.62 vs 0.08"), ``distance`` (float in [0, 1]), ``is_outlier`` (bool).
    """
    if not 0 <= max_distance <= 1:
        raise ValueError(f"max_distance={max_distance!r}; expected a value in [0, 1]")
    origins = manifest["origin"].replace("", UNKNOWN_ORIGIN)
    counts = pd.crosstab(manifest["label"], origins).sort_index(axis=1)
    shares = counts.div(counts.sum(axis=1), axis=0)
    rows = []
    for label in counts.index:
        own = counts.loc[label].to_numpy(dtype=float)
        own_share = shares.loc[label].to_numpy()
        others = shares.drop(index=label)
        rest_share = others.mean().to_numpy() if len(others) else own_share
        difference = own_share - rest_share
        main = int(np.argmax(difference))  # the origin this class has most in excess
        row = {"label": label, "images": int(own.sum())}
        row.update({f"share_{o}": float(s) for o, s in zip(counts.columns, own_share, strict=True)})
        distance = float(0.5 * np.abs(difference).sum())
        row["main_difference"] = (
            f"{counts.columns[main]} {own_share[main]:.2f} vs {rest_share[main]:.2f}"
        )
        row["distance"] = distance
        row["is_outlier"] = distance > max_distance
        rows.append(row)
    result = pd.DataFrame(rows)
    return result.sort_values(["distance", "label"], ascending=[False, True], ignore_index=True)


def plot_class_counts(counts: pd.DataFrame) -> bytes:
    """Bar chart of images per class, coloured by origin and augmented, one panel per split.

    Parameters
    ----------
    counts : pandas.DataFrame
        The output of :func:`class_counts`.

    Returns
    -------
    bytes
        A PNG image (seaborn ``barplot`` per split panel, own y scale each, one legend; Agg
        backend). Drawn on plain subplots rather than ``catplot``: its grid laid out and drew
        the figure four times, twice the time of the whole chart.
    """
    from interpret.plots import figure_to_png, use_agg_backend

    use_agg_backend()
    import matplotlib.pyplot as plt
    import seaborn as sns

    table = counts.assign(
        kind=np.where(counts["augmented"], counts["origin"] + " (augmented)", counts["origin"]),
        split=counts["split"].replace("", "(unsplit)"),
    )
    splits = list(dict.fromkeys(table["split"]))
    kinds = list(dict.fromkeys(table["kind"]))
    labels = sorted(table["label"].unique())
    figure, axes = plt.subplots(1, len(splits), figsize=(4.55 * len(splits), 3.5), squeeze=False)
    last = axes.flat[len(splits) - 1]
    for axis, split in zip(axes.flat, splits, strict=True):
        sns.barplot(
            data=table.loc[table["split"] == split],
            x="label",
            y="images",
            hue="kind",
            order=labels,
            hue_order=kinds,
            estimator="sum",
            errorbar=None,
            ax=axis,
            legend=axis is last,
        )
        axis.set_title(split)
        axis.set_xlabel("class")
        axis.set_ylabel("images")
        for label in axis.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    if last.get_legend() is not None:
        sns.move_legend(last, "upper left", bbox_to_anchor=(1, 1), title="origin")
    figure.tight_layout()
    return figure_to_png(figure, tight=False)  # laid out already: no second layout pass


# --- audits: Finding builders (called by audits/test_balance.py) -----------------------------

BALANCE_FIX = (
    "upsample the small classes (python -m data upsample DATASET --where label=CLASS) "
    "or collect more of them"
)


def balance_skip_reason(manifest: pd.DataFrame) -> str:
    """Why the class-balance audit cannot run ("" when it can)."""
    labels = manifest["label"].nunique()
    return "" if labels >= 2 else f"the dataset has {labels} class(es); balance needs two"


def origin_mix_skip_reason(manifest: pd.DataFrame) -> str:
    """Why the origin-mix audit cannot run ("" when it can)."""
    if manifest["label"].nunique() < 2:
        return "the dataset has one class; origin mix compares classes"
    origins = sorted(set(manifest["origin"]) - {""})
    if not origins:
        return (
            "no origins recorded (an origin column in the CSV, or splitsafe-lineage.csv "
            "written by python -m data frames / upsample)"
        )
    if len(origins) == 1 and not (manifest["origin"] == "").any():
        return f"every image has the same origin ({origins[0]!r})"
    return ""


def audit_class_balance(manifest: pd.DataFrame, *, max_ratio: float) -> Finding:
    """Fail when a split's largest class is more than ``max_ratio`` times its smallest."""
    table = find_class_imbalance(manifest, max_ratio=max_ratio)
    failing = table.loc[table["is_imbalanced"]]
    parts = []
    for row in failing.itertuples():
        text = (
            f"{row.split or '(unsplit)'}: {row.largest} {row.largest_images} vs "
            f"{row.smallest} {row.smallest_images} images (ratio {row.ratio:.1f})"
        )
        if row.missing:
            text = f"{row.split or '(unsplit)'}: no images of {row.missing}"
        parts.append(text)
    ratios = ", ".join(f"{r.split or '(unsplit)'} {r.ratio:.1f}" for r in table.itertuples())
    if failing.empty:
        summary = f"largest/smallest class ratio per split: {ratios} (max {max_ratio:g})"
    else:
        summary = (
            f"{len(failing)} split(s) imbalanced: {'; '.join(parts)}; threshold ratio "
            f"<= {max_ratio:g} (balance_max_ratio), counts include augmented copies; "
            f"fix: {BALANCE_FIX}"
        )
    counts = class_counts(manifest)
    return Finding(
        rule="class-balance",
        title=f"In each split the largest class is at most {max_ratio:g} times the smallest",
        passed=failing.empty,
        summary=summary,
        count=len(failing),
        examples=table,
        figures={"Images per class, by split and origin": plot_class_counts(counts)},
        details={
            "ratios": {
                r.split: r.ratio if np.isfinite(r.ratio) else None for r in table.itertuples()
            },
            "counts": counts.to_dict(orient="records"),
        },
    )


def audit_origin_mix(manifest: pd.DataFrame, *, max_distance: float) -> Finding:
    """Fail when a class's mix of origins is far from the other classes' mix."""
    table = find_origin_mix_outliers(manifest, max_distance=max_distance)
    outliers = table.loc[table["is_outlier"]]
    if outliers.empty:
        top = table.iloc[0]
        summary = (
            f"every class's origin mix is within {max_distance:.2f} of the other classes' "
            f"(largest: {top['label']} {top['distance']:.2f})"
        )
    else:
        shown = "; ".join(
            f"{row.label}: {row.main_difference} of the other classes (distance {row.distance:.2f})"
            for row in outliers.itertuples()
        )
        summary = (
            f"{len(outliers)} class(es) differ in their mix of origins: {shown}; threshold "
            f"total-variation distance <= {max_distance:.2f} (origin_mix_max_distance), "
            "counts include augmented copies; fix: a model can learn the origin instead of "
            "the class: upsample or collect that origin for the other classes too, or cap "
            "the copies of this one"
        )
    return Finding(
        rule="origin-mix",
        title="Each class has a mix of origins like the other classes'",
        passed=outliers.empty,
        summary=summary,
        count=len(outliers),
        examples=table,
        details={"distances": dict(zip(table["label"], table["distance"], strict=True))},
    )
