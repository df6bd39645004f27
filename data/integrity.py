"""Integrity audit: every file decodes; an inventory of sizes, modes and formats.

A pure function of the feature table (``data.features``): the ``error`` column holds why a
file could not be read or decoded (empty when fine). Files the scan did not take as images
are passed in as the manifest's ``attrs["skipped"]`` list and reported, never failed on.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from data.findings import Finding

RULE = "integrity"


def find_broken_images(features: pd.DataFrame) -> pd.DataFrame:
    """Rows whose file could not be read or decoded.

    Parameters
    ----------
    features : DataFrame
        The feature table; needs ``path``, ``split``, ``label``, ``error``.

    Returns
    -------
    DataFrame
        Columns ``path``, ``split``, ``label``, ``error`` (the reason), sorted by path.
    """
    broken = features.loc[features["error"] != "", ["path", "split", "label", "error"]]
    return broken.sort_values("path", kind="stable").reset_index(drop=True)


def _counts(series: pd.Series) -> dict[str, int]:
    return {str(key): int(value) for key, value in series.value_counts().items()}


def inventory(features: pd.DataFrame) -> dict:
    """Counts of formats and modes and the range of sizes of the decodable images.

    Returns
    -------
    dict
        ``images`` (int), ``decodable`` (int), ``formats`` and ``modes`` (value -> count),
        ``sizes`` (``width``/``height``/``file_size`` -> ``{min, median, max}``), and
        ``by_split`` (split -> ``{images, broken}``).
    """
    good = features[features["error"] == ""]
    sizes = {}
    for column in ("width", "height", "file_size"):
        if column in good and len(good):
            values = good[column].astype("int64")
            sizes[column] = {
                "min": int(values.min()),
                "median": float(values.median()),
                "max": int(values.max()),
            }
    by_split = {
        (split or "(unsplit)"): {
            "images": int(len(rows)),
            "broken": int((rows["error"] != "").sum()),
        }
        for split, rows in features.groupby("split", sort=True)
    }
    return {
        "images": int(len(features)),
        "decodable": int(len(good)),
        "formats": _counts(good["format"]) if "format" in good else {},
        "modes": _counts(good["mode"]) if "mode" in good else {},
        "sizes": sizes,
        "by_split": by_split,
    }


def audit_integrity(
    features: pd.DataFrame,
    *,
    skipped: Sequence[dict] = (),
    max_examples: int = 12,
) -> Finding:
    """Fail when any image cannot be decoded; name each broken file and its reason.

    Parameters
    ----------
    features : DataFrame
        The feature table.
    skipped : sequence of dict
        ``{"path", "reason"}`` for files the scan did not take as images (the manifest's
        ``attrs["skipped"]``); listed in the details, and the finding is a warning when any.
    max_examples : int
        Broken files named in the message (``AuditConfig.report_examples``).
    """
    broken = find_broken_images(features)
    details = {"inventory": inventory(features), "skipped_files": list(skipped)}
    if len(broken):
        named = "; ".join(
            f"{row.path} ({row.error})" for row in broken.head(max_examples).itertuples()
        )
        more = f" and {len(broken) - max_examples} more" if len(broken) > max_examples else ""
        summary = (
            f"{len(broken)} of {len(features)} images cannot be decoded: {named}{more}; "
            "fix: re-download, convert or delete them (every other audit leaves them out)"
        )
    else:
        summary = f"all {len(features)} images decode"
        if skipped:
            first = ", ".join(f"{item['path']} ({item['reason']})" for item in skipped[:3])
            summary += f"; {len(skipped)} files were not taken as images, e.g. {first}"
    return Finding(
        rule=RULE,
        title="Every image file decodes",
        passed=not len(broken),
        summary=summary,
        count=int(len(broken)),
        examples=broken,
        details=details,
        warning=bool(skipped) and not len(broken),
    )
