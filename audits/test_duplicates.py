"""Copies and near-duplicates: across splits (the leak), under two labels, within a split."""

import pytest

from data.duplicate_audit import (
    audit_cross_split_duplicates,
    audit_duplicates_within_splits,
    audit_label_conflicts,
    missing_splits_reason,
)


@pytest.mark.audit_rule("near-duplicates")
def test_no_near_duplicates_across_splits(
    split_pair, features, duplicate_pairs, audit_config, record_finding
):
    query_split, reference_split = split_pair
    reason = missing_splits_reason(features, split_pair)
    if reason:
        pytest.skip(reason)
    finding = record_finding(
        audit_cross_split_duplicates(
            duplicate_pairs,
            query_split=query_split,
            reference_split=reference_split,
            rule=audit_config.near_duplicate_rule(),
            max_examples=audit_config.report_examples,
        )
    )
    assert finding.passed, finding.summary


def test_no_image_under_two_labels(duplicate_pairs, audit_config, record_finding):
    finding = record_finding(
        audit_label_conflicts(
            duplicate_pairs,
            similarity=audit_config.near_duplicate_similarity,
            max_examples=audit_config.report_examples,
        )
    )
    assert finding.passed, finding.summary


def test_no_duplicates_within_a_split(duplicate_pairs, audit_config, record_finding):
    finding = record_finding(
        audit_duplicates_within_splits(
            duplicate_pairs,
            rule=audit_config.near_duplicate_rule(),
            fail=audit_config.fail_on_duplicates_within_split,
            max_examples=audit_config.report_examples,
        )
    )
    assert finding.passed, finding.summary
