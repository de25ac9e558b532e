"""Compute anatomy of AlexNet-224 (the chapter's exercise 4), layer by layer.

Parameters, forward FLOPs and activation memory are computed analytically and the FLOPs are checked
against ``torch.utils.flop_counter.FlopCounterMode``; forward time per layer is measured on the device.
"""
from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .models import alexnet
from .precision import sync


def analytic_params(layer: nn.Module) -> int:
    if isinstance(layer, nn.Conv2d):
        k = layer.kernel_size[0] * layer.kernel_size[1]
        return layer.in_channels * layer.out_channels * k + layer.out_channels
    if isinstance(layer, nn.Linear):
        return layer.in_features * layer.out_features + layer.out_features
    return 0


def analytic_flops(layer: nn.Module, out_shape: tuple[int, ...]) -> int:
    """Forward FLOPs per image, counting a multiply-add as 2 (as torch's counter does; biases and
    element-wise layers are not counted)."""
    if isinstance(layer, nn.Conv2d):
        k = layer.kernel_size[0] * layer.kernel_size[1]
        return 2 * layer.in_channels * k * out_shape[0] * out_shape[1] * out_shape[2]
    if isinstance(layer, nn.Linear):
        return 2 * layer.in_features * layer.out_features
    return 0


def torch_flops(layer: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        layer(x)
    return int(counter.get_total_flops())


def time_layer(layer: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median forward time in milliseconds on ``x``'s device, synchronised before each clock read."""
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        sync(x.device)
        start = time.perf_counter()
        layer(x)
        sync(x.device)
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times[1:])[len(times[1:]) // 2]


@torch.inference_mode()
def layer_table(batch: int = 16, repeats: int = 3, device: str = "cpu") -> list[dict]:
    """One row per layer of AlexNet-224 (per image, except ``forward_ms``: ``batch`` images on ``device``)."""
    torch.manual_seed(0)
    model = alexnet().eval().to(device)
    x = torch.rand(batch, 1, 224, 224, device=device)
    rows = []
    for i, layer in enumerate(model):
        y = layer(x)
        shape = tuple(y.shape[1:])
        rows.append({"index": i, "layer": type(layer).__name__, "output_shape": "x".join(map(str, shape)),
                     "params": analytic_params(layer),
                     "params_torch": sum(p.numel() for p in layer.parameters()),
                     "flops": analytic_flops(layer, shape),
                     "flops_torch": torch_flops(layer, x[:1]),
                     "device": str(x.device),
                     "activation_bytes": 4 * int(torch.tensor(shape).prod()),
                     "forward_ms": time_layer(layer, x, repeats), "batch": batch})
        x = y
    return rows
