"""Metadata shortcuts: the label predicted from metadata alone.

If the label can be predicted from file metadata alone (size, format, file size,
grayscale, brightness, border profile), a model can learn it too, without looking at the
content: frames of one movie saved at another resolution, sketches that are all PNG. A
cross-validated gradient-boosting classifier measures how well metadata predicts the label
(balanced accuracy, so the majority baseline is ``1 / classes`` whatever the balance);
permutation importance names the features that carry it. Property drift between splits, the
other half of audits/test_metadata.py, is in data/drift.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.border_audit import SIDES, color_channels
from data.drift import positions_by
from data.findings import Finding

CATEGORICAL_FEATURES = ("format", "mode")
NUMERIC_FEATURES = (
    "width",
    "height",
    "aspect",
    "file_size",
    "is_grayscale",
    "brightness",
    "contrast",
    *(f"border_{side}_{part}" for side in SIDES for part in ("width", "offset", "gray")),
)
# Stratified subsample and boosting rounds: on 50,000 synthetic rows a planted file-size
# shortcut scored gain 0.59 / 0.60 / 0.60 with (4,000 rows, 40 rounds) / (3,000, 30) /
# (2,000, 30) and no shortcut -0.01..0.00, while (3,000, 30) took 25% less time than (4,000, 40).
MAX_CLASSIFIER_ROWS = 3_000
BOOSTING_ITERATIONS = 30
IMPORTANCE_REPEATS = 3  # permutation_importance n_repeats


@dataclass(frozen=True)
class MetadataShortcut:
    """How well metadata alone predicts the label.

    Attributes
    ----------
    balanced_accuracy : float
        Mean over the cross-validation folds, in [0, 1].
    baseline : float
        Balanced accuracy of always predicting the majority class: ``1 / classes``.
    gain : float
        ``balanced_accuracy - baseline``.
    fold_scores : tuple of float
        Balanced accuracy per fold.
    rows : int
        Usable images (no decode error); ``rows_used`` of them were used (a stratified
        subsample when more than ``max_rows``).
    importances : pandas.DataFrame
        Columns ``feature`` (str), ``importance``, ``std`` (float, drop in balanced accuracy
        when the feature is shuffled, on one held-out fold), most important first.
    """

    balanced_accuracy: float
    baseline: float
    gain: float
    fold_scores: tuple[float, ...]
    classes: int
    rows: int
    rows_used: int
    importances: pd.DataFrame = field(repr=False)

    @property
    def is_subsampled(self) -> bool:
        return self.rows_used < self.rows

    @property
    def noise(self) -> float:
        """Standard error of the balanced accuracy of a classifier that learnt nothing.

        Each class's recall of chance predictions is Binomial(n_k, 1/K) / n_k; the mean of K
        such recalls over n = sum(n_k) rows (balanced classes) has variance
        ``baseline * (1 - baseline) / n``. 36 images of two classes: 0.083, so a gain of 0.15
        is within two standard errors of luck; 2,000 images of ten classes: 0.007.
        """
        return float(np.sqrt(self.baseline * (1 - self.baseline) / max(self.rows_used, 1)))

    def top_features(self, count: int = 3) -> list[str]:
        """Names of the features whose shuffling costs more than noise, best first."""
        table = self.importances
        carrying = table.loc[table["importance"] > np.maximum(2 * table["std"], 0.01)]
        return list(carrying["feature"].head(count))


NOISE_FLOOR_ERRORS = 3.0  # a gain must also exceed this many standard errors of luck to fail


def shortcut_limit(result: MetadataShortcut, *, max_gain: float) -> float:
    """The gain above which the audit fails: ``max_gain``, raised on small datasets to
    :data:`NOISE_FLOOR_ERRORS` times :attr:`MetadataShortcut.noise`."""
    return max(max_gain, NOISE_FLOOR_ERRORS * result.noise)


def _color_gray(colors: pd.Series) -> np.ndarray:
    """ITU-R 601 luma of ``#rrggbb`` strings; -1 where there is no colour."""
    gray = color_channels(colors.to_numpy()) @ np.array([0.299, 0.587, 0.114])
    return np.where(np.isnan(gray), -1.0, gray)


