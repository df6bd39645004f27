"""The model behind the demo: decode an upload safely, classify it, explain it with Grad-CAM.

Two pieces, kept apart so each can be tested on its own:

- :func:`decode_image` turns uploaded bytes into an RGB picture, or raises :class:`UploadError`
  (an HTTP status, a short machine-readable code and a sentence for a person) for empty files,
  files that are not images, truncated images and decompression bombs. It never touches the model,
  so the web app runs it concurrently, outside the model lock.
- :class:`Predictor` loads an exported fastai learner once (through ``interpret.model_loading``)
  and answers :meth:`Predictor.predict` under a lock: the model and the Grad-CAM hooks are shared
  state, so one picture goes through them at a time. The web app calls it from a worker thread,
  never on the event loop.
"""

from __future__ import annotations

import base64
import io
import threading
from dataclasses import dataclass
from pathlib import Path

# 10 MiB: a large phone photo is 3-8 MB; anything bigger is not a demo upload.
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# 40 megapixels: above the largest phone cameras' default output (about 12-24 MP) and below
# PIL's own bomb warning (89,478,485 px); decoded as RGB it is 120 MB.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# The page shows three classes; the API lets a script ask for fewer or more.
DEFAULT_TOP_K = 3
# The overlay is drawn on the picture at the model's input size; a smaller model input (e.g.
# 28-64 px) is enlarged to at least this for display, so the heat map reads on the page.
OVERLAY_MIN_SIDE = 224


class UploadError(Exception):
    """An upload the server refuses, with what the client should be told.

    Parameters
    ----------
    status_code : int
        The HTTP status (400, 413, 415, ...).
    code : str
        A short machine-readable reason, e.g. ``"not_an_image"``.
    message : str
        One sentence for a person: what is wrong, the value, and what to do.
    """

    def __init__(self, status_code: int, code: str, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    name: str = "upload",
    min_side: int | None = None,
):
    """Decode uploaded bytes into an RGB picture, refusing what is unsafe or not a picture.

    Parameters
    ----------
    data : bytes
        The uploaded file's content.
    max_pixels : int, keyword-only
        Largest width × height accepted. The size is read from the file's header before any
        pixel is decoded, so a decompression bomb (a small file that claims a huge picture) is
        refused without allocating its pixels.
    name : str, keyword-only
        The uploaded file's name, used in messages.
    min_side : int, optional, keyword-only
        The model's input side. A JPEG is then decoded at the smallest of 1/1, 1/2, 1/4, 1/8
        scale that keeps both sides at least this long (libjpeg's draft mode): a 24 MP photo for a
        224 px model decodes in a fraction of the time and memory. None decodes at full size.

    Returns
    -------
    PIL.Image.Image
        Mode ``RGB``, EXIF orientation applied, first frame of an animation; transparent pixels
        are composed onto white.

    Raises
    ------
    UploadError
        400 ``empty_file``; 415 ``not_an_image`` (no image format recognised); 413
        ``too_many_pixels`` (a decompression bomb or simply too large); 400 ``corrupt_image``
        (recognised but truncated or damaged).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise UploadError(400, "empty_file", f"{name!r} is empty (0 bytes); choose an image file.")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UploadError(
            415,
            "not_an_image",
            f"{name!r} ({len(data)} bytes) is not an image format this server can read; "
            "upload a JPEG, PNG, GIF, WebP, BMP or TIFF file.",
        ) from None
    except Image.DecompressionBombError as error:
        raise UploadError(
            413, "too_many_pixels", f"{name!r} was refused as a decompression bomb: {error}"
        ) from None
    except (OSError, ValueError, SyntaxError) as error:
        raise UploadError(400, "corrupt_image", f"{name!r} could not be read: {error}.") from None
    width, height = image.size
    if width * height > max_pixels:
        raise UploadError(
            413,
            "too_many_pixels",
            f"{name!r} is {width}×{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,} pixels (a guard against decompression bombs); upload a smaller image.",
        )
    if width == 0 or height == 0:
        raise UploadError(400, "corrupt_image", f"{name!r} has no pixels ({width}×{height}).")
    try:
        image.seek(0)
        if min_side is not None and image.format == "JPEG":
            image.draft("RGB", (min_side, min_side))
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or (
            image.mode == "P" and "transparency" in image.info
        ):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        elif image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            image = _stretch_to_8_bit(image)
        return image.convert("RGB")
    except Image.DecompressionBombError as error:
        raise UploadError(
            413, "too_many_pixels", f"{name!r} was refused as a decompression bomb: {error}"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise UploadError(
            400,
            "corrupt_image",
            f"{name!r} is damaged or truncated and could not be decoded: {error}.",
        ) from None


def _stretch_to_8_bit(image):
    """A 16-bit or float gray picture stretched to 0-255 (its own min and max), mode ``L``."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image.convert("F"), dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) * 255.0 if high > low else np.zeros_like(values)
    return Image.fromarray(scaled.round().astype(np.uint8), mode="L")


