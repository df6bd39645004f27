"""Duplicate audits: copies across splits, the same image under two labels, copies within a split.

One near-duplicate search over every decodable image (:func:`find_duplicate_pairs`, run once per
session by conftest.py's ``duplicate_pairs`` fixture) gives a pair table; each audit is a filter
of that table plus a message. Pure functions: no configuration is read here, callers pass the
thresholds from ``AuditConfig``.
"""

from __future__ import annotations

import pandas as pd

from data.findings import Finding
from data.neardup import describe_rule, find_duplicates

PAIR_COLUMNS = (
    "path_a",
    "path_b",
    "split_a",
    "split_b",
    "label_a",
    "label_b",
    "group_a",
    "group_b",
    "kind",
    "similarity",
    "phash_distance",
    "inverted",
    "flipped",
)
KIND_ORDER = {"exact": 0, "pixels": 1, "near": 2}
SPLIT_FIX = "python -m data split DATASET --by group"
MESSAGE_EXAMPLES = 3  # pairs named in a message; the report shows report_examples
# A label conflict claims "the same picture": a near pair counts only when the pHash agrees
# closely too. On simpsons-mnist (28x28), true re-encoded/shifted copies had pHash distance 0-8;
# look-alike frames of different characters matched by descriptor had 14-30 (see
# benchmarks/results/audits.md). Candidate for an AuditConfig key (label_conflict_phash_distance).
LABEL_CONFLICT_PHASH_DISTANCE = 8
# BLAS threads during the search. Measured on the shared 2-core machine (load 4-5), 50,000
# images: one OpenBLAS thread 15 s wall / 10 s CPU, two threads 34 s / 23 s (the alignment's
# many small products and OpenBLAS's spinning threads lose more than the second core gains).
SEARCH_BLAS_THREADS = 1


def rule_text(rule: dict) -> str:
    """The near-duplicate rule as the search applies it (data/neardup.py), for messages."""
    return f"rule: {describe_rule(**rule)} (near_duplicate_* settings)"


def find_duplicate_pairs(
    features: pd.DataFrame, *, flip: bool = False, return_candidates: bool = False, **rule
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Every unordered pair of decodable images that are copies or near-duplicates.

    Parameters
    ----------
    features : DataFrame
        The feature table (``data.features``); rows with a non-empty ``error`` are left out.
    flip : bool
        Also match horizontal mirror images (``AuditConfig.near_duplicate_flip``).
    return_candidates : bool
        Also return the search's candidate pairs (below), for the scene inference to reuse.
    **rule
        Thresholds of :func:`data.neardup.find_duplicates` (``AuditConfig.near_duplicate_rule()``;
        its calibrated defaults when omitted).

    Returns
    -------
    DataFrame
        One row per pair, columns :data:`PAIR_COLUMNS`: ``path_a``/``path_b``, their
        ``split_*``, ``label_*``, ``group_*``; ``kind`` (``exact``, ``pixels``, ``near``),
        ``similarity`` (float, 0-1), ``phash_distance`` (int, 0-64), ``inverted``, ``flipped``
        (bool). Sorted by kind, then similarity descending, then paths.
    candidates : DataFrame, only with ``return_candidates=True``
        Every unordered pair of decodable images whose plain descriptor ``|cosine|`` reaches
        the search's candidate threshold (``attrs["threshold"]``, the smallest of the rule's
        similarities), found on the way (:func:`data.neardup.find_duplicates`): ``path_a``,
        ``path_b`` (str), ``similarity`` (float, plain ``|cosine|``), in no particular order.
    """
    from threadpoolctl import threadpool_limits

    usable = features[features["error"] == ""]
    if len(usable) < 2:
        found, candidates = _empty_pairs(), None
    else:
        with threadpool_limits(limits=SEARCH_BLAS_THREADS, user_api="blas"):
            found, candidates = find_duplicates(
                usable, None, flip=flip, return_candidates=True, **rule
            )
    pairs = _describe_found(usable, found)
    if not return_candidates:
        return pairs
    return pairs, _candidate_paths(usable, candidates)


def _candidate_paths(usable: pd.DataFrame, candidates: pd.DataFrame | None) -> pd.DataFrame:
    """Candidates by path, not index label: columns ``path_a``, ``path_b``, ``similarity``."""
    if candidates is None:
        empty = pd.DataFrame({"path_a": [], "path_b": [], "similarity": []})
        empty = empty.astype({"path_a": object, "path_b": object, "similarity": float})
        empty.attrs["threshold"] = 0.0
        return empty
    paths = usable["path"].to_numpy()
    result = pd.DataFrame(
        {
            "path_a": paths[usable.index.get_indexer(candidates["query_index"].to_numpy())],
            "path_b": paths[usable.index.get_indexer(candidates["reference_index"].to_numpy())],
            "similarity": candidates["similarity"].to_numpy(),
        }
    )
    result.attrs["threshold"] = float(candidates.attrs["threshold"])
    return result


def _describe_found(usable: pd.DataFrame, found: pd.DataFrame) -> pd.DataFrame:
    """The pair table of :func:`find_duplicate_pairs` from ``find_duplicates``' output."""
    if not len(found):
        return _empty_pairs()
    first = usable.loc[found["query_index"].to_numpy()]
    second = usable.loc[found["reference_index"].to_numpy()]
    pairs = pd.DataFrame(
        {
            "path_a": first["path"].to_numpy(),
            "path_b": second["path"].to_numpy(),
            "split_a": first["split"].to_numpy(),
            "split_b": second["split"].to_numpy(),
            "label_a": first["label"].to_numpy(),
            "label_b": second["label"].to_numpy(),
            "group_a": first["group"].to_numpy(),
            "group_b": second["group"].to_numpy(),
            "kind": found["kind"].astype(str).to_numpy(),
            "similarity": found["similarity"].astype(float).to_numpy(),
            "phash_distance": found["phash_distance"].astype(int).to_numpy(),
            "inverted": found["inverted"].astype(bool).to_numpy(),
            "flipped": found["flipped"].astype(bool).to_numpy(),
        }
    )
    return _sorted(pairs)


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in PAIR_COLUMNS})


