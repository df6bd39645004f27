"""Class balance after upsampling and origin mix (data/balance.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.balance import (
    class_counts,
    find_class_imbalance,
    find_origin_mix_outliers,
    plot_class_counts,
)


def make_manifest(spec) -> pd.DataFrame:
    """spec: {(split, label, origin, augmented): count}."""
    rows = []
    for (split, label, origin, augmented), count in spec.items():
        for i in range(count):
            parent = f"{split}/{label}/{origin}{i}_source.png" if augmented else ""
            rows.append(
                {
                    "path": f"{split}/{label}/{origin}{i}{'_aug' if augmented else ''}.png",
                    "split": split,
                    "label": label,
                    "origin": origin,
                    "parent": parent,
                    "group": parent,
                }
            )
    return pd.DataFrame(rows)


def upsampled(labels=("kiki", "totoro", "mononoke"), *, internet_share=0.4, valid=20):
    """Every class: 60 frames + internet sketches upsampled to the same share, in train."""
    spec = {}
    for label in labels:
        sketches = round(60 * internet_share / (1 - internet_share))
        spec[("train", label, "frame", False)] = 60
        spec[("train", label, "internet", False)] = sketches // 4
        spec[("train", label, "internet", True)] = sketches - sketches // 4
        spec[("valid", label, "frame", False)] = valid
    return spec


def test_balanced_upsampled_dataset_is_quiet_and_counts_keep_copies_apart():
    manifest = make_manifest(upsampled())
    imbalance = find_class_imbalance(manifest, max_ratio=3.0)
    assert list(imbalance["split"]) == ["train", "valid"]
    assert not imbalance["is_imbalanced"].any()
    assert imbalance["ratio"].tolist() == [1.0, 1.0]
    train = imbalance.set_index("split").loc["train"]
    assert train["augmented"] == 3 * 30 and train["originals"] == 3 * 70
    counts = class_counts(manifest)
    kiki = counts[(counts["split"] == "train") & (counts["label"] == "kiki")]
    by_kind = kiki.set_index(["origin", "augmented"])["images"].to_dict()
    assert by_kind == {
        ("frame", False): 60,
        ("internet", False): 10,
        ("internet", True): 30,
    }
    mix = find_origin_mix_outliers(manifest, max_distance=0.35)
    assert not mix["is_outlier"].any()
    assert mix["distance"].max() == pytest.approx(0.0)


def test_one_class_four_times_larger_is_imbalanced_with_names():
    spec = upsampled()
    spec[("train", "kiki", "frame", False)] = 60 + 3 * 100
    imbalance = find_class_imbalance(make_manifest(spec), max_ratio=3.0).set_index("split")
    train = imbalance.loc["train"]
    assert train["is_imbalanced"]
    assert train["largest"] == "kiki" and train["largest_images"] == 400
    assert train["ratio"] == pytest.approx(4.0)
    assert not imbalance.loc["valid", "is_imbalanced"]


def test_class_missing_from_a_split_has_infinite_ratio_and_is_named():
    spec = upsampled()
    del spec[("valid", "totoro", "frame", False)]
    imbalance = find_class_imbalance(make_manifest(spec), max_ratio=3.0).set_index("split")
    assert math.isinf(imbalance.loc["valid", "ratio"])
    assert imbalance.loc["valid", "missing"] == "totoro"
    assert imbalance.loc["valid", "is_imbalanced"]


def test_class_made_mostly_of_sketches_is_an_origin_outlier():
    spec = upsampled(labels=("kiki", "totoro", "mononoke", "nemo"), internet_share=0.1)
    spec[("train", "nemo", "internet", True)] = 400  # upsampled far beyond the others
    mix = find_origin_mix_outliers(make_manifest(spec), max_distance=0.35)
    outliers = mix[mix["is_outlier"]]
    assert list(outliers["label"]) == ["nemo"]
    row = outliers.iloc[0]
    assert row["main_difference"].startswith("internet ")
    assert row["share_internet"] > 0.8
    assert 0.35 < row["distance"] <= 1.0


def test_plot_is_a_png_with_a_panel_per_split():
    png = plot_class_counts(class_counts(make_manifest(upsampled())))
    assert png.startswith(b"\x89PNG")
    assert len(png) > 5_000


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 50), min_size=2, max_size=5),
    max_ratio=st.floats(1.0, 10.0),
)
def test_ratio_is_largest_over_smallest(counts, max_ratio):
    spec = {("train", f"c{i}", "frame", False): n for i, n in enumerate(counts)}
    row = find_class_imbalance(make_manifest(spec), max_ratio=max_ratio).iloc[0]
    assert row["ratio"] == pytest.approx(max(counts) / min(counts))
    assert row["is_imbalanced"] == (max(counts) / min(counts) > max_ratio)


@settings(max_examples=40, deadline=None)
@given(
    shares=st.lists(st.integers(0, 20), min_size=3, max_size=6),
    scale=st.integers(1, 5),
)
def test_origin_distance_is_zero_for_equal_mixes_and_bounded(shares, scale):
    # Every class has the same origin mix (scaled): distance 0, whatever the class sizes.
    spec = {}
    for k in range(3):
        for i, n in enumerate(shares):
            if n:
                spec[("train", f"c{k}", f"o{i}", False)] = n * (scale if k == 0 else 1)
    if not spec:
        return
    mix = find_origin_mix_outliers(make_manifest(spec), max_distance=0.35)
    assert np.allclose(mix["distance"], 0.0)
    # Giving one class a new origin of its own moves it, never beyond 1.
    spec[("train", "c0", "unseen", False)] = 100
    mix = find_origin_mix_outliers(make_manifest(spec), max_distance=0.35)
    assert mix["distance"].between(0.0, 1.0).all()
    assert mix.iloc[0]["label"] == "c0"


def test_balance_and_origin_findings_name_classes_thresholds_and_carry_a_chart():
    from data.balance import (
        audit_class_balance,
        audit_origin_mix,
        balance_skip_reason,
        origin_mix_skip_reason,
    )

    spec = upsampled(labels=("kiki", "totoro", "mononoke", "nemo"), internet_share=0.1)
    spec[("train", "nemo", "internet", True)] = 400
    manifest = make_manifest(spec)
    assert balance_skip_reason(manifest) == "" and origin_mix_skip_reason(manifest) == ""
    balance = audit_class_balance(manifest, max_ratio=3.0)
    assert not balance.passed and balance.rule == "class-balance" and balance.count == 1
    assert (
        "train: nemo 461 vs kiki 67" in balance.summary and "balance_max_ratio" in balance.summary
    )
    assert next(iter(balance.figures.values())).startswith(b"\x89PNG")
    mix = audit_origin_mix(manifest, max_distance=0.35)
    assert not mix.passed and mix.rule == "origin-mix" and mix.count == 1
    assert "nemo: internet" in mix.summary and "origin_mix_max_distance" in mix.summary
    assert "no origins recorded" in origin_mix_skip_reason(manifest.assign(origin=""))
