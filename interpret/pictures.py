"""PNG pictures of where a model looks: original | Grad-CAM overlay | guided Grad-CAM.

Panels are composed with Pillow (fast enough for a gallery of dozens) and coloured with a
matplotlib colormap. The display is kept apart from the values: every function takes
arrays and returns PNG bytes or an RGB array.
"""

from __future__ import annotations

import io

import numpy as np

DEFAULT_COLORMAP = "jet"  # the original project's Grad-CAM rendering
DEFAULT_ALPHA = 0.5  # weight of the heat map over the image
CAPTION_HEIGHT = 18  # px of caption strip above each panel


def as_rgb_array(image) -> np.ndarray:
    """PIL image or array (H, W), (H, W, 3) or (H, W, 4) -> uint8 (H, W, 3)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4); got {array.shape}")
    return array[:, :, :3]


def colorize(cam, *, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """Map values in [0, 1], shape (H, W), to uint8 RGB (H, W, 3) with a matplotlib colormap."""
    from matplotlib import colormaps

    values = np.clip(np.asarray(cam, dtype=np.float64), 0.0, 1.0)
    if values.ndim != 2:
        raise ValueError(f"cam must have shape (H, W); got {values.shape}")
    return (colormaps[colormap](values)[:, :, :3] * 255).round().astype(np.uint8)


def overlay(
    image, cam, *, colormap: str = DEFAULT_COLORMAP, alpha: float = DEFAULT_ALPHA
) -> np.ndarray:
    """Alpha-blend a heat map over an image.

    Parameters
    ----------
    image : PIL image or array, (H, W, 3) uint8
    cam : ndarray, shape (h, w), values in [0, 1]
        Resized to the image's size when they differ.
    alpha : float
        Weight of the heat map, in [0, 1].

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    from PIL import Image

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    base = as_rgb_array(image)
    cam = np.asarray(cam, dtype=np.float32)
    if cam.shape != base.shape[:2]:
        resized = Image.fromarray(cam).resize(base.shape[1::-1], Image.Resampling.BILINEAR)
        cam = np.asarray(resized)
    heat = colorize(cam, colormap=colormap).astype(np.float64)
    blended = (1.0 - alpha) * base.astype(np.float64) + alpha * heat
    return blended.round().astype(np.uint8)


def panels_png(panels, captions, *, scale: int = 1) -> bytes:
    """Put RGB panels of one height side by side, each under its caption; return PNG bytes."""
    from PIL import Image, ImageDraw

    arrays = [as_rgb_array(panel) for panel in panels]
    if len(arrays) != len(captions):
        raise ValueError(f"{len(arrays)} panels but {len(captions)} captions")
    height = max(array.shape[0] for array in arrays) * scale
    gap = 4
    width = sum(array.shape[1] * scale for array in arrays) + gap * (len(arrays) - 1)
    canvas = Image.new("RGB", (width, height + CAPTION_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    left = 0
    for array, caption in zip(arrays, captions, strict=True):
        panel = Image.fromarray(array)
        if scale != 1:
            panel = panel.resize(
                (panel.width * scale, panel.height * scale), Image.Resampling.NEAREST
            )
        canvas.paste(panel, (left, CAPTION_HEIGHT))
        draw.text((left + 2, 3), _fit(draw, str(caption), panel.width - 4), fill="black")
        left += panel.width + gap
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def interpretation_png(
    image,
    cam,
    guided_cam=None,
    *,
    caption: str = "",
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = DEFAULT_ALPHA,
) -> bytes:
    """Original | Grad-CAM overlay | guided Grad-CAM, as one PNG.

    Parameters
    ----------
    image : PIL image or array (H, W, 3)
        The image as the model saw it (resized, not normalised).
    cam : ndarray, shape (H, W), in [0, 1]
    guided_cam : ndarray, shape (C, H, W) or (H, W, 3), optional
        Raw guided Grad-CAM gradients (`interpret.guided.guided_gradcam`); omitted panel
        when None.
    caption : str
        Shown above the original, e.g. "actual cat / predicted dog 0.93".
    """
    from interpret.guided import gradients_to_images

    panels = [as_rgb_array(image), overlay(image, cam, colormap=colormap, alpha=alpha)]
    captions = [caption or "image", "Grad-CAM"]
    if guided_cam is not None:
        gradients = np.asarray(guided_cam)
        if gradients.ndim == 3 and gradients.shape[-1] in (1, 3) and gradients.shape[0] > 3:
            gradients = gradients.transpose(2, 0, 1)
        panels.append(gradients_to_images(gradients[None])[0])
        captions.append("guided Grad-CAM")
    return panels_png(panels, captions, scale=_scale_for(panels[0]))


def two_label_png(
    image,
    cam_label1,
    cam_label2,
    *,
    label1: str,
    label2: str,
    probability1: float | None = None,
    probability2: float | None = None,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = DEFAULT_ALPHA,
) -> bytes:
    """One picture: the image, where the model sees ``label1``, where it sees ``label2``.

    The original project's comparison view (e.g. "where is Ghibli, where is Disney").
    Each map is Grad-CAM for that class on the same image.
    """
    first = f"{label1}" + ("" if probability1 is None else f" {probability1:.2f}")
    second = f"{label2}" + ("" if probability2 is None else f" {probability2:.2f}")
    panels = [
        as_rgb_array(image),
        overlay(image, cam_label1, colormap=colormap, alpha=alpha),
        overlay(image, cam_label2, colormap=colormap, alpha=alpha),
    ]
    return panels_png(panels, ["image", first, second], scale=_scale_for(panels[0]))


def _scale_for(array) -> int:
    """Enlarge tiny images (e.g. 28 px) so captions and maps stay readable."""
    return max(1, 128 // max(1, min(array.shape[:2])))


def _fit(draw, text: str, width: int) -> str:
    while text and draw.textlength(text) > width:
        text = text[:-4] + "..." if len(text) > 4 else ""
    return text


def gradcam_pictures(
    model,
    images,
    display_images,
    *,
    targets=None,
    class_names=None,
    layer=None,
    colormap: str = DEFAULT_COLORMAP,
    alpha: float = DEFAULT_ALPHA,
) -> list[bytes]:
    """One call for a gallery: original | Grad-CAM | guided Grad-CAM PNG per image.

    Parameters
    ----------
    model : torch.nn.Module
    images : torch.Tensor, shape (N, C, H, W)
        Normalised model input (e.g. ``torch.stack([preprocess(path) ...])``).
    display_images : sequence of PIL images or arrays (H, W, 3)
        The same images as shown (``preprocess.resize(path)``).
    targets : int or sequence of int, optional
        Classes to explain (e.g. the actual class in a top-losses gallery); predicted
        when omitted.
    class_names : sequence of str, optional
        For the captions ("<class> <probability>").

    Returns
    -------
    list of bytes
        PNG files, one per image, in order.
    """
    from interpret.gradcam import gradcam_with_scores
    from interpret.guided import guided_backprop

    result = gradcam_with_scores(model, images, targets, layer)
    guided = guided_backprop(model, images, result.targets) * result.maps[:, None]
    pictures = []
    for row, display in enumerate(display_images):
        target = int(result.targets[row])
        name = class_names[target] if class_names is not None else str(target)
        caption = f"{name} {float(result.probabilities[row, target]):.2f}"
        pictures.append(
            interpretation_png(
                display,
                result.maps[row],
                guided[row],
                caption=caption,
                colormap=colormap,
                alpha=alpha,
            )
        )
    return pictures
