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
def inferred_scenes(features, audit_config, request):
    """Scene id per image (chains of near-similar images within a label), inferred once.

    When the scene threshold is at least the near-duplicate one, the session's duplicate
    pairs already hold every link: reuse them instead of searching again.
    """
    reusable = audit_config.scene_similarity >= audit_config.near_duplicate_similarity
    return infer_scenes(
        features,
        similarity=audit_config.scene_similarity,
        known_pairs=request.getfixturevalue("duplicate_pairs") if reusable else None,
        known_pairs_similarity=audit_config.near_duplicate_similarity,
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