@dataclass(frozen=True)
class Prediction:
    """One class and the model's probability for it (0-1)."""

    label: str
    probability: float


@dataclass(frozen=True)
class Explained:
    """What :meth:`Predictor.predict` returns.

    Attributes
    ----------
    predictions : tuple of Prediction
        The top classes, most probable first.
    overlay_png : bytes or None
        A PNG of the Grad-CAM heat map for the top class over the picture as the model saw it
        (after its resize/crop; enlarged to a short side of at least ``OVERLAY_MIN_SIDE``), or
        None when not asked for.
    """

    predictions: tuple[Prediction, ...]
    overlay_png: bytes | None

    def to_json(self) -> dict:
        """The ``POST /predict`` response body (see :mod:`serve.app`)."""
        body = {
            "predictions": [
                {"label": item.label, "probability": item.probability} for item in self.predictions
            ]
        }
        if self.overlay_png is not None:
            body["overlay_png_base64"] = base64.b64encode(self.overlay_png).decode("ascii")
        return body


class Predictor:
    """An exported fastai learner, loaded once, answering one picture at a time.

    Parameters
    ----------
    model_path : str or Path
        A file written by ``learn.export()`` (e.g. ``models/export.pkl``), or a whole
        ``torch.save``'d module (see ``interpret.model_loading.load_model``, which also gives
        the class names and the validation-time resize and normalisation). It is a pickle: load
        only files you made or trust.

    Attributes
    ----------
    model_path : Path
    classes : list of str
        The model's class names, in output order.
    """

    def __init__(self, model_path: str | Path):
        from interpret.model_loading import load_model

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(
                f"model file {str(self.model_path)!r} does not exist; train one with "
                "`python -m train` (it writes models/export.pkl) or pass --model PATH."
            )
        self.model, classes, self.preprocess = load_model(self.model_path)
        self.classes = [str(name) for name in classes]
        self._lock = threading.Lock()

    @property
    def input_side(self) -> int:
        """The longer side, px, of the picture the model takes (its validation resize)."""
        return max(self.preprocess.size)

    def predict(self, image, *, top_k: int = DEFAULT_TOP_K, overlay: bool = True) -> Explained:
        """Classify one picture and, optionally, show where the model looked.

        Parameters
        ----------
        image : PIL.Image.Image
            An RGB picture (see :func:`decode_image`).
        top_k : int, keyword-only
            How many classes to return, at most the number of classes.
        overlay : bool, keyword-only
            Also compute Grad-CAM for the top class and render it as a PNG.

        Returns
        -------
        Explained
        """
        import torch

        from interpret.gradcam import gradcam_with_scores
        from interpret.pictures import overlay as blend_heatmap

        count = max(1, min(int(top_k), len(self.classes)))
        seen = self.preprocess.resize(image)  # the picture at the model's size, as it sees it
        batch = self.preprocess.to_tensor(seen)[None]
        with self._lock:
            if overlay:
                result = gradcam_with_scores(self.model, batch)  # explains the top class
                probabilities = torch.from_numpy(result.probabilities[0])
            else:
                device = next(self.model.parameters()).device
                with torch.no_grad():
                    logits = self.model.eval()(batch.to(device))
                probabilities = torch.softmax(logits.float(), dim=1)[0].cpu()
        values, indices = probabilities.topk(count)
        predictions = tuple(
            Prediction(self.classes[int(index)], round(float(value), 6))
            for value, index in zip(values, indices, strict=True)
        )
        png = None
        if overlay:
            display = enlarge_for_display(seen, min_side=OVERLAY_MIN_SIDE)
            png = encode_png(blend_heatmap(display, result.maps[0]))
        return Explained(predictions=predictions, overlay_png=png)


def enlarge_for_display(image, *, min_side: int):
    """Enlarge a small picture by a whole factor (sharp pixels) to a short side ≥ min_side."""
    from PIL import Image

    factor = -(-min_side // max(1, min(image.size)))  # ceiling division
    if factor <= 1:
        return image
    size = (image.width * factor, image.height * factor)
    return image.resize(size, Image.Resampling.NEAREST)


def encode_png(pixels) -> bytes:
    """uint8 RGB array (H, W, 3) -> PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
