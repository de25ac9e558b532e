"""Compute anatomy of AlexNet-224 (the chapter's exercise 4), layer by layer.

Parameters, forward FLOPs and activation memory are computed analytically and the FLOPs are checked
against ``torch.utils.flop_counter.FlopCounterMode``; forward time per layer is measured on the device.
"""
from __future__ import annotations

import ctypes
import gc
import math
import time
from pathlib import Path

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


def timings(fn, repeats: int, device: torch.device) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after one untimed warm-up call, synchronised around each."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return times


def time_layer(layer: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median forward time in milliseconds on ``x``'s device."""
    times = sorted(timings(lambda: layer(x), repeats, x.device))
    return 1000 * times[len(times) // 2]


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


# --- the roofline (the chapter's exercise 4c) -------------------------------------------------------------

BYTES = 4  # fp32


def layer_traffic(batch: int) -> list[dict]:
    """Per layer of AlexNet-224, a forward pass over ``batch`` images in fp32: FLOPs, the bytes read (weights
    once, each image's input) and written (each image's output), and the arithmetic intensity (FLOPs per byte).
    A lower bound on traffic: every tensor crosses memory once, as a perfectly cached kernel would make it."""
    model = alexnet()
    shape, rows = (1, 224, 224), []
    x = torch.zeros(1, *shape)
    with torch.no_grad():
        for i, layer in enumerate(model):
            y = layer(x)
            out = tuple(y.shape[1:])
            flops = batch * analytic_flops(layer, out)
            weights = BYTES * analytic_params(layer)
            read = weights + batch * BYTES * math.prod(x.shape[1:])
            written = batch * BYTES * math.prod(out)
            rows.append({"index": i, "layer": type(layer).__name__, "batch": batch, "flops": flops,
                         "weight_bytes": weights, "bytes_read": read, "bytes_written": written,
                         "intensity": flops / (read + written)})
            x = y
    return rows


@torch.inference_mode()
def device_peaks(device: str = "cpu", matmul_n: int = 2048, copy_mib: int = 256, repeats: int = 5) -> dict:
    """This device's measured ceilings: FLOP/s of an n x n fp32 matmul (2n^3 FLOPs) and memory bandwidth of a
    copy between two large fp32 tensors (bytes read + written), each the best of ``repeats``."""
    dev = torch.device(device)
    a, b = torch.rand(matmul_n, matmul_n, device=dev), torch.rand(matmul_n, matmul_n, device=dev)
    flops = 2 * matmul_n ** 3 / min(timings(lambda: a @ b, repeats, dev))
    src = torch.rand(copy_mib * 2 ** 20 // BYTES, device=dev)
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() * BYTES / min(timings(lambda: dst.copy_(src), repeats, dev))
    return {"peak_flops": flops, "bandwidth": bandwidth, "ridge": flops / bandwidth, "matmul_n": matmul_n,
            "copy_mib": copy_mib, "device": str(dev)}


@torch.inference_mode()
def achieved_flops(batch: int, device: str = "cpu", repeats: int = 3) -> list[float]:
    """Measured FLOP/s of each AlexNet-224 layer's forward pass on ``batch`` images (0 where it has no FLOPs)."""
    torch.manual_seed(0)
    dev = torch.device(device)
    model = alexnet().eval().to(dev)
    x = torch.rand(batch, 1, 224, 224, device=dev)
    out = []
    for layer in model:
        y = layer(x)
        flops = batch * analytic_flops(layer, tuple(y.shape[1:]))
        out.append(flops / (time_layer(layer, x, repeats) / 1000) if flops else 0.0)
        x = y
    return out


def forward_flops(model: nn.Module, image_size: int) -> int:
    """FLOPs of one image's forward pass through ``model`` (torch's counter; a multiply-add is 2)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 1, image_size, image_size, device=next(model.parameters()).device))
    model.train()
    return int(counter.get_total_flops())


# --- memory of training (the chapter's exercise 3) ---------------------------------------------------------

CUDA_MEMORY = "torch.cuda.max_memory_allocated over the steps, less what was allocated before"
CPU_MEMORY = ("the process's peak resident memory over the steps (Linux VmHWM, reset first), less its resident "
              "memory before (freed heap returned with malloc_trim)")


def _resident() -> tuple[int, int]:
    """(resident, peak resident since the last reset) bytes of this process, from Linux's /proc."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM"))


def _reset_peak() -> bool:
    """Give freed heap back to the OS and restart the kernel's peak count; False where that is not possible."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except (OSError, AttributeError):
        return False


def memory_by_batch(cfg, batches, device: str = "cpu") -> dict[int, dict]:
    """``training_memory`` of ``cfg`` at each batch size, after one untimed warm-up measurement (the first
    steps of a process allocate libraries' one-time buffers, which would be counted against the first batch)."""
    import dataclasses
    training_memory(dataclasses.replace(cfg, batch_size=min(batches)), device)
    return {b: training_memory(dataclasses.replace(cfg, batch_size=b), device) for b in batches}


def training_memory(cfg, device: str = "cpu", steps: int = 3) -> dict:
    """Peak memory of ``steps`` SGD steps of ``cfg``'s network at ``cfg.batch_size`` on ``device``, counted from
    before the network is built (weights, gradients, optimizer state, activations), and how it was measured."""
    from .trainer import build_model, make_optimizer, prepare, train_step
    from .precision import FP32, autocast
    dev = torch.device(device)
    x = torch.randint(0, 256, (cfg.batch_size, 28, 28), dtype=torch.uint8, device=dev)
    y = torch.randint(0, 10, (cfg.batch_size,), device=dev)
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before, method = torch.cuda.memory_allocated(dev), CUDA_MEMORY
    elif _reset_peak():
        before, method = _resident()[0], CPU_MEMORY
    else:
        return {"peak_memory_bytes": None, "memory_method": "not measured (needs Linux /proc or CUDA)"}
    model = build_model(cfg, dev, x)
    opt = make_optimizer(model, cfg)
    for _ in range(steps):
        train_step(model, opt, prepare(x, cfg.image_size), y, autocast(FP32, dev))
    sync(dev)
    peak = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else _resident()[1]
    return {"peak_memory_bytes": int(peak - before), "memory_method": method}
