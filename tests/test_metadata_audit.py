"""Metadata shortcuts and property drift (data/metadata_audit.py) on synthetic feature rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.border_audit import SIDES
from data.drift import find_property_drift, plot_property_distributions
from data.metadata_audit import (
    find_metadata_shortcut,
    metadata_shortcut_skip_reason,
    metadata_table,
)

PAIRS = (("valid", "train"), ("test", "train"), ("test", "valid"))


def make_features(rows: int = 600, *, classes: int = 3, seed: int = 0) -> pd.DataFrame:
    """Metadata drawn independently of the label: nothing to learn."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "path": [f"img{i:05d}.jpg" for i in range(rows)],
            "label": [f"class{i % classes}" for i in range(rows)],
            "split": rng.choice(["train", "train", "train", "valid", "test"], size=rows),
            "error": "",
            "width": rng.choice([320, 640, 1280], size=rows),
            "height": rng.choice([240, 480, 720], size=rows),
            "format": rng.choice(["JPEG", "PNG"], size=rows),
            "mode": rng.choice(["RGB", "L"], size=rows),
            "file_size": rng.integers(20_000, 200_000, size=rows),
            "is_grayscale": rng.random(rows) < 0.2,
            "brightness": rng.uniform(40, 200, size=rows),
            "contrast": rng.uniform(20, 80, size=rows),
            "sharpness": rng.uniform(50, 500, size=rows),
            "entropy": rng.uniform(5, 8, size=rows),
        }
    )
    for side in SIDES:
        table[f"border_{side}_width"] = rng.choice([0, 0, 0, 3], size=rows)
        table[f"border_{side}_offset"] = 0
        table[f"border_{side}_color"] = np.where(table[f"border_{side}_width"] > 0, "#000000", "")
    return table


def test_label_independent_of_metadata_is_no_shortcut():
    result = find_metadata_shortcut(make_features(), folds=5, seed=0)
    assert result.classes == 3 and result.baseline == pytest.approx(1 / 3)
    assert len(result.fold_scores) == 5
    assert result.gain < 0.15
    assert not result.is_subsampled


def test_file_size_that_predicts_the_label_is_found_and_named():
    features = make_features()
    codes = features["label"].str[-1].astype(int).to_numpy()
    rng = np.random.default_rng(1)
    features["file_size"] = 30_000 + 40_000 * codes + rng.integers(0, 10_000, len(features))
    result = find_metadata_shortcut(features, folds=5, seed=0)
    assert result.gain > 0.5
    assert result.balanced_accuracy > 0.9
    assert result.top_features()[0] == "file_size"
    assert result.importances.iloc[0]["importance"] > 0.3


def test_format_of_one_class_is_found_as_a_categorical_feature():
    features = make_features()
    features["format"] = np.where(features["label"] == "class2", "PNG", "JPEG")
    result = find_metadata_shortcut(features, folds=3, seed=0)
    assert result.gain > 0.2
    assert result.top_features()[0] == "format"


def test_metadata_table_columns_and_types():
    features = make_features(rows=10)
    features.loc[0, "height"] = 0  # a decode error leaves 0
    table = metadata_table(features)
    assert table.loc[0, "aspect"] == 0.0
    assert table["format"].dtype == "category"
    assert set(table["border_top_gray"].unique()) <= {-1.0, 0.0}
    assert table.index.equals(features.index)


def test_subsample_keeps_every_class_and_says_so():
    features = make_features(rows=3_000, classes=4)
    result = find_metadata_shortcut(features, folds=3, seed=0, max_rows=400)
    assert result.is_subsampled and result.rows == 3_000
    assert 380 <= result.rows_used <= 420


def test_skip_reasons_for_one_class_and_singletons():
    features = make_features(rows=30, classes=1)
    assert "two classes" in metadata_shortcut_skip_reason(features, folds=5)
    features.loc[0, "label"] = "lonely"
    assert "lonely" in metadata_shortcut_skip_reason(features, folds=5)
    with pytest.raises(ValueError, match="lonely"):
        find_metadata_shortcut(features, folds=5)
    assert metadata_shortcut_skip_reason(make_features(rows=30), folds=5) is None


