"""Guided backpropagation (Springenberg et al., 2015) and guided Grad-CAM (Selvaraju et al., 2017).

Guided backprop is the gradient of a class score with respect to the input, where every
ReLU passes back only positive gradients at positions where its input was positive.
It is done with forward hooks on the ``nn.ReLU`` modules that wrap their output in
`GuidedRelu`, whose backward clamps the incoming gradient at zero; the ReLU's own
backward then applies the ``input > 0`` mask. This works for in-place ReLUs (fastai and
torchvision use them) because ``relu(x) > 0`` exactly where ``x > 0``. ReLUs called as
functions (``F.relu``) are not guided; every fastai and torchvision CNN uses modules.
"""

from __future__ import annotations

import numpy as np

from interpret.gradcam import DEFAULT_BATCH_SIZE, _as_targets, _model_device, gradcam_with_scores


def _guided_relu_function():
    import torch

    class GuidedRelu(torch.autograd.Function):
        """Identity on a ReLU's (non-negative) output; backward keeps positive gradients."""

        @staticmethod
        def forward(context, output):
            return output.clone()

        @staticmethod
        def backward(context, gradient):
            return gradient.clamp(min=0)

    return GuidedRelu


def guided_backprop(model, images, targets=None, *, batch_size: int = DEFAULT_BATCH_SIZE):
    """Guided-backprop gradients of the target class score with respect to the input.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning (N, K) logits; its ReLUs must be ``nn.ReLU`` modules.
        Its train/eval mode is restored and every hook removed on return.
    images : torch.Tensor
        (N, C, H, W) normalised input, or one (C, H, W) image.
    targets : int, sequence of int or tensor of shape (N,), optional
        The class explained; the predicted class when omitted.
    batch_size : int
        Images per forward/backward pass.

    Returns
    -------
    ndarray of float32, shape (N, C, H, W)
        Raw gradients (any sign and scale); see `gradients_to_images` for display.
    """
    import torch
    from torch import nn

    if images.dim() == 3:
        images = images.unsqueeze(0)
    count = images.shape[0]
    target_tensor = _as_targets(targets, count)
    device = _model_device(model)
    guided_relu = _guided_relu_function()

    def guide(module, inputs, output):
        return guided_relu.apply(output)

    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(f"{type(model).__name__} has no nn.ReLU module to guide")
    handles = [relu.register_forward_hook(guide) for relu in relus]
    was_training = model.training
    results = []
    try:
        model.eval()
        for start in range(0, count, batch_size):
            with torch.inference_mode(False), torch.enable_grad():
                batch = images[start : start + batch_size].detach().to(device).clone()
                batch.requires_grad_(True)
                logits = model(batch)
                if target_tensor is None:
                    chosen = logits.detach().argmax(dim=1)
                else:
                    chosen = target_tensor[start : start + batch_size].to(device)
                score = logits.gather(1, chosen[:, None]).sum()
                (gradient,) = torch.autograd.grad(score, batch)
            results.append(gradient.float().cpu().numpy())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not results:
        return np.zeros(tuple(images.shape), np.float32)
    return np.concatenate(results)


def guided_gradcam(
    model, images, targets=None, layer=None, *, batch_size: int = DEFAULT_BATCH_SIZE
):
    """Guided Grad-CAM: guided backprop times the upsampled Grad-CAM map, per pixel.

    Both are computed for the same classes (the predicted ones when ``targets`` is None).

    Returns
    -------
    guided_cam : ndarray of float32, shape (N, C, H, W)
        ``guided_backprop * gradcam[:, None]``.
    cams : ndarray of float32, shape (N, H, W)
        The Grad-CAM maps in [0, 1].
    targets : ndarray of int64, shape (N,)
        The explained classes.
    """
    result = gradcam_with_scores(model, images, targets, layer, batch_size=batch_size)
    gradients = guided_backprop(model, images, result.targets, batch_size=batch_size)
    return gradients * result.maps[:, None], result.maps, result.targets


def gradients_to_images(gradients) -> np.ndarray:
    """Input-space gradients to displayable RGB images (the usual Grad-CAM paper rendering).

    Each image is centred on its mean, scaled to 0.1 per standard deviation around 0.5
    and clipped, so positive evidence is bright and negative dark.

    Parameters
    ----------
    gradients : ndarray, shape (N, C, H, W), C in {1, 3}

    Returns
    -------
    ndarray of uint8, shape (N, H, W, 3)
    """
    values = np.asarray(gradients, dtype=np.float64)
    if values.ndim != 4:
        raise ValueError(f"gradients must have shape (N, C, H, W); got {values.shape}")
    mean = values.mean(axis=(1, 2, 3), keepdims=True)
    spread = values.std(axis=(1, 2, 3), keepdims=True)
    scaled = np.clip((values - mean) / np.maximum(spread, 1e-12) * 0.1 + 0.5, 0.0, 1.0)
    if scaled.shape[1] == 1:
        scaled = np.repeat(scaled, 3, axis=1)
    return (scaled.transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
