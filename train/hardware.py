"""Device choice and the speed settings that go with it (mixed precision, channels_last, batch).

On CUDA: bf16 mixed precision where the GPU supports it, else fp16; channels_last memory format;
the largest batch that fits (a quick probe); worker processes and pinned memory. On the CPU:
fp32, a note that training is slow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

CPU_BATCH_SIZE = 32  # --bs auto on the CPU: no memory probe, a size that keeps steps short
PROBE_LIMIT = 1024  # largest batch the probe tries
GPU_WORKERS_MAX = 8  # DataLoader processes on the GPU (decoding JPEGs keeps up with a ResNet50)


@dataclass(frozen=True)
class Hardware:
    """What the run uses: ``device`` ("cuda" or "cpu"), ``precision`` ("bf16", "fp16", "fp32"),
    ``channels_last``, ``workers``, ``pin_memory``, and a one-line ``note`` for the terminal."""

    device: str
    precision: str
    channels_last: bool
    workers: int
    pin_memory: bool
    note: str


def detect_hardware(*, workers: int | None = None) -> Hardware:
    """Choose the device and its settings; ``workers=None`` = up to 8 on CUDA, 0 on the CPU."""
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        count = min(GPU_WORKERS_MAX, os.cpu_count() or 1) if workers is None else workers
        return Hardware(
            "cuda",
            precision,
            True,
            count,
            True,
            f"training on {name}: {precision} mixed precision, channels_last, {count} workers",
        )
    count = 0 if workers is None else workers
    return Hardware(
        "cpu",
        "fp32",
        False,
        count,
        False,
        "no GPU found: training on the CPU in fp32; this is slow (minutes per epoch at 300 px "
        "on ResNet50) - use small --sizes and --arch resnet18 to try things out",
    )


def apply_precision(learn, hardware: Hardware):
    """Add fastai's mixed-precision and channels_last callbacks to ``learn`` per ``hardware``."""
    if hardware.channels_last:
        from fastai.callback.channelslast import ChannelsLast

        learn.add_cb(ChannelsLast())
    if hardware.precision == "bf16":
        learn.to_bf16()
    elif hardware.precision == "fp16":
        learn.to_fp16()
    return learn


def largest_batch_size(
    fits: Callable[[int], bool], *, start: int = 8, limit: int = PROBE_LIMIT
) -> int:
    """The largest batch size in ``start, 2*start, ... <= limit`` for which ``fits`` is true.

    Doubling stops at the first size that does not fit (memory use grows with the batch), then a
    binary search between the last fit and the first failure refines the answer.

    Parameters
    ----------
    fits : callable
        ``fits(batch_size) -> bool``: whether one training step at that size runs.
    start, limit : int
        The smallest and largest sizes tried.

    Raises
    ------
    RuntimeError
        When not even ``start`` fits.
    """
    if not fits(start):
        raise RuntimeError(
            f"a batch of {start} images does not fit on the GPU; use smaller --sizes or --arch"
        )
    low, high = start, None
    while low * 2 <= limit:
        if fits(low * 2):
            low *= 2
        else:
            high = low * 2
            break
    if high is None:
        return low
    while high - low > max(1, low // 8):  # within 1/8: the probe is a guide, not a measurement
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def probe_batch_size(model, *, size: int, classes: int, precision: str, limit: int) -> int:
    """The largest batch of ``size``-px RGB images for which one training step of ``model`` fits
    in GPU memory (forward, backward, under the run's autocast), capped at ``limit``."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    model = model.cuda().to(memory_format=torch.channels_last).train()

    def fits(batch_size: int) -> bool:
        try:
            images = torch.randn(batch_size, 3, size, size, device="cuda")
            images = images.to(memory_format=torch.channels_last)
            targets = torch.randint(0, classes, (batch_size,), device="cuda")
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                loss = torch.nn.functional.cross_entropy(model(images), targets)
            loss.backward()
            return True
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()

    # Leave headroom for the optimizer state and the data pipeline: 7/8 of the probed size.
    return max(1, largest_batch_size(fits, limit=limit) * 7 // 8)
