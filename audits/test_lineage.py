"""Augmentation lineage: copies stay in their parent's split, and only in allowed splits."""

import pytest

from data.lineage_audit import (
    audit_copies_in_allowed_splits,
    audit_copies_with_parent,
    lineage_skip_reason,
)


@pytest.mark.audit_rule("augmentation-lineage")
def test_augmented_copies_stay_in_their_parents_split(manifest, record_finding):
    reason = lineage_skip_reason(manifest)
    if reason:
        pytest.skip(reason)
    finding = record_finding(audit_copies_with_parent(manifest))
    assert finding.passed, finding.summary


@pytest.mark.audit_rule("augmentation-lineage")
def test_no_augmented_copies_outside_allowed_splits(manifest, audit_config, record_finding):
    reason = lineage_skip_reason(manifest)
    if reason:
        pytest.skip(reason)
    finding = record_finding(
        audit_copies_in_allowed_splits(
            manifest, allowed_splits=audit_config.augmented_allowed_splits
        )
    )
    assert finding.passed, finding.summary
