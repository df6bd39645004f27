"""Model focus: the trained model does not classify by the image's frame (Grad-CAM edge focus).

Needs ``--model PATH``. On ``model_sample_per_class`` held-out images per class, Grad-CAM for
the image's own class; a class whose mean share of CAM mass in the outer ``edge_band``
exceeds ``edge_focus_max`` fails (the original project's model read one movie's border lines).
"""

import pytest

from interpret.model_focus import audit_model_focus


@pytest.mark.model
@pytest.mark.audit_rule("model-focus")
def test_model_does_not_look_at_image_edges(model_path, audit_config, request, record_finding):
    if model_path is None:
        pytest.skip("needs --model PATH (an exported fastai learner) for the model-focus audit")
    manifest = request.getfixturevalue("manifest")
    finding = record_finding(
        audit_model_focus(
            model_path,
            manifest,
            request.getfixturevalue("dataset_root"),
            band=audit_config.edge_band,
            threshold=audit_config.edge_focus_max,
            per_class=audit_config.model_sample_per_class,
            seed=audit_config.seed,
            examples=audit_config.report_examples,
        )
    )
    assert finding.passed, finding.summary
