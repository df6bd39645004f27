"""Class balance after upsampling (per split), and each class's mix of origins."""

import pytest

from data.balance import (
    audit_class_balance,
    audit_origin_mix,
    balance_skip_reason,
    origin_mix_skip_reason,
)


@pytest.mark.audit_rule("class-balance")
def test_classes_are_balanced_in_each_split(manifest, audit_config, record_finding):
    reason = balance_skip_reason(manifest)
    if reason:
        pytest.skip(reason)
    finding = record_finding(
        audit_class_balance(manifest, max_ratio=audit_config.balance_max_ratio)
    )
    assert finding.passed, finding.summary


@pytest.mark.audit_rule("origin-mix")
def test_each_class_has_a_similar_mix_of_origins(manifest, audit_config, record_finding):
    reason = origin_mix_skip_reason(manifest)
    if reason:
        pytest.skip(reason)
    finding = record_finding(
        audit_origin_mix(manifest, max_distance=audit_config.origin_mix_max_distance)
    )
    assert finding.passed, finding.summary
