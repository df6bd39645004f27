"""splitsafe's dataset core: scan -> manifest, per-image features, near-duplicate search, tools."""

from data.scan import dataset_root, scan
from data.settings import AuditConfig, load_audit_config

__all__ = ["AuditConfig", "dataset_root", "features", "load_audit_config", "scan"]


def __getattr__(name: str):
    # Lazy: `import data` stays cheap for the CLI's --help and for conftest start-up.
    if name == "features":
        from data.image_features import features

        return features
    raise AttributeError(f"module 'data' has no attribute {name!r}")
