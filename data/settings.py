"""Audit thresholds: one frozen dataclass, its documented defaults, and the loader.

Resolution order (later wins): the defaults below, ``[tool.splitsafe]`` in the
project's pyproject.toml, ``splitsafe.toml`` in the dataset's root, and one-off
``KEY=VALUE`` overrides (``pytest --splitsafe-set``). Pure cores in ``data/`` never
read configuration; the callers (conftest.py, the trainer's gate) pass values in.
"""

from __future__ import annotations

import dataclasses
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from data import neardup

DATASET_CONFIG_NAME = "splitsafe.toml"


@dataclass(frozen=True)
class AuditConfig:
    """Every threshold an audit uses, with where its default came from."""

    # Folder names recognised as splits; each maps to its canonical name.
    split_aliases: dict[str, str] = field(
        default_factory=lambda: {
            "train": "train",
            "training": "train",
            "valid": "valid",
            "val": "valid",
            "validation": "valid",
            "test": "test",
            "testing": "test",
        }
    )
    # Pairs of splits whose overlap is a leak: (held-out split, reference split).
    split_pairs: tuple[tuple[str, str], ...] = (
        ("valid", "train"),
        ("test", "train"),
        ("test", "valid"),
    )

    # --- duplicates: the rule of data.neardup.find_duplicates, calibrated there on 11,600
    # planted copies among 8,000 distractors (benchmarks/results/neardup.md) ---
    near_duplicate_similarity: float = neardup.DEFAULT_SIMILARITY
    near_duplicate_candidate_similarity: float = neardup.DEFAULT_CANDIDATE_SIMILARITY
    near_duplicate_aligned_phash_distance: int = neardup.DEFAULT_ALIGNED_PHASH_DISTANCE
    near_duplicate_confirmed_similarity: float = neardup.DEFAULT_CONFIRMED_SIMILARITY
    near_duplicate_confirming_phash_distance: int = neardup.DEFAULT_CONFIRMING_PHASH_DISTANCE
    near_duplicate_flip: bool = False  # also match horizontal mirror images
    fail_on_duplicates_within_split: bool = False  # within-split copies are reported only
    # --- groups / scenes ---
    # Link between frames of one scene. On the demo split by group, 0.80 chained all 8 scenes of a
    # movie into one (adjusted Rand 0.42 vs the true scenes); 0.90 gives 0.97. simpsons-mnist
    # pairs judged by eye: 0.90-0.95 all the same shot, 0.85-0.90 half.
    scene_similarity: float = 0.90
    # --- augmentation lineage ---
    augmented_allowed_splits: tuple[str, ...] = ("train",)  # original project: only train upsampled
    # --- class balance (after upsampling) ---
    balance_max_ratio: float = 3.0  # largest/smallest class count per split
    origin_mix_max_distance: float = 0.35  # total-variation distance of a class's origin mix
    # --- borders ---
    border_alpha: float = 0.001  # Fisher exact test, one class vs the rest, Bonferroni-corrected
    border_min_share_difference: float = 0.30  # effect-size floor (share with border vs rest)
    # --- metadata shortcuts ---
    metadata_max_gain: float = 0.15  # balanced accuracy above the majority baseline
    metadata_cv_folds: int = 5
    # Metadata the shortcut classifier leaves out; default none (it uses size, aspect, format,
    # mode, file_size, grayscale, brightness, contrast, border profile). A dataset whose classes
    # differ in look by design (each movie its palette) can ignore brightness/contrast/file_size.
    metadata_ignore: tuple[str, ...] = ()
    drift_alpha: float = 0.001  # KS test between splits, reported only
    # --- image quality ---
    quality_dark_mean: float = 16.0  # mean gray level (0-255) below this: very dark / fade to black
    quality_light_mean: float = 240.0  # above this: very light / fade to white
    quality_low_information_std: float = 6.0  # gray std below this: flat, background-only
    quality_blur_sharpness: float = 10.0  # variance of Laplacian (at 128 px) below this: blurry
    quality_min_side: int = 32  # pixels
    quality_max_aspect: float = 3.0  # long side / short side
    # Only flat frames fail by default: sketches on white paper read as "light" and their
    # inverted copies as "dark" (the demo's internet images); those flags warn.
    quality_fail_on: tuple[str, ...] = ("low_information",)
    quality_max_share: float = 0.05  # per class, share of flagged images that fails the audit
    # --- model focus (Grad-CAM) ---
    edge_band: float = 0.10  # outer band, share of each side
    edge_focus_max: float = 0.50  # a uniform map puts 0.36 of its mass in a 10% band
    model_sample_per_class: int = 16
    # --- misc ---
    seed: int = 0
    report_examples: int = 12  # examples shown per rule in messages and the report

    def near_duplicate_rule(self) -> dict:
        """The near-duplicate thresholds as keyword options of ``data.neardup.find_duplicates``."""
        return {
            "similarity": self.near_duplicate_similarity,
            "candidate_similarity": self.near_duplicate_candidate_similarity,
            "aligned_phash_distance": self.near_duplicate_aligned_phash_distance,
            "confirmed_similarity": self.near_duplicate_confirmed_similarity,
            "confirming_phash_distance": self.near_duplicate_confirming_phash_distance,
        }

    def replace(self, **changes) -> AuditConfig:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, value, default):
    """Convert a TOML or command-line value to the type of the default."""
    if isinstance(value, str) and not isinstance(default, str):
        if isinstance(default, bool):
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(f"splitsafe setting {name!r}={value!r}; expected true or false")
            return value.lower() in {"true", "1", "yes"}
        if isinstance(default, tuple):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        try:
            return type(default)(value)
        except ValueError:
            raise ValueError(
                f"splitsafe setting {name!r}={value!r}; expected a {type(default).__name__}"
            ) from None
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return value


def apply_overrides(config: AuditConfig, overrides: dict, *, source: str) -> AuditConfig:
    """Return ``config`` with ``overrides`` applied; unknown keys are an error naming ``source``."""
    known = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(
            f"{source}: unknown splitsafe setting(s) {unknown}; known settings: {sorted(known)}"
        )
    return config.replace(**{k: _coerce(k, v, known[k]) for k, v in overrides.items()})


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None


def load_audit_config(
    *,
    pyproject: Path | None = None,
    dataset_root: Path | None = None,
    overrides: dict | None = None,
) -> AuditConfig:
    """Resolve the effective configuration (defaults < pyproject < dataset < overrides)."""
    config = AuditConfig()
    if pyproject is not None and pyproject.is_file():
        section = read_toml(pyproject).get("tool", {}).get("splitsafe", {})
        config = apply_overrides(config, section, source=f"{pyproject} [tool.splitsafe]")
    if dataset_root is not None and (dataset_root / DATASET_CONFIG_NAME).is_file():
        path = dataset_root / DATASET_CONFIG_NAME
        config = apply_overrides(config, read_toml(path), source=str(path))
    if overrides:
        config = apply_overrides(config, overrides, source="command line")
    return config


def config_as_dict(config: AuditConfig) -> dict:
    return dataclasses.asdict(config)


def copy_dataset_config(source_root: Path, out: Path) -> Path | None:
    """Give a derived dataset (cropped, materialised split) its source's ``splitsafe.toml``.

    The thresholds belong to the data, so they travel with it; an existing file in ``out``
    is kept. Returns the written path, or None when there was nothing to copy.
    """
    source, target = Path(source_root) / DATASET_CONFIG_NAME, Path(out) / DATASET_CONFIG_NAME
    if not source.is_file() or target.exists():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return target