def metadata_table(features: pd.DataFrame) -> pd.DataFrame:
    """The classifier's input: one column per metadata feature, same index as ``features``.

    Parameters
    ----------
    features : pandas.DataFrame
        The feature columns of ARCHITECTURE.md (``width``, ``height``, ``format``,
        ``file_size``, ``mode``, ``is_grayscale``, ``brightness``, ``contrast``, ``border_*``).

    Returns
    -------
    pandas.DataFrame
        :data:`NUMERIC_FEATURES` as float64 (``aspect`` = width / height, 0 when height is 0;
        ``border_{side}_gray`` = luma of the border colour, -1 for none) and
        :data:`CATEGORICAL_FEATURES` as pandas ``category``.
    """
    width = features["width"].to_numpy(dtype=float)
    height = features["height"].to_numpy(dtype=float)
    table = {
        "width": width,
        "height": height,
        "aspect": np.divide(width, height, out=np.zeros_like(width), where=height > 0),
        "file_size": features["file_size"].to_numpy(dtype=float),
        "is_grayscale": features["is_grayscale"].to_numpy(dtype=float),
        "brightness": features["brightness"].to_numpy(dtype=float),
        "contrast": features["contrast"].to_numpy(dtype=float),
    }
    for side in SIDES:
        table[f"border_{side}_width"] = features[f"border_{side}_width"].to_numpy(dtype=float)
        table[f"border_{side}_offset"] = features[f"border_{side}_offset"].to_numpy(dtype=float)
        table[f"border_{side}_gray"] = _color_gray(features[f"border_{side}_color"])
    result = pd.DataFrame(table, index=features.index)
    for name in CATEGORICAL_FEATURES:
        result[name] = features[name].astype(str).astype("category")
    return result


