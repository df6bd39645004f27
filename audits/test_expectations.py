"""The dataset's contract as a Great Expectations suite; Data Docs in <report-dir>/data_docs."""

from data.expectations import audit_expectations


def test_dataset_meets_expectations(features, report_dir, audit_config, record_finding):
    finding = record_finding(
        audit_expectations(
            features,
            data_docs_dir=report_dir / "data_docs",
            unique_content=audit_config.fail_on_duplicates_within_split,
            max_examples=audit_config.report_examples,
        )
    )
    assert finding.passed, finding.summary
