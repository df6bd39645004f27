"""splitsafe's dataset core: scan -> manifest, per-image features, near-duplicate search, tools."""

from data.image_features import features
from data.scan import dataset_root, scan
from data.settings import AuditConfig, load_audit_config

__all__ = ["AuditConfig", "dataset_root", "features", "load_audit_config", "scan"]
