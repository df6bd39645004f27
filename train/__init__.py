"""splitsafe's trainer: ``python -m train``, a fastai recipe gated by the data audits.

Importing this package is cheap; fastai and torch are imported only inside the functions that
train (``train.recipe``, ``train.loaders``, ``train.hardware``, ``train.report``).
"""

from train.config import TrainConfig

__all__ = ["TrainConfig"]
