"""Batched Grad-CAM (Selvaraju et al., 2017) with plain forward hooks.

One forward pass per batch; the activations of the chosen layer are cut from the
graph and made a leaf, so the backward pass only runs through the head (the layers
after the chosen one), and the backbone runs without building a graph at all. Every
hook is removed and the model's train/eval mode restored before returning, even on
error, so repeated calls do not grow memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BATCH_SIZE = 64  # images per forward pass; bounds memory, large enough for speed


@dataclass(frozen=True)
class GradcamResult:
    """Grad-CAM maps with the scores they explain.

    Attributes
    ----------
    maps : ndarray of float32, shape (N, H, W)
        Class activation maps at image resolution, each divided by its maximum, in [0, 1]
        (all zeros when the class has no positive evidence anywhere).
    targets : ndarray of int64, shape (N,)
        The class index each map explains (predicted or given).
    probabilities : ndarray of float32, shape (N, K)
        Softmax of the model's outputs.
    """

    maps: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray


def find_default_layer(model, example_images=None):
    """Return the module whose output Grad-CAM uses by default: the last convolutional block.

    Parameters
    ----------
    model : torch.nn.Module
        A fastai ``vision_learner`` model (``model[0]`` is the body: its last block,
        ``model[0][-1]``), a torchvision ResNet (``layer4``), or any CNN.
    example_images : torch.Tensor, optional
        (N, C, H, W) input for the dry forward used on generic models; a single
        3x64x64 zero image on the model's device when omitted.

    Returns
    -------
    torch.nn.Module
        For generic models, the module that ran last among those whose output is 4-D with
        more than one spatial position (so a global pooling layer is never chosen).
    """
    import torch
    from torch import nn

    if isinstance(model, nn.Sequential) and len(model) >= 2 and isinstance(model[0], nn.Sequential):
        return model[0][-1]  # fastai vision_learner: Sequential(body, head)
    if isinstance(getattr(model, "layer4", None), nn.Module):
        return model.layer4  # torchvision ResNet / ResNeXt / Wide ResNet
    device = _model_device(model)
    if example_images is None:
        example_images = torch.zeros(1, 3, 64, 64, device=device)
    candidates = []

    def remember(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[2:].numel() > 1:
            candidates.append(module)

    handles = [m.register_forward_hook(remember) for m in model.modules() if m is not model]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_images[:1].to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not candidates:
        raise ValueError(
            f"{type(model).__name__} has no layer with a 4-D output larger than 1x1; "
            "Grad-CAM needs a convolutional layer: pass layer=<module>"
        )
    return candidates[-1]


def gradcam(model, images, targets=None, layer=None, *, batch_size: int = DEFAULT_BATCH_SIZE):
    """Grad-CAM maps for a batch of images, at image resolution.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits of shape (N, K). Its train/eval mode is restored.
    images : torch.Tensor
        (N, C, H, W) normalised input (any device; moved to the model's device), or one
        (C, H, W) image.
    targets : int, sequence of int or tensor of shape (N,), optional
        The class each map explains; the predicted class when omitted.
    layer : torch.nn.Module, optional
        The layer whose activations and gradients are used; see `find_default_layer`.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    ndarray of float32, shape (N, H, W)
        ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the spatial mean of the gradient of
        the target logit, upsampled bilinearly to (H, W) and divided by its maximum: in
        [0, 1]; all zeros where the map has no positive value.
    """
    return gradcam_with_scores(model, images, targets, layer, batch_size=batch_size).maps


def gradcam_with_scores(
    model, images, targets=None, layer=None, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> GradcamResult:
    """Like `gradcam`, also returning the explained classes and the probabilities."""
    import torch

    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W); got {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    count = images.shape[0]
    target_tensor = _as_targets(targets, count)
    if layer is None:
        layer = find_default_layer(model, images[:1])
    maps, chosen, probabilities = [], [], []
    for start in range(0, count, batch_size):
        batch_targets = None if target_tensor is None else target_tensor[start : start + batch_size]
        batch = _gradcam_batch(model, layer, images[start : start + batch_size], batch_targets)
        maps.append(batch[0])
        chosen.append(batch[1])
        probabilities.append(batch[2])
    return GradcamResult(
        maps=np.concatenate(maps) if maps else np.zeros((0, *images.shape[2:]), np.float32),
        targets=np.concatenate(chosen) if chosen else np.zeros(0, np.int64),
        probabilities=np.concatenate(probabilities) if probabilities else np.zeros((0, 0)),
    )


def _gradcam_batch(model, layer, images, targets):
    import torch
    import torch.nn.functional as F

    device = _model_device(model)
    images = images.to(device)
    captured = []

    def capture(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(f"Grad-CAM layer {type(module).__name__} must return a tensor")
        # Cut the graph here: the body before this layer ran under no_grad; from here on
        # autograd records, starting from a leaf we can differentiate against.
        torch.set_grad_enabled(True)
        activation = output.detach().requires_grad_(True)
        captured.append(activation)
        return activation

    handle = layer.register_forward_hook(capture)
    was_training = model.training
    try:
        model.eval()
        # no_grad restores the grad mode on exit, whatever the hook set; inference_mode(False)
        # lets a caller inside torch.inference_mode() get maps too
        with torch.inference_mode(False), torch.no_grad():
            logits = model(images)
            if len(captured) != 1:
                raise ValueError(
                    f"Grad-CAM layer {type(layer).__name__} ran {len(captured)} times in one "
                    "forward pass; choose a layer that runs exactly once"
                )
            if logits.dim() != 2:
                raise ValueError(f"model output must be (N, K) logits; got {tuple(logits.shape)}")
            if targets is None:
                targets = logits.detach().argmax(dim=1)
            targets = targets.to(device)
            if int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]:
                raise ValueError(
                    f"targets must be class indices in [0, {logits.shape[1] - 1}]; "
                    f"got values from {int(targets.min())} to {int(targets.max())}"
                )
            activation = captured[0]
            score = logits.gather(1, targets[:, None]).sum()
            (gradient,) = torch.autograd.grad(score, activation)
            weights = gradient.mean(dim=(2, 3), keepdim=True)
            cam = torch.relu((weights * activation.detach()).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)
            cam = cam[:, 0].clamp_(min=0)
            peak = cam.flatten(1).amax(dim=1).clamp(min=torch.finfo(cam.dtype).tiny)
            cam = cam / peak[:, None, None]
            probabilities = torch.softmax(logits.detach().float(), dim=1)
            return (
                cam.float().cpu().numpy(),
                targets.cpu().numpy().astype(np.int64),
                probabilities.cpu().numpy(),
            )
    finally:
        handle.remove()
        captured.clear()
        model.train(was_training)


def _as_targets(targets, count: int):
    import torch

    if targets is None:
        return None
    if isinstance(targets, int | np.integer):
        return torch.full((count,), int(targets), dtype=torch.long)
    tensor = torch.as_tensor(np.asarray(targets), dtype=torch.long).reshape(-1)
    if tensor.numel() != count:
        raise ValueError(f"targets has {tensor.numel()} entries for {count} images")
    return tensor


def _model_device(model):
    import torch

    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def find_layer_with_resolution(model, example_images, *, min_side: int = 4):
    """The deepest block whose output is at least ``min_side`` on each side for these images.

    Grad-CAM at a 2x2 layer cannot say "edge" or "centre" (bilinear upsampling of a 2x2
    map puts exactly the uniform share in any symmetric band), so small inputs need an
    earlier block. Candidates are the body's blocks (fastai: ``model[0]``'s children;
    torchvision ResNet: ``layer1`` to ``layer4``), else every module.

    Returns
    -------
    layer : torch.nn.Module
    spatial_size : tuple of int
        (h, w) of its output for ``example_images``.
    """
    import torch
    from torch import nn

    if isinstance(model, nn.Sequential) and len(model) >= 2 and isinstance(model[0], nn.Sequential):
        candidates = list(model[0])
    elif isinstance(getattr(model, "layer4", None), nn.Module):
        candidates = [model.layer1, model.layer2, model.layer3, model.layer4]
    else:
        candidates = [m for m in model.modules() if m is not model]
    sizes = {}

    def remember(module, inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            sizes[id(module)] = tuple(output.shape[2:])
            order.append(module)

    order = []
    handles = [m.register_forward_hook(remember) for m in candidates]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_images[:1].to(_model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not order:
        raise ValueError(f"{type(model).__name__} has no layer with a 4-D output")
    large_enough = [m for m in order if min(sizes[id(m)]) >= min_side]
    chosen = large_enough[-1] if large_enough else max(order, key=lambda m: min(sizes[id(m)]))
    return chosen, sizes[id(chosen)]
