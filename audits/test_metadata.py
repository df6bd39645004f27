"""Metadata shortcuts (the label predicted from metadata alone) and property drift by split."""

import pytest

from data.drift import audit_property_drift, drift_skip_reason
from data.metadata_audit import (
    audit_metadata_shortcut,
    metadata_columns,
    metadata_shortcut_skip_reason,
)


@pytest.mark.audit_rule("metadata-shortcut")
def test_metadata_does_not_predict_the_label(features, audit_config, record_finding):
    reason = metadata_shortcut_skip_reason(features, folds=audit_config.metadata_cv_folds)
    if reason:
        pytest.skip(reason)
    finding = record_finding(
        audit_metadata_shortcut(
            features,
            max_gain=audit_config.metadata_max_gain,
            folds=audit_config.metadata_cv_folds,
            seed=audit_config.seed,
            columns=metadata_columns(ignore=audit_config.metadata_ignore),
        )
    )
    assert finding.passed, finding.summary


@pytest.mark.audit_rule("property-drift")
def test_image_properties_alike_across_splits(features, audit_config, record_finding):
    reason = drift_skip_reason(features, audit_config.split_pairs)
    if reason:
        pytest.skip(reason)
    finding = record_finding(
        audit_property_drift(
            features,
            pairs=audit_config.split_pairs,
            alpha=audit_config.drift_alpha,
            seed=audit_config.seed,
        )
    )
    assert finding.passed, finding.summary
