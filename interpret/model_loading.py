"""Load a classifier for interpretation: an exported fastai learner or a whole torch module.

Returns the model in eval mode, its class names, and a `Preprocess` that turns an
image into the normalised tensor the model was trained on (same size, same resize
method, same normalisation statistics as the learner's validation pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

DEFAULT_SIZE = 224  # input side for plain torch models without an ``input_size`` attribute
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's documented statistics
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """Image -> normalised float tensor (3, height, width), as at validation time.

    Attributes
    ----------
    size : tuple of int
        (height, width) the model was trained at.
    method : str
        ``"crop"`` (scale the short side, centre crop: fastai's validation crop),
        ``"squish"`` (stretch to size) or ``"pad"`` (fit the long side, reflect-pad).
    mean, std : tuple of float or None
        Per-channel statistics on the 0-1 scale; None means no normalisation.
    """

    size: tuple[int, int]
    method: str = "crop"
    mean: tuple[float, ...] | None = IMAGENET_MEAN
    std: tuple[float, ...] | None = IMAGENET_STD

    def resize(self, image):
        """Open a path or take a PIL image; return it as RGB at ``size`` (as shown in pictures)."""
        from PIL import Image, ImageOps

        if not isinstance(image, Image.Image):
            with Image.open(image) as opened:
                image = ImageOps.exif_transpose(opened).convert("RGB")
        image = image.convert("RGB")
        height, width = self.size
        if self.method == "squish":
            return image.resize((width, height), Image.Resampling.BILINEAR)
        if self.method == "pad":
            scale = min(width / image.width, height / image.height)
            inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            array = np.asarray(image.resize(inner, Image.Resampling.BILINEAR))
            top, left = (height - inner[1]) // 2, (width - inner[0]) // 2
            padding = ((top, height - inner[1] - top), (left, width - inner[0] - left), (0, 0))
            mode = "reflect" if min(array.shape[:2]) > 1 else "edge"
            return Image.fromarray(np.pad(array, padding, mode=mode))
        return ImageOps.fit(image, (width, height), Image.Resampling.BILINEAR)

    def to_tensor(self, image):
        """RGB PIL image already at ``size`` -> float tensor (3, H, W), normalised."""
        import torch

        tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        if self.mean is not None and self.std is not None:
            mean = torch.tensor(self.mean, dtype=torch.float32)[:, None, None]
            std = torch.tensor(self.std, dtype=torch.float32)[:, None, None]
            tensor = (tensor - mean) / std
        return tensor.contiguous()

    def __call__(self, image):
        return self.to_tensor(self.resize(image))


class LoadedModel(NamedTuple):
    """``(model, class_names, preprocess)``: unpack it like a tuple."""

    model: object
    class_names: list[str]
    preprocess: Preprocess


def load_model(path, *, device=None) -> LoadedModel:
    """Load an exported fastai learner (``.pkl``) or a torch module saved whole (``torch.save``).

    Parameters
    ----------
    path : str or Path
        The file. fastai exports are recognised by loading with
        ``fastai.learner.load_learner``; anything else must unpickle to an ``nn.Module``.
    device : str or torch.device, optional
        Where the model goes; CUDA when available, else the CPU.

    Returns
    -------
    LoadedModel
        ``model`` in eval mode on ``device``; ``class_names`` (the learner's vocabulary,
        a module's ``class_names``/``classes`` attribute, a ``<file>.classes.txt`` beside
        it, else ``class_0 ...``); ``preprocess`` (see `Preprocess`).

    Notes
    -----
    Both formats use pickle, which runs code from the file: load only files you trust.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"model file {path} does not exist (expected an exported "
            "fastai learner .pkl or a torch.save'd nn.Module)"
        )
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    loaded_object = _unpickle(path, device)
    if type(loaded_object).__name__ == "Learner" or hasattr(loaded_object, "dls"):
        loaded = _from_learner(loaded_object, device)
    elif isinstance(loaded_object, torch.nn.Module):
        loaded = _from_module(path, loaded_object, device)
    else:
        raise ValueError(
            f"{path} holds a {type(loaded_object).__name__}, not a fastai Learner or an "
            "nn.Module; export the learner (learn.export(path)) or save the whole model "
            "(torch.save(model, path))"
        )
    loaded.model.to(device).eval()
    return loaded


def _unpickle(path: Path, device):
    import pickle

    import torch

    try:
        import fastai.learner  # noqa: F401  (lets pickle find fastai's classes)
    except ImportError:
        pass
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except (AttributeError, ModuleNotFoundError) as error:
        raise ValueError(
            f"{path}: cannot unpickle the model ({error}); the functions and classes it was "
            "saved with must be importable here"
        ) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise ValueError(
            f"{path}: not an exported fastai learner or a torch.save'd module ({error})"
        ) from None


def _from_learner(learner, device) -> LoadedModel:
    if device.type != "cuda":
        learner.dls.cpu()
        learner.model.float()  # a learner trained with mixed precision may hold half weights
    class_names = [str(name) for name in getattr(learner.dls, "vocab", [])]
    return LoadedModel(learner.model, class_names, _preprocess_from_dls(learner.dls))


def _preprocess_from_dls(dls) -> Preprocess:
    size, method = (DEFAULT_SIZE, DEFAULT_SIZE), "crop"
    mean = std = None
    for transform in list(getattr(dls, "after_item", [])) + list(getattr(dls, "after_batch", [])):
        name = type(transform).__name__
        if getattr(transform, "size", None) is not None and name != "Normalize":
            value = transform.size  # fastai keeps (width, height) (``_process_sz``)
            if np.isscalar(value):
                size = (int(value), int(value))
            else:
                size = (int(value[1]), int(value[0]))
            method = str(getattr(transform, "method", "crop"))
        if name == "Normalize":
            mean = tuple(float(v) for v in np.asarray(transform.mean.cpu()).reshape(-1))
            std = tuple(float(v) for v in np.asarray(transform.std.cpu()).reshape(-1))
    if method not in {"crop", "squish", "pad"}:
        method = "crop"
    return Preprocess(size=size, method=method, mean=mean, std=std)


def _from_module(path: Path, module, device) -> LoadedModel:
    import torch

    size = getattr(module, "input_size", DEFAULT_SIZE)
    size = (int(size), int(size)) if np.isscalar(size) else tuple(int(v) for v in size[-2:])
    names = getattr(module, "class_names", None) or getattr(module, "classes", None)
    sidecar = path.with_name(path.name + ".classes.txt")
    if names is None and sidecar.is_file():
        names = [line.strip() for line in sidecar.read_text().splitlines() if line.strip()]
    if names is None:
        module.eval()
        with torch.no_grad():
            outputs = module(torch.zeros(1, 3, *size, device=device))
        names = [f"class_{index}" for index in range(outputs.shape[-1])]
    return LoadedModel(module, [str(name) for name in names], Preprocess(size=size))
