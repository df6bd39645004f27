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
        A PNG image (seaborn ``catplot``, Agg backend).
    """
    from interpret.plots import figure_to_png, use_agg_backend

    use_agg_backend()
    import seaborn as sns

    table = counts.assign(
        kind=np.where(counts["augmented"], counts["origin"] + " (augmented)", counts["origin"]),
        split=counts["split"].replace("", "(unsplit)"),
    )
    splits = list(dict.fromkeys(table["split"]))
    grid = sns.catplot(
        data=table,
        x="label",
        y="images",
        hue="kind",
        col="split",
        col_order=splits,
        kind="bar",
        estimator="sum",
        errorbar=None,
        sharey=False,
        height=3.5,
        aspect=1.3,
    )
    grid.set_titles("{col_name}")
    grid.set_axis_labels("class", "images")
    for axis in grid.axes.flat:
        axis.tick_params(axis="x", labelrotation=45)
    return figure_to_png(grid)
