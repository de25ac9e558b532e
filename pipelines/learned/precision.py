"""The device and precision policy of the learned side, chosen in one place: bf16 autocast on CUDA where the
card supports it, fp32 elsewhere; and the device synchronisation every clock read is preceded by."""
from __future__ import annotations

from contextlib import nullcontext

import torch


def precision_for(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16-autocast"
    return "fp32"


def autocast_for(device: torch.device):
    if precision_for(device) == "bf16-autocast":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
