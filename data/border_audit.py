"""Border artifacts that tell classes apart: a strip or thin line along one side.

In the original project every frame of one movie had thin black lines near its border and the
model classified that movie by the lines. The feature extractor measures, per image and side,
``border_{side}_width`` (0 = none), ``border_{side}_offset`` and ``border_{side}_color``. Here,
per class and side, the share of images with a border is compared with the share in all other
classes by Fisher's exact test (two-sided: a class that alone lacks the letterbox is as easy to
spot), Bonferroni-corrected over classes x sides, and flagged only when the share difference is
also at least a floor: with 50,000 images a 2% difference is significant and harmless.
A letterbox that every class shares has no difference and is not flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.findings import Finding

SIDES = ("top", "bottom", "left", "right")


def border_columns() -> list[str]:
    """The 12 border feature columns, side by side."""
    return [f"border_{side}_{part}" for side in SIDES for part in ("width", "offset", "color")]


def color_channels(colors) -> np.ndarray:
    """RGB of ``#rrggbb`` strings, shape (n, 3), float64; NaN rows for "" or malformed entries.

    Parses each distinct string once (a dataset has few border colours, many images).
    """
    codes, distinct = pd.factorize(pd.Series(colors, dtype=object).fillna(""))
    parsed = np.full((len(distinct) + 1, 3), np.nan)  # last row: NaN for code -1
    for position, text in enumerate(distinct):
        if isinstance(text, str) and len(text) == 7 and text.startswith("#"):
            try:
                parsed[position] = [int(text[i : i + 2], 16) for i in (1, 3, 5)]
            except ValueError:
                pass
    return parsed[codes]


def median_color(colors) -> str:
    """Channel-wise median of ``#rrggbb`` strings ("" entries ignored); "" when none."""
    channels = color_channels(colors)
    channels = channels[~np.isnan(channels[:, 0])]
    if not len(channels):
        return ""
    red, green, blue = np.round(np.median(channels, axis=0)).astype(int)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _typical_strip(features: pd.DataFrame, side: str, mask: np.ndarray) -> tuple[int, int, str]:
    """Median width, offset and colour of the ``side`` strips of the rows in ``mask``."""
    if not mask.any():
        return 0, 0, ""
    width = int(np.median(features[f"border_{side}_width"].to_numpy()[mask]))
    offset = int(np.median(features[f"border_{side}_offset"].to_numpy()[mask]))
    return width, offset, median_color(features[f"border_{side}_color"].to_numpy()[mask])


def compare_border_shares(
    features: pd.DataFrame, *, alpha: float, min_share_difference: float
) -> pd.DataFrame:
    """Per class and side: share of images with a border, against the other classes.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``label`` (str), ``border_{side}_width``/``_offset`` (int, px) and
        ``border_{side}_color`` (str, ``#rrggbb``) for each side in :data:`SIDES`; ``error``
        (str) rows that are not "" are left out.
    alpha : float, keyword-only
        Family-wise significance level (``AuditConfig.border_alpha``); each test's p-value is
        multiplied by the number of tests (classes x sides, Bonferroni).
    min_share_difference : float, keyword-only
        Effect-size floor on ``|share - share_rest|`` (``AuditConfig.border_min_share_difference``).

    Returns
    -------
    pandas.DataFrame
        One row per class and side, flagged rows first then largest difference, columns:
        ``label``, ``side`` (str), ``images``, ``with_border`` (int), ``share``, ``share_rest``,
        ``difference`` (float, share - share_rest), ``p_value``, ``p_adjusted`` (float),
        ``typical_width``, ``typical_offset`` (int, px, medians), ``typical_color`` (str,
        channel-wise median) of the strip that tells the class apart: over this class's
        bordered images when its share is higher, over the other classes' when lower (0, 0,
        "" when none), ``is_flagged`` (bool).
    """
    from scipy.stats import fisher_exact

    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}; expected a significance level in (0, 1)")
    usable = features.loc[features["error"] == ""] if "error" in features else features
    labels = sorted(usable["label"].unique())
    tests = max(len(labels) * len(SIDES), 1)
    rows = []
    for side in SIDES:
        widths = usable[f"border_{side}_width"].to_numpy()
        has_border = widths > 0
        per_label = pd.Series(has_border).groupby(usable["label"].to_numpy())
        bordered, totals = per_label.sum(), per_label.size()
        total_bordered, total_images = int(bordered.sum()), int(totals.sum())
        for label in labels:
            inside, images = int(bordered[label]), int(totals[label])
            outside, rest = total_bordered - inside, total_images - images
            if rest == 0:
                continue
            _, p_value = fisher_exact([[inside, images - inside], [outside, rest - outside]])
            share, share_rest = inside / images, outside / rest
            is_label = usable["label"].to_numpy() == label
            # The strip that tells the class apart: its own, or the one the others have.
            mask = (is_label if share >= share_rest else ~is_label) & has_border
            width, offset, color = _typical_strip(usable, side, mask)
            p_adjusted = min(1.0, float(p_value) * tests)
            rows.append(
                {
                    "label": label,
                    "side": side,
                    "images": images,
                    "with_border": inside,
                    "share": share,
                    "share_rest": share_rest,
                    "difference": share - share_rest,
                    "p_value": float(p_value),
                    "p_adjusted": p_adjusted,
                    "typical_width": width,
                    "typical_offset": offset,
                    "typical_color": color,
                    "is_flagged": p_adjusted < alpha
                    and abs(share - share_rest) >= min_share_difference,
                }
            )
    result = pd.DataFrame(rows)
    if result.empty:
        return result
    order = result.assign(size=result["difference"].abs()).sort_values(
        ["is_flagged", "size", "label", "side"], ascending=[False, False, True, True]
    )
    return order.drop(columns="size").reset_index(drop=True)


