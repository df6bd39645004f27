"""Grad-CAM against an independent computation, defaults, batching, and cleanliness."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from interpret.gradcam import (
    find_default_layer,
    find_layer_with_resolution,
    gradcam,
    gradcam_with_scores,
)

# Hand-set tiny CNN: channel 0 of the 1x1 conv reads red, channel 1 reads blue; after ReLU
# and global average pooling, class 0 = red - blue, class 1 = blue - red, class 2 = red.
CLASS_WEIGHTS = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 0.0]])


def make_color_model() -> nn.Sequential:
    conv = nn.Conv2d(3, 2, kernel_size=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0  # red
        conv.weight[1, 2] = 1.0  # blue
        conv.bias.fill_(-0.1)
    linear = nn.Linear(2, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(CLASS_WEIGHTS, dtype=torch.float32))
        linear.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)


def make_color_images(count: int = 6, size: int = 12, seed: int = 0) -> np.ndarray:
    """(N, 3, H, W) float32: noise, a red square and a blue square at random places."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.2, size=(count, 3, size, size)).astype(np.float32)
    for image in images:
        for channel in (0, 2):
            top, left = rng.integers(0, size - 4, size=2)
            image[channel, top : top + 4, left : left + 4] = rng.uniform(0.6, 1.0)
    return images


def expected_cam(images: np.ndarray, target: int) -> np.ndarray:
    """Grad-CAM of GAP + linear reduces to CAM: ReLU(sum_k W[c, k] A_k), up to a positive scale."""
    activations = np.maximum(images[:, [0, 2]] - 0.1, 0.0)  # the conv + ReLU, in numpy
    cam = np.maximum(np.einsum("k,nkhw->nhw", CLASS_WEIGHTS[target], activations), 0.0)
    peak = cam.reshape(len(cam), -1).max(axis=1)
    return cam / np.where(peak > 0, peak, 1.0)[:, None, None]


@pytest.mark.parametrize("target", [0, 1, 2])
def test_gradcam_equals_analytic_cam_for_gap_linear_model(target):
    images = make_color_images()
    model = make_color_model()
    maps = gradcam(model, torch.from_numpy(images), targets=target, layer=model[1])
    assert maps.shape == (6, 12, 12)
    np.testing.assert_allclose(maps, expected_cam(images, target), atol=1e-5)


def test_predicted_class_is_explained_when_targets_omitted():
    images = make_color_images(seed=3)
    model = make_color_model()
    result = gradcam_with_scores(model, torch.from_numpy(images), layer=model[1])
    with torch.no_grad():
        predicted = model(torch.from_numpy(images)).argmax(dim=1).numpy()
    np.testing.assert_array_equal(result.targets, predicted)
    for row, target in enumerate(predicted):
        np.testing.assert_allclose(
            result.maps[row], expected_cam(images[row : row + 1], target)[0], atol=1e-5
        )
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_batched_maps_equal_one_image_at_a_time():
    torch.manual_seed(0)
    model = make_small_cnn()
    images = torch.randn(7, 3, 32, 32)
    batched = gradcam(model, images, batch_size=3)
    single = np.concatenate([gradcam(model, images[i : i + 1]) for i in range(7)])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert batched.min() >= 0.0 and batched.max() <= 1.0 + 1e-6


def make_small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def test_maps_are_upsampled_to_image_resolution_and_normalised():
    torch.manual_seed(1)
    model = make_small_cnn()
    maps = gradcam(model, torch.randn(3, 3, 20, 28))
    assert maps.shape == (3, 20, 28)
    assert maps.dtype == np.float32
    for cam in maps:
        assert cam.max() == pytest.approx(1.0) or cam.max() == 0.0


def test_default_layer_for_torchvision_fastai_and_generic_models():
    from torchvision.models import resnet18

    resnet = resnet18(num_classes=3)
    assert find_default_layer(resnet) is resnet.layer4
    body = nn.Sequential(*list(resnet.children())[:-2])
    fastai_like = nn.Sequential(
        body, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 3))
    )
    assert find_default_layer(fastai_like) is body[-1]
    generic = make_small_cnn()
    assert find_default_layer(generic) is generic[4]  # last 4-D output bigger than 1x1


def test_resnet_gradcam_runs_and_layer_with_resolution_is_chosen_for_small_images():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=3)
    images = torch.randn(2, 3, 64, 64)  # layer4 is 2x2 here: too coarse to tell an edge
    layer, size = find_layer_with_resolution(model, images, min_side=4)
    assert layer is model.layer3 and size == (4, 4)
    maps = gradcam(model, images, layer=layer)
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all()


def count_hooks(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def live_tensors() -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if issubclass(type(item), torch.Tensor))


def test_twenty_calls_leave_no_hooks_no_grads_and_no_memory_growth():
    torch.manual_seed(0)
    model = make_small_cnn().train()
    images = torch.randn(4, 3, 24, 24)
    gradcam(model, images)  # warm-up allocations
    tensors_before = live_tensors()
    tracemalloc.start()
    try:
        snapshot_before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            gradcam(model, images)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - snapshot_before
    finally:
        tracemalloc.stop()
    assert count_hooks(model) == 0
    assert model.training  # mode restored
    assert torch.is_grad_enabled()
    assert all(parameter.grad is None for parameter in model.parameters())
    assert live_tensors() <= tensors_before
    assert growth < 200_000, f"python memory grew by {growth} bytes over 20 calls"


def test_hooks_are_removed_when_the_call_fails():
    model = make_small_cnn().eval()
    with pytest.raises(ValueError, match="targets must be class indices"):
        gradcam(model, torch.randn(2, 3, 16, 16), targets=[0, 9])
    assert count_hooks(model) == 0
    assert not model.training
    assert torch.is_grad_enabled()


def test_frozen_model_and_no_grad_context_still_work():
    torch.manual_seed(0)
    model = make_small_cnn()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        maps = gradcam(model, images)
        assert not torch.is_grad_enabled()
    assert maps.shape == (2, 16, 16) and maps.max() > 0


def test_bad_inputs_get_clear_errors():
    model = make_small_cnn()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        gradcam(model, torch.randn(16, 16))
    with pytest.raises(ValueError, match="3 entries for 2 images"):
        gradcam(model, torch.randn(2, 3, 16, 16), targets=[0, 1, 2])
    with pytest.raises(TypeError, match="torch.Tensor"):
        gradcam(model, np.zeros((1, 3, 8, 8)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_maps_match_cpu_maps():
    torch.manual_seed(0)
    model = make_small_cnn()
    images = torch.randn(3, 3, 16, 16)
    on_cpu = gradcam(model, images)
    on_gpu = gradcam(model.cuda(), images)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)


def test_works_inside_inference_mode():
    from interpret.guided import guided_backprop

    torch.manual_seed(0)
    model = make_small_cnn()
    expected = gradcam(model, torch.ones(2, 3, 16, 16))
    with torch.inference_mode():
        images = torch.ones(2, 3, 16, 16)
        maps = gradcam(model, images)
        gradients = guided_backprop(model, images)
    np.testing.assert_allclose(maps, expected, atol=1e-6)
    assert gradients.shape == (2, 3, 16, 16)