def _sorted(pairs: pd.DataFrame) -> pd.DataFrame:
    order = pairs.assign(_kind=pairs["kind"].map(KIND_ORDER).fillna(3))
    order = order.sort_values(
        ["_kind", "similarity", "path_a", "path_b"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    return order.drop(columns="_kind").reset_index(drop=True)


def describe_pair(row) -> str:
    """``a ~ b (same file bytes | same pixels | similarity s, pHash distance d)``."""
    if row["kind"] == "exact":
        how = "same file bytes"
    elif row["kind"] == "pixels":
        how = "same pixels"
    else:
        how = f"similarity {row['similarity']:.2f}, pHash distance {int(row['phash_distance'])}"
        if row.get("inverted"):
            how += ", inverted"
        if row.get("flipped"):
            how += ", mirrored"
    return f"{row['path_a']} ~ {row['path_b']} ({how})"


def _kind_counts(pairs: pd.DataFrame) -> str:
    names = {"exact": "exact copies", "pixels": "same pixels", "near": "near"}
    counts = pairs["kind"].value_counts()
    return ", ".join(f"{int(counts[k])} {names[k]}" for k in KIND_ORDER if k in counts)


def _examples_text(pairs: pd.DataFrame, max_examples: int) -> str:
    shown_count = min(max_examples, MESSAGE_EXAMPLES)
    shown = "; ".join(describe_pair(row) for _, row in pairs.head(shown_count).iterrows())
    return shown + (f"; and {len(pairs) - shown_count} more" if len(pairs) > shown_count else "")


def distinct_sources(pairs: pd.DataFrame) -> int:
    """Number of distinct unordered (source, source) pairs, a source being the group or path.

    An image and its augmented copies share a group, so one conflict between two sources
    counts once however many copies repeat it.
    """
    if not len(pairs):
        return 0
    first = pairs["group_a"].where(pairs["group_a"] != "", pairs["path_a"])
    second = pairs["group_b"].where(pairs["group_b"] != "", pairs["path_b"])
    return len({tuple(sorted(pair)) for pair in zip(first, second, strict=True)})


def missing_splits_reason(features: pd.DataFrame, splits) -> str:
    """Why an audit over ``splits`` cannot run ("" when every split has images)."""
    present = sorted(s for s in features["split"].unique() if s)
    missing = [s for s in splits if s not in present]
    if not missing:
        return ""
    return (
        f"the dataset has no {' or '.join(repr(s) for s in missing)} split "
        f"(splits present: {', '.join(present) or 'none, not split yet'})"
    )


def cross_split_pairs(
    pairs: pd.DataFrame, *, query_split: str, reference_split: str
) -> pd.DataFrame:
    """Pairs joining ``query_split`` and ``reference_split``; ``path_a`` is in ``query_split``."""
    forward = (pairs["split_a"] == query_split) & (pairs["split_b"] == reference_split)
    backward = (pairs["split_a"] == reference_split) & (pairs["split_b"] == query_split)
    swapped = pairs[backward].rename(columns=lambda c: _swap_suffix(c))
    return _sorted(pd.concat([pairs[forward], swapped[list(pairs.columns)]], ignore_index=True))


def _swap_suffix(column: str) -> str:
    if column.endswith("_a"):
        return column[:-2] + "_b"
    if column.endswith("_b"):
        return column[:-2] + "_a"
    return column


def audit_cross_split_duplicates(
    pairs: pd.DataFrame,
    *,
    query_split: str,
    reference_split: str,
    rule: dict,
    max_examples: int = 12,
) -> Finding:
    """Fail when an image of ``query_split`` has a copy or near-duplicate in ``reference_split``.

    Parameters
    ----------
    pairs : DataFrame
        From :func:`find_duplicate_pairs`.
    query_split, reference_split : str
        The held-out split and the one it must not overlap (``AuditConfig.split_pairs``).
    rule : dict
        The thresholds the pairs were found with (``AuditConfig.near_duplicate_rule()``),
        quoted in the message.
    max_examples : int
        Pairs named in the message (``AuditConfig.report_examples``).

    Returns
    -------
    Finding
        ``count`` = number of ``query_split`` images with at least one match; ``examples`` =
        the pairs (``path_a`` in ``query_split``).
    """
    found = cross_split_pairs(pairs, query_split=query_split, reference_split=reference_split)
    offenders = found["path_a"].nunique()
    title = f"No image of {query_split} has a copy or near-duplicate in {reference_split}"
    if not offenders:
        summary = (
            f"no {query_split} image has a copy or near-duplicate in {reference_split} "
            f"({rule_text(rule)})"
        )
    else:
        summary = (
            f"{offenders} {query_split} images have a copy or near-duplicate in "
            f"{reference_split} ({len(found)} pairs: {_kind_counts(found)}), e.g. "
            f"{_examples_text(found, max_examples)}; {rule_text(rule)}; "
            f"fix: move or drop them ({SPLIT_FIX})"
        )
    return Finding(
        rule="near-duplicates",
        title=title,
        passed=not offenders,
        summary=summary,
        count=int(offenders),
        examples=found,
        details={"pairs_by_kind": found["kind"].value_counts().to_dict()},
    )


def audit_label_conflicts(
    pairs: pd.DataFrame,
    *,
    similarity: float,
    phash_distance: int = LABEL_CONFLICT_PHASH_DISTANCE,
    max_examples: int = 12,
) -> Finding:
    """Fail when the same picture appears under two labels.

    Exact copies and same-pixel copies always count; a near pair counts when its descriptor
    ``|cosine|`` reaches ``similarity`` and its pHash distance is at most ``phash_distance``
    (:data:`LABEL_CONFLICT_PHASH_DISTANCE`): both signals must agree before two labels are
    called a conflict, since frames of one scene showing two characters look alike too.
    """
    is_copy = pairs["kind"].isin(["exact", "pixels"])
    is_same_picture = (pairs["similarity"] >= similarity) & (
        pairs["phash_distance"] <= phash_distance
    )
    found = pairs[(pairs["label_a"] != pairs["label_b"]) & (is_copy | is_same_picture)]
    found = found.reset_index(drop=True)
    rule = (
        f"exact or same-pixel copies, or |cosine| >= {similarity:.2f} "
        f"(near_duplicate_similarity) with pHash distance <= {phash_distance}"
    )
    if not len(found):
        summary = f"no image appears under two labels ({rule})"
    else:
        shown_count = min(max_examples, MESSAGE_EXAMPLES)
        shown = "; ".join(
            f"{describe_pair(row)} labelled {row['label_a']!r} and {row['label_b']!r}"
            for _, row in found.head(shown_count).iterrows()
        )
        more = f"; and {len(found) - shown_count} more" if len(found) > shown_count else ""
        summary = (
            f"{len(found)} pairs of images show the same content under two labels "
            f"({_kind_counts(found)}; {distinct_sources(found)} distinct source pairs once "
            f"augmented copies are grouped): {shown}{more}; counted: {rule}; "
            "fix: keep the right label and delete the other copy"
        )
    return Finding(
        rule="label-conflicts",
        title="No image appears under two labels",
        passed=not len(found),
        summary=summary,
        count=int(len(found)),
        examples=found,
    )


def within_split_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs inside one split, except an image and its relatives (same non-empty group)."""
    same_split = pairs["split_a"] == pairs["split_b"]
    related = (pairs["group_a"] != "") & (pairs["group_a"] == pairs["group_b"])
    return pairs[same_split & ~related].reset_index(drop=True)


def audit_duplicates_within_splits(
    pairs: pd.DataFrame,
    *,
    rule: dict,
    fail: bool = False,
    max_examples: int = 12,
) -> Finding:
    """Report copies inside one split; fail only when ``fail`` is set.

    Pairs of one group (an image and its augmented copies, frames of one scene) are expected
    and not counted. ``fail`` is ``AuditConfig.fail_on_duplicates_within_split`` (default
    False: duplicates within a split weigh those images twice but do not leak).
    """
    found = within_split_pairs(pairs)
    if not len(found):
        summary = f"no duplicates within a split ({rule_text(rule)})"
    else:
        by_split = found["split_a"].replace("", "(unsplit)").value_counts().sort_index()
        per_split = ", ".join(f"{split}: {int(n)}" for split, n in by_split.items())
        summary = (
            f"{len(found)} pairs of images are duplicates within a split ({per_split}; "
            f"{_kind_counts(found)}), e.g. {_examples_text(found, max_examples)}; "
            f"{rule_text(rule)}; "
            f"{'failing' if fail else 'reported only'} (fail_on_duplicates_within_split = "
            f"{str(fail).lower()}); fix: delete the extra copies"
        )
    return Finding(
        rule="duplicates-within-split",
        title="No duplicates within a split",
        passed=not (fail and len(found)),
        summary=summary,
        count=int(len(found)),
        examples=found,
        warning=bool(len(found)) and not fail,
    )