def describe_border(row) -> str:
    """One line naming class, side, share, width, offset and colour of a flagged row."""
    where = "touching the edge" if row["typical_offset"] == 0 else f"{row['typical_offset']} px in"
    if row["difference"] >= 0:
        return (
            f"{row['label']}: {row['share']:.0%} have a {row['side']} border vs "
            f"{row['share_rest']:.0%} of other classes (typical {row['typical_width']} px wide, "
            f"{where}, colour {row['typical_color'] or '?'}; p={row['p_adjusted']:.1e})"
        )
    return (
        f"{row['label']}: only {row['share']:.0%} have a {row['side']} border vs "
        f"{row['share_rest']:.0%} of other classes (theirs typically {row['typical_width']} px "
        f"wide, {where}, colour {row['typical_color'] or '?'}; p={row['p_adjusted']:.1e})"
    )


def border_examples(features: pd.DataFrame, flagged: pd.DataFrame, *, limit: int) -> pd.DataFrame:
    """Images behind the flagged rows, for the report to draw their strips.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``path``, ``label`` and the border columns.
    flagged : pandas.DataFrame
        Rows of :func:`compare_border_shares` (``label``, ``side``, ``difference``).
    limit : int, keyword-only
        Images per flagged row, at most.

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, ``label``, ``side`` (str, the flagged side) and the 12 border columns.
        For a class with more borders, its bordered images; for a class with fewer, bordered
        images of the other classes (what the class lacks).
    """
    parts = []
    for _, row in flagged.iterrows():
        is_label = features["label"] == row["label"]
        has_border = features[f"border_{row['side']}_width"] > 0
        chosen = features.loc[(is_label if row["difference"] >= 0 else ~is_label) & has_border]
        parts.append(chosen.head(limit).assign(side=row["side"]))
    columns = ["path", "label", "side", *border_columns()]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True).loc[:, columns]


# --- audits: Finding builders (called by audits/test_borders.py) -----------------------------

CROP_FIX = "python -m data crop-borders DATASET OUT"
MESSAGE_EXAMPLES = 3  # flagged class/side rows named in a message


def border_skip_reason(features: pd.DataFrame) -> str:
    """Why the border audit cannot run ("" when it can)."""
    missing = [c for c in border_columns() if c not in features]
    if missing:
        return f"the features lack border columns {missing[:3]}; recompute them (data.features)"
    usable = features.loc[features["error"] == ""] if "error" in features else features
    if usable["label"].nunique() < 2:
        return "the dataset has one class; border shares compare classes"
    return ""


def audit_border_artifacts(
    features: pd.DataFrame, *, alpha: float, min_share_difference: float, max_examples: int = 12
) -> Finding:
    """Fail when one class's share of a border strip or line on a side differs from the rest."""
    table = compare_border_shares(features, alpha=alpha, min_share_difference=min_share_difference)
    flagged = table.loc[table["is_flagged"]] if len(table) else table
    if flagged.empty:
        summary = (
            "no class differs from the others in its share of border strips or lines "
            f"(Fisher exact p < {alpha:g} Bonferroni-corrected and share difference >= "
            f"{min_share_difference:.2f})"
        )
    else:
        shown = "; ".join(
            describe_border(row) for _, row in flagged.head(MESSAGE_EXAMPLES).iterrows()
        )
        more = len(flagged) - MESSAGE_EXAMPLES
        summary = (
            f"{len(flagged)} class/side border differences: {shown}"
            f"{f'; and {more} more' if more > 0 else ''}; thresholds: p < {alpha:g} "
            f"(border_alpha, Bonferroni over {table['label'].nunique()} classes x 4 sides) and "
            f"share difference >= {min_share_difference:.2f} (border_min_share_difference); "
            f"fix: a model can tell the class by its border: {CROP_FIX}"
        )
    return Finding(
        rule="border-artifacts",
        title="No class stands out by a border strip or thin line",
        passed=flagged.empty,
        summary=summary,
        count=len(flagged),
        examples=border_examples(features, flagged, limit=max_examples),
        details={"shares": table.to_dict(orient="records")},
    )