def test_shifted_brightness_in_test_is_reported_as_drift():
    features = make_features(rows=1_500)
    is_test = features["split"] == "test"
    features.loc[is_test, "brightness"] = features.loc[is_test, "brightness"] * 0.5
    drift = find_property_drift(features, pairs=PAIRS, alpha=0.001)
    drifted = drift[drift["is_drifted"]]
    assert set(drifted["property"]) == {"brightness"}
    assert set(zip(drifted["held_out"], drifted["reference"], strict=True)) == {
        ("test", "train"),
        ("test", "valid"),
    }
    assert drifted.iloc[0]["held_out_median"] < drifted.iloc[0]["reference_median"]
    assert len(drift) == 3 * 8


def test_random_splits_have_no_drift_and_missing_splits_are_skipped():
    features = make_features(rows=1_500, seed=3)
    assert not find_property_drift(features, pairs=PAIRS, alpha=0.001)["is_drifted"].any()
    only_train = features.assign(split="train")
    assert find_property_drift(only_train, pairs=PAIRS, alpha=0.001).empty


def test_distribution_plot_is_a_png():
    png = plot_property_distributions(make_features(rows=300), ["brightness", "aspect"])
    assert png.startswith(b"\x89PNG") and len(png) > 5_000


def test_shortcut_finding_names_the_feature_the_gain_and_the_fix():
    from data.metadata_audit import audit_metadata_shortcut

    features = make_features()
    features["width"] = np.where(features["label"] == "class0", 1280, 640)
    features["height"] = 480
    finding = audit_metadata_shortcut(features, max_gain=0.15, folds=3)
    assert not finding.passed and finding.rule == "metadata-shortcut"
    assert finding.details["top_features"][0] in {"width", "aspect"}
    assert "metadata_max_gain 0.15" in finding.summary and "resize" in finding.summary
    assert audit_metadata_shortcut(make_features(), max_gain=0.15, folds=3).passed


def test_drift_finding_is_a_warning_with_a_figure_never_a_failure():
    from data.drift import audit_property_drift, drift_skip_reason

    features = make_features(rows=900)
    is_valid = features["split"] == "valid"
    features.loc[is_valid, "contrast"] = features.loc[is_valid, "contrast"] + 40
    finding = audit_property_drift(features, pairs=PAIRS, alpha=0.001)
    assert finding.passed and finding.warning and finding.rule == "property-drift"
    assert "contrast valid vs train" in finding.summary
    assert next(iter(finding.figures.values())).startswith(b"\x89PNG")
    assert drift_skip_reason(features, PAIRS) == ""
    assert "no pair" in drift_skip_reason(features.assign(split="train"), PAIRS)


def test_chosen_columns_limit_the_classifier_and_unknown_names_are_rejected():
    features = make_features()
    codes = features["label"].str[-1].astype(int).to_numpy()
    features["brightness"] = 50.0 + 60.0 * codes  # the palette tells the class
    assert find_metadata_shortcut(features, folds=3).gain > 0.5
    file_only = ("width", "height", "aspect", "format", "mode")
    result = find_metadata_shortcut(features, folds=3, columns=file_only)
    assert result.gain < 0.15
    assert set(result.importances["feature"]) <= set(file_only)
    with pytest.raises(ValueError, match="colour"):
        find_metadata_shortcut(features, folds=3, columns=("colour",))


def test_small_samples_raise_the_limit_to_three_standard_errors_of_luck():
    from data.metadata_audit import MetadataShortcut, shortcut_limit

    def result(rows, classes, gain):
        baseline = 1 / classes
        return MetadataShortcut(
            balanced_accuracy=baseline + gain,
            baseline=baseline,
            gain=gain,
            fold_scores=(baseline + gain,) * 3,
            classes=classes,
            rows=rows,
            rows_used=rows,
            importances=pd.DataFrame(columns=["feature", "importance", "std"]),
        )

    tiny = result(36, 2, 0.2)
    assert tiny.noise == pytest.approx(np.sqrt(0.25 / 36))
    assert shortcut_limit(tiny, max_gain=0.15) == pytest.approx(3 * np.sqrt(0.25 / 36))
    assert shortcut_limit(result(2_000, 10, 0.2), max_gain=0.15) == 0.15
