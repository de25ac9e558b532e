"""The precision policy of the learned side, in one place, and the device synchronisation every clock read is
preceded by.

A recipe's ``precision`` is ``"fp32"`` or ``"auto"`` (``TrainConfig``; ``--precision`` overrides it). ``auto``
trains in bf16 autocast on CUDA where the card supports it, and on a CPU where it is measured to be faster:
``probe`` times a few training steps of the run's own network each way, before training (its seconds are the
row's ``precision_probe_seconds``, outside the training time), and keeps bf16 only if it trains at least
``BF16_MARGIN`` times as fast. Whether a recipe may use bf16 at all (whether it keeps accuracy) is checked on the
validation split when the recipe is chosen, never per run (``results/tuning/<pipeline>-precision.json``). The
chosen precision is recorded in the row; it is a property of the machine (a Xeon with AMX tiles runs bf16
convolutions on them; one without may run them slower than fp32), not of the configuration.

    python bench/precision.py        # the probe's figures for each network on this machine
"""
from __future__ import annotations

import copy
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

FP32, BF16 = "fp32", "bf16-autocast"  # what a row's ``precision`` column says
POLICIES = ("auto", "fp32", "bf16")   # a recipe's (and --precision's) choices
BF16_MARGIN = 1.10  # auto on a CPU keeps bf16 only if the probe measures it at least this many times as fast
PROBE_STEPS = 4     # timed steps each way, after one warm-up step each way


def autocast(precision: str, device: torch.device):
    """The context a forward pass runs in: bf16 autocast on the device's type, or nothing (fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == BF16 else nullcontext()


def fixed_choice(policy: str, device: torch.device) -> str | None:
    """The precision a policy gives without measuring (None: ``auto`` on a CPU, which ``probe`` decides)."""
    if policy == "fp32":
        return FP32
    if policy == "bf16":
        return BF16
    if device.type == "cuda":
        return BF16 if torch.cuda.is_bf16_supported() else FP32
    return None


def probe(model, batches, make_optimizer, step) -> tuple[str, dict]:
    """Time ``PROBE_STEPS`` training steps (after a warm-up) in fp32 and in bf16 on copies of ``model`` (its weights,
    the caller's optimizer and RNG are untouched) over ``batches`` (a list of (x, y) on the device); returns the
    faster precision under ``BF16_MARGIN`` and what was measured (images per second each way, seconds in all)."""
    start, rates, rng = time.perf_counter(), {}, torch.get_rng_state()
    for precision in (FP32, BF16):
        net = copy.deepcopy(model)
        opt = make_optimizer(net)
        amp = autocast(precision, next(net.parameters()).device)
        step(net, opt, *batches[0], amp)  # warm-up: oneDNN picks its kernels for these shapes
        t0 = time.perf_counter()
        for x, y in (batches[1:] * PROBE_STEPS)[:PROBE_STEPS]:
            step(net, opt, x, y, amp)
        rates[precision] = PROBE_STEPS * len(batches[0][0]) / (time.perf_counter() - t0)
    torch.set_rng_state(rng)
    chosen = BF16 if rates[BF16] >= BF16_MARGIN * rates[FP32] else FP32
    return chosen, {"fp32_images_per_second": rates[FP32], "bf16_images_per_second": rates[BF16],
                    "seconds": time.perf_counter() - start}


def probe_step(net, opt, x, y, amp) -> None:
    """One plain SGD step, what ``probe`` times (the trainer's schedule and label smoothing change no speed)."""
    with amp:
        loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
