"""Property drift: each numeric image property, split against split.

The distribution of each property (size, aspect, file size, brightness, contrast, sharpness,
entropy) in a held-out split against the reference split, by the two-sample
Kolmogorov-Smirnov test, Bonferroni-corrected over properties x split pairs. Reported as a
warning, never a failure: a test set from another camera is worth knowing about, but it is
not a leak. With 50,000 images KS finds tiny differences; the statistic (the largest gap
between the two cumulative distributions, 0-1) says how large a difference is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.findings import Finding

DRIFT_PROPERTIES = (
    "width",
    "height",
    "aspect",
    "file_size",
    "brightness",
    "contrast",
    "sharpness",
    "entropy",
)
MAX_PLOT_ROWS = 5_000  # rows drawn per split in the drift figure


def positions_by(values: np.ndarray) -> list[np.ndarray]:
    """Row positions of each distinct value, in order of the sorted values."""
    order = np.argsort(values, kind="stable")
    _, starts = np.unique(values[order], return_index=True)
    return np.split(order, starts[1:])


def find_property_drift(
    features: pd.DataFrame,
    *,
    pairs: tuple[tuple[str, str], ...],
    alpha: float,
    properties: tuple[str, ...] = DRIFT_PROPERTIES,
) -> pd.DataFrame:
    """Two-sample KS test of each numeric property between each pair of splits.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``split`` and the properties (``aspect`` is computed from width and height);
        rows with a non-empty ``error`` are left out.
    pairs : tuple of (held_out, reference), keyword-only
        Split pairs to compare (``AuditConfig.split_pairs``); pairs with an absent split are
        skipped.
    alpha : float, keyword-only
        Family-wise level (``AuditConfig.drift_alpha``), Bonferroni-corrected over all tests.
    properties : tuple of str, keyword-only
        Default :data:`DRIFT_PROPERTIES`; absent columns are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per property and pair, drifted first then by KS statistic, columns
        ``property``, ``held_out``, ``reference`` (str), ``statistic`` (float in [0, 1], the
        largest gap between the two cumulative distributions), ``p_value``, ``p_adjusted``,
        ``held_out_median``, ``reference_median`` (float), ``is_drifted`` (bool).
    """
    from scipy.stats import ks_2samp

    usable = features.loc[features["error"] == ""] if "error" in features else features
    values = _property_values(usable, properties)
    splits = usable["split"].to_numpy()
    present = [(a, b) for a, b in pairs if (splits == a).any() and (splits == b).any()]
    tests = max(len(present) * values.shape[1], 1)
    rows = []
    for held_out, reference in present:
        first, second = values[splits == held_out], values[splits == reference]
        for name in values.columns:
            result = ks_2samp(first[name].to_numpy(), second[name].to_numpy())
            p_adjusted = min(1.0, float(result.pvalue) * tests)
            rows.append(
                {
                    "property": name,
                    "held_out": held_out,
                    "reference": reference,
                    "statistic": float(result.statistic),
                    "p_value": float(result.pvalue),
                    "p_adjusted": p_adjusted,
                    "held_out_median": float(first[name].median()),
                    "reference_median": float(second[name].median()),
                    "is_drifted": p_adjusted < alpha,
                }
            )
    columns = ["property", "held_out", "reference", "statistic", "p_value", "p_adjusted"]
    columns += ["held_out_median", "reference_median", "is_drifted"]
    result = pd.DataFrame(rows, columns=columns)
    return result.sort_values(
        ["is_drifted", "statistic"], ascending=[False, False], ignore_index=True
    )


def _property_values(features: pd.DataFrame, properties) -> pd.DataFrame:
    columns = {}
    for name in properties:
        if name == "aspect" and {"width", "height"} <= set(features.columns):
            width = features["width"].to_numpy(dtype=float)
            height = features["height"].to_numpy(dtype=float)
            columns[name] = np.divide(width, height, out=np.zeros_like(width), where=height > 0)
        elif name in features.columns:
            columns[name] = features[name].to_numpy(dtype=float)
    return pd.DataFrame(columns, index=features.index)


def plot_property_distributions(
    features: pd.DataFrame, properties, *, seed: int = 0, max_rows: int = MAX_PLOT_ROWS
) -> bytes:
    """Histograms of ``properties`` by split (density per split), one panel per property.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``split`` and the properties (``aspect`` computed as in
        :func:`find_property_drift`).
    properties : sequence of str
        Properties to draw (e.g. the drifted ones), at most 8 drawn.
    seed, max_rows : keyword-only
        At most ``max_rows`` random rows per split are drawn.

    Returns
    -------
    bytes
        A PNG image.
    """
    from interpret.plots import figure_to_png, use_agg_backend

    use_agg_backend()
    import seaborn as sns

    properties = list(dict.fromkeys(properties))[:8]
    usable = features.loc[features["error"] == ""] if "error" in features else features
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(positions, size=min(len(positions), max_rows), replace=False)
        for positions in positions_by(usable["split"].to_numpy())
    ]
    drawn = usable.iloc[np.sort(np.concatenate(chosen))] if chosen else usable
    values = _property_values(drawn, properties).assign(split=drawn["split"].to_numpy())
    import matplotlib.pyplot as plt

    columns = min(4, max(len(properties), 1))
    rows = -(-len(properties) // columns) if properties else 1
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    order = [s for s in ("train", "valid", "test") if s in set(values["split"])]
    order += sorted(set(values["split"]) - set(order))
    for number, axis in enumerate(axes.flat):
        if number >= len(properties):
            axis.set_visible(False)
            continue
        name = properties[number]
        sns.histplot(  # own bins per property: sizes and brightness have unrelated ranges
            data=values,
            x=name,
            hue="split",
            hue_order=order,
            stat="density",
            common_norm=False,
            element="step",
            bins=40,
            ax=axis,
            legend=number == 0,
        )
        axis.set_title(name)
        axis.set_xlabel("")
    figure.tight_layout()
    return figure_to_png(figure, tight=False)  # laid out already: no second layout pass


# --- audits: Finding builders (called by audits/test_metadata.py) ----------------------------


def drift_skip_reason(features: pd.DataFrame, pairs) -> str:
    """Why the drift report cannot run ("" when some pair of splits is present)."""
    present = set(features["split"]) - {""}
    if any(a in present and b in present for a, b in pairs):
        return ""
    return f"no pair of splits to compare (splits present: {', '.join(sorted(present)) or 'none'})"


def audit_property_drift(features: pd.DataFrame, *, pairs, alpha: float, seed: int = 0) -> Finding:
    """Report (never fail) properties whose distribution differs between splits."""
    table = find_property_drift(features, pairs=pairs, alpha=alpha)
    drifted = table.loc[table["is_drifted"]]
    if drifted.empty:
        summary = f"no property differs between splits (KS test, p < {alpha:g} Bonferroni)"
    else:
        shown = "; ".join(
            f"{row.property} {row.held_out} vs {row.reference} (KS {row.statistic:.2f}, median "
            f"{row.held_out_median:.4g} vs {row.reference_median:.4g})"
            for row in drifted.head(4).itertuples()
        )
        more = len(drifted) - 4
        summary = (
            f"{len(drifted)} property/split differences: {shown}"
            f"{f'; and {more} more' if more > 0 else ''} (KS test, p < {alpha:g} Bonferroni, "
            "drift_alpha); reported, not failed: check that held-out images come from the "
            "same sources as training"
        )
    # Draw the properties that differ most (all when none differs), at most four panels.
    strongest = table.sort_values("statistic", ascending=False)["property"]
    drawn = list(dict.fromkeys(strongest))[:4]
    figures = {}
    if drawn:
        figures["Property distributions by split"] = plot_property_distributions(
            features, drawn, seed=seed
        )
    return Finding(
        rule="property-drift",
        title="Image properties are alike across splits",
        passed=True,
        warning=not drifted.empty,
        summary=summary,
        count=len(drifted),
        examples=table,
        figures=figures,
        details={"tests": len(table), "drifted": len(drifted)},
    )
