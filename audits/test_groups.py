"""Group leakage: given groups, and scenes inferred from chains of similar images, per split."""

import pytest

from data.groups import (
    audit_group_leakage,
    audit_scene_leakage,
    group_skip_reason,
    infer_scenes,
    scene_skip_reason,
)


@pytest.fixture(scope="module")
def inferred_scenes(features, audit_config, candidate_pairs):
    """Scene id per image (chains of near-similar images within a label), inferred once.

    When the scene threshold is at least the duplicate search's candidate threshold, its
    candidate pairs hold every link: they are filtered instead of searching again.
    """
    threshold = 1.0 if candidate_pairs is None else candidate_pairs.attrs["threshold"]
    return infer_scenes(
        features,
        similarity=audit_config.scene_similarity,
        known_pairs=candidate_pairs,
        known_pairs_similarity=threshold,
    )


@pytest.mark.audit_rule("group-leakage")
def test_no_group_crosses_splits(manifest, record_finding):
    reason = group_skip_reason(manifest)
    if reason:
        pytest.skip(reason)
    finding = record_finding(audit_group_leakage(manifest))
    assert finding.passed, finding.summary


@pytest.mark.audit_rule("scene-leakage")
def test_no_inferred_scene_crosses_splits(
    split_pair, features, audit_config, record_finding, request
):
    reason = scene_skip_reason(features, split_pair)
    if reason:
        pytest.skip(reason)
    held_out, reference = split_pair
    scenes = request.getfixturevalue("inferred_scenes")  # after the skip: inferred once
    finding = record_finding(
        audit_scene_leakage(
            features,
            scenes,
            held_out=held_out,
            reference=reference,
            similarity=audit_config.scene_similarity,
        )
    )
    assert finding.passed, finding.summary
