"""Group leakage and inferred scenes (data/groups.py) on synthetic manifests and descriptors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.groups import find_groups_across_splits, find_scenes_across_splits, infer_scenes

DIMENSION = 256


def unit(vector):
    return (vector / np.linalg.norm(vector)).astype(np.float16)


def scene_chain(rng, frames: int, *, step: float = 0.3) -> list[np.ndarray]:
    """Descriptors of consecutive frames: each a small random step from the previous one.

    With step 0.3 neighbours have |cos| ~ 0.96, while frames 20 apart fall to ~ 0.6: only the
    chain links the ends.
    """
    current = rng.standard_normal(DIMENSION)
    current /= np.linalg.norm(current)
    chain = []
    for _ in range(frames):
        chain.append(unit(current))
        step_vector = rng.standard_normal(DIMENSION)
        current = current + step * step_vector / np.linalg.norm(step_vector)
        current /= np.linalg.norm(current)
    return chain


def make_features(scene_splits: list[list[str]], *, seed: int = 0, label_of=None) -> pd.DataFrame:
    """One chain of frames per scene; ``scene_splits[k][i]`` is the split of frame i of scene k."""
    rng = np.random.default_rng(seed)
    rows = []
    for scene, splits in enumerate(scene_splits):
        label = label_of(scene) if label_of else f"class{scene % 2}"
        for frame, (split, descriptor) in enumerate(
            zip(splits, scene_chain(rng, len(splits)), strict=True)
        ):
            rows.append(
                {
                    "path": f"{split}/{label}/scene{scene:02d}_{frame:03d}.jpg",
                    "split": split,
                    "label": label,
                    "group": "",
                    "parent": "",
                    "origin": "",
                    "error": "",
                    "descriptor": descriptor,
                    "true_scene": scene,
                }
            )
    return pd.DataFrame(rows)


# --- given groups ---------------------------------------------------------------------------


def test_group_in_two_splits_is_found_with_paths_from_each_split():
    manifest = pd.DataFrame(
        {
            "path": ["train/a/1.jpg", "train/a/2.jpg", "valid/a/3.jpg", "valid/b/4.jpg", "x.jpg"],
            "split": ["train", "train", "valid", "valid", "train"],
            "label": ["a", "a", "a", "b", "b"],
            "group": ["video1", "video1", "video1", "video2", ""],
        }
    )
    leaks = find_groups_across_splits(manifest)
    assert list(leaks["group"]) == ["video1"]
    row = leaks.iloc[0]
    assert row["splits"] == "train, valid"
    assert row["counts"] == "train: 2, valid: 1"
    assert row["images"] == 3
    assert row["path_a"].startswith("train/") and row["path_b"] == "valid/a/3.jpg"


def test_groups_each_within_one_split_and_empty_groups_are_quiet():
    manifest = pd.DataFrame(
        {
            "path": ["a", "b", "c", "d"],
            "split": ["train", "train", "valid", "test"],
            "label": ["x"] * 4,
            "group": ["g1", "g1", "g2", ""],
        }
    )
    leaks = find_groups_across_splits(manifest)
    assert leaks.empty
    assert list(leaks.columns) == ["group", "splits", "counts", "images", "path_a", "path_b"]


# --- inferred scenes ------------------------------------------------------------------------


def test_a_chain_of_frames_is_one_scene_even_when_its_ends_differ():
    features = make_features([["train"] * 25])
    vectors = np.stack(features["descriptor"]).astype(np.float32)
    assert abs(float(vectors[0] @ vectors[-1])) < 0.8  # ends alone would not link
    scenes = infer_scenes(features, similarity=0.8)
    assert scenes.nunique() == 1
    assert scenes.index.equals(features.index) and scenes.name == "scene"


def test_independent_scenes_stay_apart_and_labels_never_share_a_scene():
    features = make_features([["train"] * 10 for _ in range(6)], label_of=lambda s: "same")
    scenes = infer_scenes(features, similarity=0.8)
    # The inferred partition equals the planted one.
    assert pd.crosstab(scenes, features["true_scene"]).astype(bool).sum().eq(1).all()
    assert scenes.nunique() == 6
    # The same descriptors under another label form separate scenes.
    twin = features.assign(label="other", path=features["path"] + ".copy")
    both = pd.concat([features, twin], ignore_index=True)
    both_scenes = infer_scenes(both, similarity=0.8)
    assert both_scenes.nunique() == 12
    assert not set(both_scenes[:60]) & set(both_scenes[60:])


def test_inverted_copy_joins_its_scene_and_errors_and_flat_images_are_alone():
    features = make_features([["train"] * 5])
    inverted = features.iloc[[0]].assign(
        path="train/class0/inverted.jpg", descriptor=[-features["descriptor"][0]]
    )
    broken = features.iloc[[1]].assign(path="train/class0/broken.jpg", error="cannot decode")
    flat = features.iloc[[2]].assign(
        path="train/class0/flat.jpg", descriptor=[np.zeros(DIMENSION, dtype=np.float16)]
    )
    features = pd.concat([features, inverted, broken, flat], ignore_index=True)
    scenes = infer_scenes(features, similarity=0.8)
    assert scenes[5] == scenes[0]
    assert (scenes == scenes[6]).sum() == 1
    assert (scenes == scenes[7]).sum() == 1


def test_infer_scenes_rejects_a_similarity_outside_zero_one():
    with pytest.raises(ValueError, match="scene_similarity"):
        infer_scenes(make_features([["train"] * 2]), similarity=1.5)


def test_scene_split_between_train_and_valid_is_found_once_per_scene():
    splits = [["train", "train", "valid", "train", "valid", "train"], ["train"] * 6, ["valid"] * 6]
    features = make_features(splits)
    scenes = infer_scenes(features, similarity=0.8)
    leaks = find_scenes_across_splits(features, scenes, held_out="valid", reference="train")
    assert len(leaks) == 1
    row = leaks.iloc[0]
    assert row["images"] == 6 and row["held_out_images"] == 2 and row["reference_images"] == 4
    assert row["label"] == "class0"
    assert row["path_a"].startswith("valid/class0/scene00")
    assert row["path_b"].startswith("train/class0/scene00")
    assert leaks.attrs["held_out_images"] == 2
    # The other pair is clean: no scene has members in test.
    assert find_scenes_across_splits(features, scenes, held_out="test", reference="train").empty


@settings(max_examples=25, deadline=None)
@given(
    scene_splits=st.lists(
        st.tuples(st.sampled_from(["train", "valid", "test"]), st.integers(2, 8)),
        min_size=1,
        max_size=6,
    ),
    moved=st.integers(0, 5),
)
def test_scenes_kept_whole_are_quiet_and_moving_one_frame_is_found(scene_splits, moved):
    features = make_features([[split] * frames for split, frames in scene_splits])
    scenes = infer_scenes(features, similarity=0.8)
    for held_out, reference in [("valid", "train"), ("test", "train"), ("test", "valid")]:
        assert find_scenes_across_splits(
            features, scenes, held_out=held_out, reference=reference
        ).empty
    # Move one frame of one scene to another split: exactly that scene leaks.
    scene = moved % len(scene_splits)
    position = features.index[features["true_scene"] == scene][-1]
    original = features.loc[position, "split"]
    other = "valid" if original == "train" else "train"
    features.loc[position, "split"] = other
    held_out = "test" if original == "test" else "valid"
    reference = "train"
    leaks = find_scenes_across_splits(features, scenes, held_out=held_out, reference=reference)
    assert list(leaks["scene"]) == [scenes[position]]


# --- Finding builders -----------------------------------------------------------------------


def test_group_finding_names_group_paths_and_fix_and_skips_without_groups():
    from data.groups import audit_group_leakage, group_skip_reason

    manifest = pd.DataFrame(
        {
            "path": ["train/a/1.jpg", "valid/a/2.jpg", "train/b/3.jpg"],
            "split": ["train", "valid", "train"],
            "label": ["a", "a", "b"],
            "group": ["scene-7", "scene-7", "scene-8"],
        }
    )
    assert group_skip_reason(manifest) == ""
    finding = audit_group_leakage(manifest)
    assert not finding.passed and finding.rule == "group-leakage" and finding.count == 1
    assert "'scene-7'" in finding.summary and "valid/a/2.jpg" in finding.summary
    assert "python -m data split DATASET --by group" in finding.summary
    clean = manifest.assign(split="train")
    assert "1 split" in group_skip_reason(clean)
    assert "no groups given" in group_skip_reason(manifest.assign(group=""))


def test_scene_finding_counts_held_out_images_and_quotes_the_setting():
    from data.groups import audit_scene_leakage, scene_skip_reason

    features = make_features([["train", "valid", "train", "valid"], ["train"] * 3])
    assert scene_skip_reason(features, ("valid", "train")) == ""
    assert "'test'" in scene_skip_reason(features, ("test", "train"))
    assert "given group" in scene_skip_reason(features.assign(group="g"), ("valid", "train"))
    scenes = infer_scenes(features, similarity=0.8)
    finding = audit_scene_leakage(
        features, scenes, held_out="valid", reference="train", similarity=0.8
    )
    assert not finding.passed and finding.rule == "scene-leakage"
    assert finding.count == 2 and finding.details["leaking_scenes"] == 1
    assert "scene_similarity=0.80" in finding.summary and "--by scene" in finding.summary
    assert "largest scene: 4 of 4 class0 images" in finding.summary
    assert {"path_a", "path_b"} <= set(finding.examples.columns)


def test_scenes_from_known_pairs_equal_the_searched_scenes():
    features = make_features([["train"] * 12, ["valid"] * 8, ["train"] * 5], label_of=lambda s: "x")
    features.loc[3, "error"] = "cannot decode"
    # Every pair at |cos| >= 0.8, as the duplicate audits' pair table holds them.
    vectors = np.stack(features["descriptor"]).astype(np.float32)
    first, second = np.nonzero(np.triu(np.abs(vectors @ vectors.T) >= 0.8, k=1))
    pairs = pd.DataFrame(
        {
            "path_a": features["path"].to_numpy()[first],
            "path_b": features["path"].to_numpy()[second],
            "similarity": np.abs(np.einsum("ij,ij->i", vectors[first], vectors[second])),
        }
    )
    searched = infer_scenes(features, similarity=0.85)
    reused = infer_scenes(features, similarity=0.85, known_pairs=pairs, known_pairs_similarity=0.8)
    assert pd.crosstab(searched, reused).astype(bool).sum(axis=1).eq(1).all()
    assert searched.nunique() == reused.nunique() > 3
    assert reused.attrs["links"] == searched.attrs["links"]
    # Below the pairs' threshold they cannot hold every link: the search runs instead.
    looser = infer_scenes(features, similarity=0.5, known_pairs=pairs.iloc[:0])
    assert looser.attrs["links"] > 0


def test_scenes_from_the_duplicate_search_candidates_equal_the_searched_scenes():
    from data.duplicate_audit import find_duplicate_pairs

    features = make_features([["train"] * 10, ["valid"] * 6, ["train", "test"] * 4, ["test"] * 5])
    features.loc[4, "error"] = "cannot decode"
    # Scene 2 again under the other label: similar descriptors, but scenes never cross labels.
    twin = features.loc[features["true_scene"] == 2].assign(
        label="class1", path=lambda frame: frame["path"].str.replace("class0", "class1")
    )
    features = pd.concat([features, twin], ignore_index=True)
    features = features.assign(
        sha256=features["path"], pixel_digest=features["path"], phash=0, phash_inverted=-1
    )
    _, candidates = find_duplicate_pairs(
        features, return_candidates=True, candidate_similarity=0.8, confirmed_similarity=None
    )
    assert candidates.attrs["threshold"] == 0.8 and len(candidates) > 0
    assert (candidates["similarity"] >= 0.8 - 1e-6).all()
    searched = infer_scenes(features, similarity=0.85)
    reused = infer_scenes(
        features,
        similarity=0.85,
        known_pairs=candidates,
        known_pairs_similarity=candidates.attrs["threshold"],
    )
    assert reused.attrs["links"] == searched.attrs["links"] > 0
    assert searched.groupby(reused).nunique().eq(1).all()
    assert reused.groupby(searched).nunique().eq(1).all()
    labels_per_scene = features["label"].groupby(reused.to_numpy()).nunique()
    assert labels_per_scene.eq(1).all() and reused.nunique() > 4
