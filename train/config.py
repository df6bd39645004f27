"""The trainer's settings: one frozen dataclass, every default with its source."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

STATE_NAME = "train-state.json"  # in --out: finished stages and their checkpoints (for --resume)
HISTORY_NAME = "history.csv"  # in --out: every epoch of every stage, with a `stage` column
EXPORT_NAME = "export.pkl"  # in --out: the exported learner (fastai's learn.export)
STAGES_FOLDER = "stages"  # in --out: per-stage histories and weights, the best-epoch checkpoints
REPORT_NAME = "training.html"  # in --report-dir


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; written into the report and the state file.

    Attributes
    ----------
    dataset : Path
        A dataset folder or CSV, as ``data.scan`` reads it; must have ``train`` and ``valid``.
    arch : str
        A torchvision model name (``resnet18``, ``resnet50``, ...) or, when timm is installed,
        a timm model name. Default ``resnet50``: the original project.
    sizes : tuple of int
        Image side per resizing step, in order (progressive resizing). Default (300, 350): the
        original project.
    epochs : tuple of int
        ``(frozen, unfrozen)`` epochs at each size. Default (4, 2).
    batch_size : int or None
        None = the largest batch that fits on the GPU (a quick probe), 32 on the CPU.
    learning_rate : float or None
        Stage-1 maximum learning rate; None = ``lr_find``'s valley suggestion at each size.
        Stage 2 uses fastai ``fine_tune``'s rule: ``slice(lr / 2 / 100, lr / 2)``.
    pretrained : bool
        Start from ImageNet weights (torchvision/timm cache, downloaded when online).
    stage2 : bool
        After the frozen stage at each size, train unfrozen with discriminative learning rates.
    out, report_dir : Path
        Where the model files and ``training.html`` go.
    allow_audit_failures : bool
        Train even when the data audits fail; the report records the failures.
    resume : bool
        Skip the stages that ``out/train-state.json`` lists as finished.
    monitor : str
        What the best-epoch checkpoint watches: ``valid_loss`` (lower is better) or ``accuracy``.
    workers : int or None
        DataLoader worker processes; None = up to 8 on the GPU, 0 on the CPU.
    threads : int or None
        CPU threads for torch's operators (``torch.set_num_threads``); None = torch's default
        (one per physical core). Fewer can be faster on a shared or small machine.
    tta : bool
        Also report accuracy with test-time augmentation (one more pass over valid).
    top_losses : int
        Images in the report's top-losses gallery.
    seed : int
        Random seed for fastai, torch and the DataLoaders.
    """

    dataset: Path
    arch: str = "resnet50"
    sizes: tuple[int, ...] = (300, 350)
    epochs: tuple[int, int] = (4, 2)
    batch_size: int | None = None
    learning_rate: float | None = None
    pretrained: bool = True
    stage2: bool = True
    out: Path = Path("models")
    report_dir: Path = Path("reports")
    allow_audit_failures: bool = False
    resume: bool = False
    monitor: str = "valid_loss"
    workers: int | None = None
    threads: int | None = None
    tta: bool = True
    top_losses: int = 12
    seed: int = 0

    def __post_init__(self):
        if not self.sizes or any(size < 8 for size in self.sizes):
            raise ValueError(f"--sizes {list(self.sizes)}: give one or more image sides >= 8 px")
        if len(self.epochs) != 2 or any(count < 0 for count in self.epochs):
            raise ValueError(
                f"--epochs {list(self.epochs)}: expected two counts >= 0 (frozen, unfrozen)"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"--bs {self.batch_size}: expected 'auto' or a positive integer")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"--lr {self.learning_rate}: expected 'auto' or a positive number")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads {self.threads}: expected a positive integer")
        if self.monitor not in {"valid_loss", "accuracy"}:
            raise ValueError(f"--monitor {self.monitor!r}: expected 'valid_loss' or 'accuracy'")

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """JSON-ready settings (paths as strings, tuples as lists)."""
        values = dataclasses.asdict(self)
        return {
            key: str(value)
            if isinstance(value, Path)
            else list(value)
            if isinstance(value, tuple)
            else value
            for key, value in values.items()
        }


def stage_names(config: TrainConfig) -> list[str]:
    """The recipe's stages in order: ``frozen-<size>`` then ``unfrozen-<size>`` at each size.

    A stage with 0 epochs is left out.
    """
    names = []
    for size in config.sizes:
        if config.epochs[0] > 0:
            names.append(f"frozen-{size}")
        if config.stage2 and config.epochs[1] > 0:
            names.append(f"unfrozen-{size}")
    return names
