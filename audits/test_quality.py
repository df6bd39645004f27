"""Image quality: dark, light, flat (background-only), blurry, tiny, odd-aspect images per class."""

import pytest

from data.quality import audit_image_quality


@pytest.mark.audit_rule("image-quality")
def test_no_class_has_too_many_poor_images(features, audit_config, record_finding):
    if not (features["error"] == "").any():
        pytest.skip("no image could be decoded; see the integrity audit")
    finding = record_finding(
        audit_image_quality(
            features,
            thresholds={
                "dark_mean": audit_config.quality_dark_mean,
                "light_mean": audit_config.quality_light_mean,
                "low_information_std": audit_config.quality_low_information_std,
                "blur_sharpness": audit_config.quality_blur_sharpness,
                "min_side": audit_config.quality_min_side,
                "max_aspect": audit_config.quality_max_aspect,
            },
            fail_on=audit_config.quality_fail_on,
            max_share=audit_config.quality_max_share,
        )
    )
    assert finding.passed, finding.summary
