"""Image quality flags and their share per class (data/quality.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.quality import QUALITY_FLAGS, flag_quality, flagged_examples, quality_shares

THRESHOLDS = {
    "dark_mean": 16.0,
    "light_mean": 240.0,
    "low_information_std": 6.0,
    "blur_sharpness": 10.0,
    "min_side": 32,
    "max_aspect": 3.0,
}
FAIL_ON = ("dark", "light", "low_information")


def make_features(per_class: int = 40, labels=("bart", "homer", "lisa")) -> pd.DataFrame:
    """Ordinary frames: mid-grey, contrasty, sharp, 320x240."""
    rows = []
    for label in labels:
        for i in range(per_class):
            rows.append(
                {
                    "path": f"train/{label}/{i:03d}.jpg",
                    "label": label,
                    "split": "train",
                    "error": "",
                    "brightness": 120.0,
                    "contrast": 50.0,
                    "sharpness": 300.0,
                    "entropy": 7.0,
                    "width": 320,
                    "height": 240,
                }
            )
    return pd.DataFrame(rows)


def test_each_flag_fires_on_its_own_planted_image():
    features = make_features(per_class=1, labels=["x"] * 7)
    features["path"] = [f"{i}.jpg" for i in range(7)]
    features.loc[1, ["brightness", "contrast"]] = [3.0, 1.0]  # fade to black: dark and flat
    features.loc[2, "brightness"] = 250.0
    features.loc[3, "contrast"] = 2.0
    features.loc[4, "sharpness"] = 1.0
    features.loc[5, ["width", "height"]] = [28, 28]
    features.loc[6, ["width", "height"]] = [1000, 200]
    flags = flag_quality(features, **THRESHOLDS)
    assert list(flags.columns) == list(QUALITY_FLAGS)
    assert not flags.loc[0].any()
    assert flags.loc[1, ["dark", "low_information"]].all() and flags.loc[1].sum() == 2
    assert flags.loc[2, "light"] and flags.loc[2].sum() == 1
    assert flags.loc[3, "low_information"] and flags.loc[3].sum() == 1
    assert flags.loc[4, "blurry"] and flags.loc[4].sum() == 1
    assert flags.loc[5, "tiny"] and flags.loc[5].sum() == 1
    assert flags.loc[6, "odd_aspect"] and flags.loc[6].sum() == 1


def test_broken_images_get_no_flag():
    features = make_features(per_class=2)
    features.loc[0, ["error", "width", "height", "brightness", "contrast"]] = ["bad", 0, 0, 0, 0]
    assert not flag_quality(features, **THRESHOLDS).loc[0].any()


def test_class_full_of_background_frames_fails_and_others_pass():
    features = make_features()
    lisa = features.index[features["label"] == "lisa"]
    features.loc[lisa[:8], "contrast"] = 2.0  # 20% flat frames
    features.loc[features.index[:2], "sharpness"] = 1.0  # blur is reported, not failing
    flags = flag_quality(features, **THRESHOLDS)
    shares = quality_shares(flags, features["label"], fail_on=FAIL_ON).set_index("label")
    assert shares.loc["lisa", "failing_share"] == pytest.approx(0.2)
    assert shares.loc["lisa", "low_information"] == pytest.approx(0.2)
    assert shares.loc["bart", "failing_share"] == 0.0
    assert shares.loc["bart", "blurry"] == pytest.approx(0.05)
    assert shares.index[0] == "lisa" and shares.loc["lisa", "images"] == 40
    examples = flagged_examples(features, flags, fail_on=FAIL_ON)
    assert len(examples) == 8 and set(examples["label"]) == {"lisa"}
    assert set(examples["flags"]) == {"low_information"}
    assert list(examples.columns[:4]) == ["path", "label", "split", "flags"]


def test_flags_outside_fail_on_never_count_and_unknown_names_are_rejected():
    features = make_features()
    features["width"] = 28  # every image tiny
    flags = flag_quality(features, **THRESHOLDS)
    assert flags["tiny"].all()
    assert quality_shares(flags, features["label"], fail_on=FAIL_ON)["failing_share"].eq(0).all()
    assert quality_shares(flags, features["label"], fail_on=("tiny",))["failing_share"].eq(1).all()
    with pytest.raises(ValueError, match="quality_fail_on"):
        quality_shares(flags, features["label"], fail_on=("smudged",))
    with pytest.raises(ValueError, match="quality_dark_mean"):
        flag_quality(features, **{**THRESHOLDS, "dark_mean": 250.0})


@settings(max_examples=40, deadline=None)
@given(
    brightness=st.lists(st.floats(0, 255), min_size=1, max_size=30),
    dark=st.floats(1, 120),
)
def test_dark_flag_is_exactly_brightness_below_the_threshold(brightness, dark):
    features = make_features(per_class=len(brightness), labels=["a"])
    features["brightness"] = brightness
    flags = flag_quality(features, **{**THRESHOLDS, "dark_mean": dark})
    assert (flags["dark"].to_numpy() == (np.array(brightness) < dark)).all()
    shares = quality_shares(flags, features["label"], fail_on=("dark",))
    assert shares.loc[0, "failing_share"] == pytest.approx(np.mean(np.array(brightness) < dark))


def test_quality_finding_names_the_failing_class_its_images_and_warns_on_other_flags():
    from data.quality import audit_image_quality

    features = make_features()
    lisa = features.index[features["label"] == "lisa"]
    features.loc[lisa[:8], "contrast"] = 2.0
    features.loc[features.index[:3], "brightness"] = 250.0  # bart: 3 of 40 light, under 5%...
    features.loc[features.index[:3], "contrast"] = 40.0
    features["width"] = 28  # every image tiny: reported only
    finding = audit_image_quality(features, thresholds=THRESHOLDS, fail_on=FAIL_ON, max_share=0.1)
    assert not finding.passed and finding.rule == "image-quality" and finding.warning
    assert "lisa 20% of 40 (low_information 20%)" in finding.summary
    assert "train/lisa/000.jpg" in finding.summary and "quality_max_share" in finding.summary
    assert set(finding.examples["label"]) == {"lisa"}
    assert "120 tiny" in finding.summary
    assert finding.count == 11
