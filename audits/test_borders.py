"""Border artifacts: a strip or thin line along one side that singles out a class."""

import pytest

from data.border_audit import audit_border_artifacts, border_skip_reason


@pytest.mark.audit_rule("border-artifacts")
def test_no_class_stands_out_by_its_borders(features, audit_config, record_finding):
    reason = border_skip_reason(features)
    if reason:
        pytest.skip(reason)
    finding = record_finding(
        audit_border_artifacts(
            features,
            alpha=audit_config.border_alpha,
            min_share_difference=audit_config.border_min_share_difference,
            max_examples=audit_config.report_examples,
        )
    )
    assert finding.passed, finding.summary
