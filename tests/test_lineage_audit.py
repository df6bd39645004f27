"""Augmentation lineage (data/lineage_audit.py): copies stay with their parent, only in train."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from data.lineage_audit import (
    find_copies_in_held_out_splits,
    find_copies_outside_parent_split,
    has_augmented_copies,
)


def make_manifest(rows) -> pd.DataFrame:
    """rows: (path, split, parent)."""
    return pd.DataFrame(
        {
            "path": [r[0] for r in rows],
            "split": [r[1] for r in rows],
            "label": ["sketch"] * len(rows),
            "parent": [r[2] for r in rows],
            "group": [r[2] or r[0] for r in rows],
            "origin": ["internet"] * len(rows),
        }
    )


CLEAN = [
    ("train/s/a.png", "train", ""),
    ("train/s/a_invert.png", "train", "train/s/a.png"),
    ("train/s/a_noise.png", "train", "train/s/a.png"),
    ("valid/s/b.png", "valid", ""),
]


def test_clean_lineage_has_no_offenders():
    manifest = make_manifest(CLEAN)
    assert has_augmented_copies(manifest)
    assert find_copies_outside_parent_split(manifest).empty
    assert find_copies_in_held_out_splits(manifest, allowed_splits=("train",)).empty


def test_copy_of_a_train_image_in_valid_is_named_by_both_rules():
    manifest = make_manifest([*CLEAN, ("valid/s/a_gray.png", "valid", "train/s/a.png")])
    moved = find_copies_outside_parent_split(manifest)
    assert list(moved["path"]) == ["valid/s/a_gray.png"]
    assert moved.iloc[0]["parent_split"] == "train" and moved.iloc[0]["split"] == "valid"
    held_out = find_copies_in_held_out_splits(manifest, allowed_splits=("train",))
    assert list(held_out["path"]) == ["valid/s/a_gray.png"]


def test_copy_with_its_parent_in_valid_breaks_only_the_allowed_splits_rule():
    manifest = make_manifest([*CLEAN, ("valid/s/b_invert.png", "valid", "valid/s/b.png")])
    assert find_copies_outside_parent_split(manifest).empty
    held_out = find_copies_in_held_out_splits(manifest, allowed_splits=("train",))
    assert list(held_out["path"]) == ["valid/s/b_invert.png"]
    # Configurable: allowing valid silences it.
    assert find_copies_in_held_out_splits(manifest, allowed_splits=("train", "valid")).empty


def test_missing_parent_is_counted_not_reported_and_unsplit_copies_are_fine():
    manifest = make_manifest(
        [("train/s/c_invert.png", "train", "gone.png"), ("s/d_invert.png", "", "s/d.png")]
    )
    moved = find_copies_outside_parent_split(manifest)
    assert moved.empty and moved.attrs["parent_missing"] == 2
    assert find_copies_in_held_out_splits(manifest, allowed_splits=("train",)).empty
    assert not has_augmented_copies(make_manifest(CLEAN[:1]))


@settings(max_examples=40, deadline=None)
@given(
    parents=st.lists(st.sampled_from(["train", "valid", "test"]), min_size=1, max_size=5),
    copies=st.lists(
        st.tuples(st.integers(0, 4), st.sampled_from(["train", "valid", "test"])), max_size=8
    ),
)
def test_offenders_are_exactly_the_copies_that_moved(parents, copies):
    rows = [(f"{split}/s/p{i}.png", split, "") for i, split in enumerate(parents)]
    expected_moved, expected_held_out = set(), set()
    for k, (parent, split) in enumerate(copies):
        parent %= len(parents)
        path = f"{split}/s/p{parent}_copy{k}.png"
        rows.append((path, split, rows[parent][0]))
        if split != parents[parent]:
            expected_moved.add(path)
        if split != "train":
            expected_held_out.add(path)
    manifest = make_manifest(rows)
    assert set(find_copies_outside_parent_split(manifest)["path"]) == expected_moved
    found = find_copies_in_held_out_splits(manifest, allowed_splits=("train",))
    assert set(found["path"]) == expected_held_out


def test_findings_name_the_copy_its_parent_and_the_setting():
    from data.lineage_audit import (
        audit_copies_in_allowed_splits,
        audit_copies_with_parent,
        lineage_skip_reason,
    )

    manifest = make_manifest([*CLEAN, ("valid/s/a_gray.png", "valid", "train/s/a.png")])
    assert lineage_skip_reason(manifest) == ""
    moved = audit_copies_with_parent(manifest)
    assert not moved.passed and moved.count == 1 and moved.rule == "augmentation-lineage"
    assert "valid/s/a_gray.png (parent train/s/a.png in train)" in moved.summary
    held_out = audit_copies_in_allowed_splits(manifest, allowed_splits=("train",))
    assert "1 in valid" in held_out.summary and "augmented_allowed_splits" in held_out.summary
    assert audit_copies_with_parent(make_manifest(CLEAN)).passed
    assert "no augmented copies" in lineage_skip_reason(make_manifest(CLEAN[:1]))
