"""Guided backprop against a hand-derived gradient; in-place ReLUs; guided Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from interpret.gradcam import gradcam
from interpret.guided import gradients_to_images, guided_backprop, guided_gradcam

HIDDEN_WEIGHTS = np.array([[1.0, -0.5], [-1.0, 2.0], [0.5, 0.5]])  # 2 inputs -> 3 hidden
HIDDEN_BIAS = np.array([0.1, -0.2, 0.0])
CLASS_WEIGHTS = np.array([[1.0, -2.0, 0.5], [-1.0, 1.0, -0.5]])  # 3 hidden -> 2 classes


def make_model(*, inplace: bool) -> nn.Sequential:
    hidden = nn.Conv2d(2, 3, kernel_size=1)
    output = nn.Conv2d(3, 2, kernel_size=1, bias=False)
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor(HIDDEN_WEIGHTS, dtype=torch.float32)[:, :, None, None])
        hidden.bias.copy_(torch.tensor(HIDDEN_BIAS, dtype=torch.float32))
        output.weight.copy_(torch.tensor(CLASS_WEIGHTS, dtype=torch.float32)[:, :, None, None])
    return nn.Sequential(
        hidden, nn.ReLU(inplace=inplace), output, nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


def expected_guided(images: np.ndarray, target: int) -> np.ndarray:
    """Springenberg's rule by hand: only positive gradients through ReLUs with positive input.

    logit_c = mean_p W2[c] . relu(W1 x_p + b1), so the guided gradient at pixel p is
    W1^T (relu(W2[c]) * [W1 x_p + b1 > 0]) / (H W).
    """
    count, _, height, width = images.shape
    pre = np.einsum("kc,nchw->nkhw", HIDDEN_WEIGHTS, images) + HIDDEN_BIAS[None, :, None, None]
    passed = np.maximum(CLASS_WEIGHTS[target], 0.0)[None, :, None, None] * (pre > 0)
    return np.einsum("kc,nkhw->nchw", HIDDEN_WEIGHTS, passed) / (height * width)


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("target", [0, 1])
def test_guided_backprop_matches_hand_derivation(inplace, target):
    images = np.random.default_rng(target).normal(size=(4, 2, 5, 6)).astype(np.float32)
    gradients = guided_backprop(make_model(inplace=inplace), torch.from_numpy(images), target)
    assert gradients.shape == images.shape
    np.testing.assert_allclose(gradients, expected_guided(images, target), atol=1e-6)


def test_guided_differs_from_plain_gradient_and_leaves_model_clean():
    model = make_model(inplace=True).train()
    images = torch.from_numpy(np.random.default_rng(5).normal(size=(3, 2, 4, 4)).astype(np.float32))
    guided = guided_backprop(model, images, 0)
    plain_input = images.clone().requires_grad_(True)
    model.eval()
    model(plain_input)[:, 0].sum().backward()
    assert not np.allclose(guided, plain_input.grad.numpy())  # class 0 has a negative weight
    model.train()
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0
    # the hooks are gone: the model's own gradient is plain again
    again = images.clone().requires_grad_(True)
    model.eval()
    model(again)[:, 0].sum().backward()
    np.testing.assert_allclose(again.grad.numpy(), plain_input.grad.numpy())


def test_guided_gradcam_is_guided_backprop_times_cam_on_a_resnet():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=3)  # in-place ReLUs, one ReLU module reused in each block
    images = torch.randn(2, 3, 64, 64)
    product, cams, targets = guided_gradcam(model, images, targets=[1, 2])
    np.testing.assert_array_equal(targets, [1, 2])
    expected = guided_backprop(model, images, [1, 2]) * gradcam(model, images, [1, 2])[:, None]
    np.testing.assert_allclose(product, expected, rtol=1e-4, atol=1e-7)
    assert product.shape == (2, 3, 64, 64) and cams.shape == (2, 64, 64)
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


def test_gradients_to_images_centres_on_grey():
    gradients = np.zeros((1, 3, 4, 4))
    gradients[0, :, 0, 0] = 1.0
    pictures = gradients_to_images(gradients)
    assert pictures.shape == (1, 4, 4, 3) and pictures.dtype == np.uint8
    assert pictures[0, 0, 0, 0] > pictures[0, 2, 2, 0]  # positive evidence is brighter
    assert abs(int(pictures[0, 2, 2, 0]) - 128) < 20


def test_model_without_relu_modules_is_refused():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="no nn.ReLU"):
        guided_backprop(model, torch.zeros(1, 3, 4, 4))
