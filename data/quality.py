"""Image quality: frames a person would drop before training, and their share per class.

Flags, each a boolean column computed from the per-image features (scores apart from
thresholds, as cleanvision does):

=================  ==============================================  ==============================
flag               condition                                       threshold (AuditConfig)
=================  ==============================================  ==============================
``dark``           ``brightness < dark_mean`` (fade to black)      ``quality_dark_mean``
``light``          ``brightness > light_mean`` (fade to white)     ``quality_light_mean``
``low_information`` ``contrast < low_information_std`` (flat,       ``quality_low_information_std``
                   background-only: sky, wall, title card fill)
``blurry``         ``sharpness < blur_sharpness``                  ``quality_blur_sharpness``
``tiny``           ``min(width, height) < min_side``               ``quality_min_side``
``odd_aspect``     ``max(w, h) / min(w, h) > max_aspect``          ``quality_max_aspect``
=================  ==============================================  ==============================

Which flags fail the audit is configurable (``quality_fail_on``); the others are reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.findings import Finding

QUALITY_FLAGS = ("dark", "light", "low_information", "blurry", "tiny", "odd_aspect")


def flag_quality(
    features: pd.DataFrame,
    *,
    dark_mean: float,
    light_mean: float,
    low_information_std: float,
    blur_sharpness: float,
    min_side: int,
    max_aspect: float,
) -> pd.DataFrame:
    """Quality flags per image.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``brightness``, ``contrast`` (float, 0-255), ``sharpness`` (float, variance of
        the Laplacian), ``width``, ``height`` (int, px); rows with a non-empty ``error`` get no
        flag (the integrity audit reports them).
    dark_mean, light_mean, low_information_std, blur_sharpness, min_side, max_aspect : keyword-only
        Thresholds, see the module docstring.

    Returns
    -------
    pandas.DataFrame
        Same index as ``features``, one bool column per name in :data:`QUALITY_FLAGS`.
    """
    if dark_mean >= light_mean:
        raise ValueError(
            f"dark_mean={dark_mean!r} must be below light_mean={light_mean!r} "
            "(quality_dark_mean, quality_light_mean)"
        )
    ok = (
        (features["error"] == "").to_numpy()
        if "error" in features
        else np.ones(len(features), dtype=bool)
    )
    brightness = features["brightness"].to_numpy(dtype=float)
    width = features["width"].to_numpy(dtype=float)
    height = features["height"].to_numpy(dtype=float)
    short, long = np.minimum(width, height), np.maximum(width, height)
    aspect = np.divide(long, short, out=np.full_like(long, np.inf), where=short > 0)
    flags = {
        "dark": brightness < dark_mean,
        "light": brightness > light_mean,
        "low_information": features["contrast"].to_numpy(dtype=float) < low_information_std,
        "blurry": features["sharpness"].to_numpy(dtype=float) < blur_sharpness,
        "tiny": short < min_side,
        "odd_aspect": aspect > max_aspect,
    }
    return pd.DataFrame({name: flags[name] & ok for name in QUALITY_FLAGS}, index=features.index)


def quality_shares(
    flags: pd.DataFrame, labels: pd.Series, *, fail_on: tuple[str, ...]
) -> pd.DataFrame:
    """Share of each flag per class, and the share of images with any failing flag.

    Parameters
    ----------
    flags : pandas.DataFrame
        Output of :func:`flag_quality`.
    labels : pandas.Series of str
        Class per image, same index as ``flags``.
    fail_on : tuple of str, keyword-only
        Flags that count towards failure (``AuditConfig.quality_fail_on``), each in
        :data:`QUALITY_FLAGS`.

    Returns
    -------
    pandas.DataFrame
        One row per class, sorted by ``failing_share`` (largest first), columns ``label``,
        ``images`` (int), one float column per flag (share in [0, 1]) and ``failing_share``
        (float, share of images with at least one flag in ``fail_on``).
    """
    unknown = sorted(set(fail_on) - set(QUALITY_FLAGS))
    if unknown:
        raise ValueError(
            f"quality_fail_on has unknown flag(s) {unknown}; "
            f"expected a subset of {list(QUALITY_FLAGS)}"
        )
    table = flags.astype(float).assign(
        failing_share=flags.loc[:, list(fail_on)].any(axis=1).astype(float) if fail_on else 0.0
    )
    grouped = table.groupby(labels.reindex(flags.index).to_numpy())
    shares = grouped.mean()
    shares.insert(0, "images", grouped.size())
    shares = shares.rename_axis("label").reset_index()
    return shares.sort_values(
        ["failing_share", "label"], ascending=[False, True], ignore_index=True
    )


def flagged_examples(
    features: pd.DataFrame, flags: pd.DataFrame, *, fail_on: tuple[str, ...]
) -> pd.DataFrame:
    """Images with a flag in ``fail_on``, for messages and the report.

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, ``label``, ``split`` (str), ``flags`` (str, every flag of the image,
        comma-joined), ``brightness``, ``contrast``, ``sharpness`` (float), ``width``,
        ``height`` (int); sorted by label then path.
    """
    failing = flags.loc[:, list(fail_on)].any(axis=1) if fail_on else flags.any(axis=1) & False
    chosen = features.loc[failing]
    names = pd.Series("", index=chosen.index, dtype=object)
    for name in flags.columns:
        names = names + np.where(flags.loc[failing, name].to_numpy(), name + ", ", "")
    names = names.str.removesuffix(", ")
    columns = ["path", "label", "split", "brightness", "contrast", "sharpness", "width", "height"]
    result = chosen.loc[:, columns].assign(flags=names.reindex(chosen.index).fillna(""))
    result = result.loc[:, ["path", "label", "split", "flags", *columns[3:]]]
    return result.sort_values(["label", "path"], ignore_index=True)


# --- audits: Finding builders (called by audits/test_quality.py) -----------------------------

MESSAGE_EXAMPLES = 3  # images named in a message


def audit_image_quality(
    features: pd.DataFrame,
    *,
    thresholds: dict,
    fail_on: tuple[str, ...],
    max_share: float,
) -> Finding:
    """Fail when a class's share of images with a flag in ``fail_on`` exceeds ``max_share``.

    ``thresholds`` holds the keyword arguments of :func:`flag_quality`. Flags outside
    ``fail_on`` over ``max_share`` in a class make the finding a warning.
    """
    flags = flag_quality(features, **thresholds)
    shares = quality_shares(flags, features["label"], fail_on=fail_on)
    failing = shares.loc[shares["failing_share"] > max_share]
    reported = [f for f in QUALITY_FLAGS if f not in fail_on]
    noted = {f: int(flags[f].sum()) for f in reported if (shares[f] > max_share).any()}
    failing_names = ", ".join(fail_on) or "none"
    if failing.empty:
        summary = f"no class has more than {max_share:.0%} of images flagged {failing_names}"
        examples = flagged_examples(features, flags, fail_on=tuple(noted))
    else:
        in_failing = features["label"].isin(failing["label"])
        examples = flagged_examples(
            features.loc[in_failing], flags.loc[in_failing], fail_on=fail_on
        )
        classes = "; ".join(
            f"{row['label']} {row['failing_share']:.0%} of {row['images']} ("
            + ", ".join(f"{f} {row[f]:.0%}" for f in fail_on if row[f] > 0)
            + ")"
            for _, row in failing.iterrows()
        )
        shown = ", ".join(
            f"{row.path} ({row.flags})" for row in examples.head(MESSAGE_EXAMPLES).itertuples()
        )
        summary = (
            f"{len(failing)} class(es) with more than {max_share:.0%} of images flagged "
            f"{failing_names}: {classes}; e.g. {shown}; threshold quality_max_share "
            f"{max_share:.2f} over quality_fail_on ({failing_names}), flag thresholds "
            "quality_*; fix: drop or replace these frames (review them in the report)"
        )
    if noted:
        summary += "; also reported: " + ", ".join(f"{n} {f}" for f, n in noted.items())
    counts = {f: int(flags[f].sum()) for f in QUALITY_FLAGS}
    return Finding(
        rule="image-quality",
        title=f"No class has more than {max_share:.0%} of images flagged {failing_names}",
        passed=failing.empty,
        warning=bool(noted),
        summary=summary,
        count=int(flags.loc[:, list(fail_on)].any(axis=1).sum()) if fail_on else 0,
        examples=examples,
        details={"flag_counts": counts, "shares": shares.to_dict(orient="records")},
    )
