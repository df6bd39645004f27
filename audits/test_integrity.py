"""Integrity: every image file decodes; the inventory of sizes, modes and formats is reported."""

from data.integrity import audit_integrity


def test_every_image_decodes(features, manifest, audit_config, record_finding):
    finding = record_finding(
        audit_integrity(
            features,
            skipped=manifest.attrs.get("skipped", []),
            max_examples=audit_config.report_examples,
        )
    )
    assert finding.passed, finding.summary
