"""The split: groups never cross, labels on both sides when possible, copies kept out of valid."""

import os

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.demo import generate_demo
from data.lineage import read_lineage
from data.scan import scan
from data.split import assign_split


def make_manifest(labels, groups, parents=None):
    count = len(labels)
    return pd.DataFrame(
        {
            "path": [f"{label}/img{i}.jpg" for i, label in enumerate(labels)],
            "split": [""] * count,
            "label": labels,
            "group": groups,
            "parent": parents or [""] * count,
            "origin": [""] * count,
            "error": [""] * count,
        }
    )


def effective_groups(manifest):
    return manifest["group"].where(manifest["group"] != "", manifest["path"])


@st.composite
def manifests(draw):
    """Random labels and groups; some groups hold one label, some mix labels, some rows none."""
    count = draw(st.integers(1, 60))
    labels = draw(st.lists(st.sampled_from("abcd"), min_size=count, max_size=count))
    groups = draw(
        st.lists(
            st.sampled_from(["", "g1", "g2", "g3", "g4", "g5", "g6"]),
            min_size=count,
            max_size=count,
        )
    )
    return make_manifest(labels, groups)


@settings(max_examples=80, deadline=None)
@given(manifests(), st.floats(0.05, 0.6), st.integers(0, 3))
def test_no_group_crosses_splits(manifest, valid_pct, seed):
    result = assign_split(manifest, valid_pct=valid_pct, seed=seed)
    assert len(result) == len(manifest)
    assert set(result["split"]) <= {"train", "valid"}
    assert (result.groupby(effective_groups(result))["split"].nunique() == 1).all()
    assert manifest["split"].eq("").all()  # the input is not changed


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcde"), st.integers(1, 12)), min_size=1, max_size=25),
    st.floats(0.05, 0.6),
    st.integers(0, 3),
)
def test_every_label_with_two_groups_is_in_both_splits(groups, valid_pct, seed):
    """Single-label groups (a scene belongs to one movie): possible iff a label has >= 2 groups."""
    labels, group_names = [], []
    for number, (label, size) in enumerate(groups):
        labels += [label] * size
        group_names += [f"{label}/scene-{number}"] * size
    result = assign_split(make_manifest(labels, group_names), valid_pct=valid_pct, seed=seed)
    assert (result.groupby("group")["split"].nunique() == 1).all()
    group_count = result.groupby("label")["group"].nunique()
    sides = result.groupby("label")["split"].nunique()
    for label, count in group_count.items():
        if count >= 2:
            assert sides[label] == 2, (label, result.groupby("group")["split"].first().to_dict())


def test_share_is_close_to_target_and_seeded():
    labels = ["cat"] * 200 + ["dog"] * 100
    groups = [f"cat/s{i // 10}" for i in range(200)] + [f"dog/s{i // 5}" for i in range(100)]
    manifest = make_manifest(labels, groups)
    result = assign_split(manifest, valid_pct=0.2, seed=1)
    share = result.groupby("label")["split"].apply(lambda s: (s == "valid").mean())
    assert share.between(0.15, 0.25).all(), share
    assert (
        result["split"].tolist() == assign_split(manifest, valid_pct=0.2, seed=1)["split"].tolist()
    )
    assert (
        result["split"].tolist() != assign_split(manifest, valid_pct=0.2, seed=7)["split"].tolist()
    )


def test_copies_stay_with_their_source_and_never_in_valid():
    labels = ["cat"] * 14
    groups = [""] * 7 + ["cat/img0.jpg"] * 6 + [""]
    parents = [""] * 7 + ["cat/img0.jpg"] * 6 + [""]
    manifest = make_manifest(labels, groups, parents)
    for seed in range(6):
        result = assign_split(manifest, valid_pct=0.5, seed=seed)
        source_split = result.set_index("path").loc["cat/img0.jpg", "split"]
        copies = result[result["parent"] != ""]
        if source_split == "valid":
            assert copies.empty and len(result.attrs["dropped_augmented"]) == 6
        else:
            assert len(copies) == 6 and (copies["split"] == "train").all()
        kept = assign_split(manifest, valid_pct=0.5, seed=seed, augmented="keep")
        assert kept.groupby(effective_groups(kept))["split"].nunique().max() == 1


def test_bad_options_are_named():
    manifest = make_manifest(["a", "b"], ["", ""])
    with pytest.raises(ValueError, match="valid_pct=1.5"):
        assign_split(manifest, valid_pct=1.5)
    with pytest.raises(ValueError, match="scenes"):
        assign_split(manifest, by="scene")


def test_command_fixes_the_demo_split(tmp_path, capsys):
    from data.__main__ import main

    dataset = generate_demo(tmp_path / "demo", frames_per_scene=4, scenes_per_movie=3)
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    assert main(["split", str(dataset), "--materialize", str(tmp_path / "fixed")]) == 0
    out = capsys.readouterr().out
    assert "valid_share" in out and "sky-castle" in out
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before  # originals untouched
    csv_path = tmp_path / "demo" / "movies-split.csv"
    assert csv_path.is_file()
    for split_manifest in (scan(csv_path), scan(tmp_path / "fixed")):
        assert split_manifest["error"].eq("").all()
        frames = split_manifest[split_manifest["origin"] == "frame"]
        assert (frames.groupby("group")["split"].nunique() == 1).all()
        assert not ((split_manifest["parent"] != "") & (split_manifest["split"] == "valid")).any()
        copies = split_manifest[split_manifest["parent"] != ""]
        assert set(copies["parent"]) <= set(split_manifest["path"])  # parents relocated too
        assert set(split_manifest["label"][split_manifest["split"] == "valid"]) == set(
            split_manifest["label"]
        )
    fixed = scan(tmp_path / "fixed")
    assert set(fixed["split"]) == {"train", "valid"}
    lineage = read_lineage(tmp_path / "fixed")
    assert set(lineage["operation"]) == {"split"}
    first = fixed["path"].iloc[0]
    original = lineage.set_index("path").loc[first, "source"]
    assert os.path.samefile(tmp_path / "fixed" / first, original)  # a hard link by default
