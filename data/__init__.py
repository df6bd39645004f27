"""splitsafe's dataset core: scan -> manifest, per-image features, near-duplicate search, tools."""

import pandas as pd

# File names that are not valid UTF-8 arrive as str with surrogate escapes; pandas 3's default
# Arrow-backed strings reject them, Python-backed strings keep them, so paths survive end to end.
pd.set_option("mode.string_storage", "python")

from data.scan import dataset_root, scan  # noqa: E402
from data.settings import AuditConfig, load_audit_config  # noqa: E402

__all__ = ["AuditConfig", "dataset_root", "features", "load_audit_config", "scan"]


def __getattr__(name: str):
    # Lazy: `import data` stays cheap for the CLI's --help and for conftest start-up.
    if name == "features":
        from data.image_features import features

        return features
    raise AttributeError(f"module 'data' has no attribute {name!r}")