def metadata_columns(*, ignore: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every metadata feature but those in ``ignore`` (``AuditConfig.metadata_ignore``)."""
    known = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
    unknown = sorted(set(ignore) - set(known))
    if unknown:
        raise ValueError(
            f"metadata_ignore has unknown feature(s) {unknown}; expected names from {list(known)}"
        )
    return tuple(c for c in known if c not in ignore)


def metadata_shortcut_skip_reason(features: pd.DataFrame, *, folds: int) -> str | None:
    """Why the shortcut classifier cannot run on ``features`` (None when it can)."""
    usable = features.loc[features["error"] == ""] if "error" in features else features
    counts = usable["label"].value_counts()
    if len(counts) < 2:
        return f"metadata shortcut needs at least two classes; found {list(counts.index)}"
    if counts.min() < 2:
        small = list(counts.index[counts < 2])
        return (
            "metadata shortcut needs at least 2 images per class for cross-validation; "
            f"{small} have 1"
        )
    if folds < 2:
        return f"metadata_cv_folds={folds}; cross-validation needs at least 2 folds"
    return None


def _stratified_subsample(labels: pd.Series, *, max_rows: int, seed: int) -> np.ndarray:
    """Positions of at most about ``max_rows`` rows, each class's share kept (>= 10 per class)."""
    if len(labels) <= max_rows:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    fraction = max_rows / len(labels)
    chosen = []
    for positions in positions_by(labels.to_numpy()):
        keep = min(len(positions), max(int(round(fraction * len(positions))), 10))
        chosen.append(rng.choice(positions, size=keep, replace=False))
    return np.sort(np.concatenate(chosen))


def find_metadata_shortcut(
    features: pd.DataFrame,
    *,
    folds: int,
    seed: int = 0,
    max_rows: int = MAX_CLASSIFIER_ROWS,
    columns: tuple[str, ...] | None = None,
) -> MetadataShortcut:
    """Cross-validated balanced accuracy of predicting ``label`` from metadata alone.

    Parameters
    ----------
    features : pandas.DataFrame
        ``label`` and the columns :func:`metadata_table` reads; rows with a non-empty ``error``
        are left out. Needs two classes with >= 2 images each
        (:func:`metadata_shortcut_skip_reason`).
    folds : int, keyword-only
        Stratified folds (``AuditConfig.metadata_cv_folds``), lowered to the smallest class size.
    seed : int, keyword-only
        Fold shuffling, subsampling, model and permutation seed (``AuditConfig.seed``).
    max_rows : int, keyword-only
        Above this many rows a stratified subsample is used (default
        :data:`MAX_CLASSIFIER_ROWS`; the gain of a shortcut is visible long before 3,000 rows).
    columns : tuple of str, keyword-only
        Metadata features to use, a subset of :data:`NUMERIC_FEATURES` and
        :data:`CATEGORICAL_FEATURES`; default all. Leaving out ``brightness``, ``contrast``
        and ``file_size`` keeps to properties of the file and its frame, not of the content.

    Returns
    -------
    MetadataShortcut

    Notes
    -----
    Model: scikit-learn's ``HistGradientBoostingClassifier`` (:data:`BOOSTING_ITERATIONS`
    iterations, native categorical support, no early stopping), on one OpenMP thread: on a busy
    machine its thread pool's spinning made a 600-row fit 20x slower than one thread, and at
    3,000 rows one thread is fast enough. Features constant over the sample are left out.
    Correlated features (width, height, aspect) share the credit
    in permutation importance: shuffling one leaves the others to carry the signal, so read the
    top features as a group.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    reason = metadata_shortcut_skip_reason(features, folds=folds)
    if reason:
        raise ValueError(reason)
    usable = features.loc[features["error"] == ""] if "error" in features else features
    positions = _stratified_subsample(usable["label"], max_rows=max_rows, seed=seed)
    sample = usable.iloc[positions]
    table = metadata_table(sample)
    unknown = sorted(set(columns or ()) - set(table.columns))
    if unknown:
        raise ValueError(
            f"unknown metadata feature(s) {unknown}; expected names from {list(table.columns)}"
        )
    chosen = [c for c in table.columns if columns is None or c in columns]
    table = table.loc[:, [c for c in chosen if table[c].nunique(dropna=False) > 1]]
    labels = sample["label"].to_numpy()
    classes = int(usable["label"].nunique())
    folds = int(min(folds, sample["label"].value_counts().min()))
    if table.shape[1] == 0:  # nothing varies: no classifier beats the baseline
        return MetadataShortcut(
            balanced_accuracy=1.0 / classes,
            baseline=1.0 / classes,
            gain=0.0,
            fold_scores=(1.0 / classes,) * folds,
            classes=classes,
            rows=len(usable),
            rows_used=len(sample),
            importances=pd.DataFrame(columns=["feature", "importance", "std"]),
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = []
    with threadpool_limits(limits=1):
        for train_positions, test_positions in splitter.split(table, labels):
            model = HistGradientBoostingClassifier(
                max_iter=BOOSTING_ITERATIONS,
                max_leaf_nodes=15,
                learning_rate=0.1,
                early_stopping=False,
                categorical_features="from_dtype",
                random_state=seed,
            ).fit(table.iloc[train_positions], labels[train_positions])
            predicted = model.predict(table.iloc[test_positions])
            scores.append(float(balanced_accuracy_score(labels[test_positions], predicted)))
        # Importance on the last fold's held-out rows, with that fold's model.
        importance = permutation_importance(
            model,
            table.iloc[test_positions],
            labels[test_positions],
            scoring="balanced_accuracy",
            n_repeats=IMPORTANCE_REPEATS,
            random_state=seed,
        )
    importances = pd.DataFrame(
        {
            "feature": table.columns,
            "importance": importance.importances_mean,
            "std": importance.importances_std,
        }
    ).sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)
    balanced_accuracy = float(np.mean(scores))
    return MetadataShortcut(
        balanced_accuracy=balanced_accuracy,
        baseline=1.0 / classes,
        gain=balanced_accuracy - 1.0 / classes,
        fold_scores=tuple(scores),
        classes=classes,
        rows=len(usable),
        rows_used=len(sample),
        importances=importances,
    )


# --- audits: Finding builders (called by audits/test_metadata.py) ----------------------------

_ADVICE = {  # what to do when a feature carries the label
    "border": "crop the borders (python -m data crop-borders DATASET OUT)",
    "size": "resize every image to one size before training (or check where each class came from)",
    "file": "re-encode every image alike (one format, one quality)",
    "color": "check each class's sources: grayscale sketches or a dark movie are learnable by "
    "colour alone",
}


def _advice(feature: str) -> str:
    if feature.startswith("border_"):
        return _ADVICE["border"]
    if feature in {"width", "height", "aspect"}:
        return _ADVICE["size"]
    if feature in {"file_size", "format", "mode"}:
        return _ADVICE["file"]
    return _ADVICE["color"]


def audit_metadata_shortcut(
    features: pd.DataFrame,
    *,
    max_gain: float,
    folds: int,
    seed: int = 0,
    columns: tuple[str, ...] | None = None,
) -> Finding:
    """Fail when metadata alone predicts the label ``max_gain`` better than the baseline."""
    result = find_metadata_shortcut(features, folds=folds, seed=seed, columns=columns)
    top = result.top_features()
    carried = ", ".join(
        f"{row.feature} ({row.importance:.2f})"
        for row in result.importances.head(3).itertuples()
        if row.feature in top
    )
    sample = (
        f"{result.rows_used:,} of {result.rows:,} images, a stratified subsample"
        if result.is_subsampled
        else f"{result.rows:,} images"
    )
    score = (
        f"balanced accuracy {result.balanced_accuracy:.2f} vs {result.baseline:.2f} majority "
        f"baseline (gain {result.gain:.2f}; {len(result.fold_scores)}-fold CV on {sample})"
    )
    limit = shortcut_limit(result, max_gain=max_gain)
    if limit > max_gain:
        score += f"; small sample: the limit is {limit:.2f}, {NOISE_FLOOR_ERRORS:g} standard errors"
    passed = result.gain <= limit
    if passed:
        summary = f"metadata alone predicts the label no better than allowed: {score}"
        if carried:
            summary += f"; strongest features {carried}"
    else:
        advice = "; ".join(dict.fromkeys(_advice(f) for f in top)) or _ADVICE["color"]
        summary = (
            f"metadata alone predicts the label: {score}; gain > metadata_max_gain "
            f"{max_gain:.2f}; "
            f"carried by {carried or 'several features together'}; fix: {advice}"
        )
    return Finding(
        rule="metadata-shortcut",
        title="Metadata alone does not predict the label",
        passed=passed,
        summary=summary,
        count=0 if passed else len(top),
        examples=result.importances,
        details={
            "balanced_accuracy": result.balanced_accuracy,
            "baseline": result.baseline,
            "gain": result.gain,
            "limit": limit,
            "noise": result.noise,
            "fold_scores": list(result.fold_scores),
            "rows": result.rows,
            "rows_used": result.rows_used,
            "top_features": top,
        },
    )
