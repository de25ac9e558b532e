"""The optimiser and the learning-rate schedule of the learned side: SGD as in d2l (Nesterov momentum and weight
decay where a recipe asks), a constant rate or a one-cycle schedule, and, for the time-to-target recipe, batch
norm's biases at a multiple of the rate (``bn_bias_lr``) and an exponential average of the weights (``ema``) that
evaluation reads. A config without those fields (every recipe but the time-to-target one) trains as before."""
from __future__ import annotations

import copy
import inspect

import torch
from torch import nn

SCHEDULES = ("constant", "onecycle")
WARMUP_FRACTION = 0.25  # one-cycle: share of the planned steps spent warming up to ``lr``


def param_groups(model: nn.Module, cfg) -> list[dict]:
    """One group of every parameter at ``cfg.lr``; with ``bn_bias_lr`` above 1, batch norm's biases in a group of
    their own at that multiple of the rate (airbench's 64x: they learn the offsets fast, without weight decay)."""
    boost = getattr(cfg, "bn_bias_lr", 1.0)
    if boost == 1.0:
        return [{"params": list(model.parameters()), "lr": cfg.lr}]
    biases = [m.bias for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.bias is not None]
    ids = {id(p) for p in biases}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": rest, "lr": cfg.lr}, {"params": biases, "lr": cfg.lr * boost, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD over ``param_groups``; on CUDA the fused kernel (one launch per step) where this torch has it."""
    extra = {}
    on_cuda = next(model.parameters()).is_cuda
    if on_cuda and "fused" in inspect.signature(torch.optim.SGD).parameters:
        extra["fused"] = True
    return torch.optim.SGD(param_groups(model, cfg), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, nesterov=cfg.nesterov, **extra)


def make_schedule(opt: torch.optim.Optimizer, cfg, steps_per_epoch: int):
    """The per-step learning-rate schedule, or None for a constant rate. One-cycle spans the planned epochs (a run
    stopped early by a time budget stops part-way along it and is marked truncated); each group peaks at its own
    rate."""
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if cfg.schedule == "constant":
        return None
    base = opt.param_groups[0]["lr"]  # each group peaks at cfg.lr times its multiple of the first group's rate
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[cfg.lr * g["lr"] / base for g in opt.param_groups],
                                               total_steps=max(1, cfg.epochs * steps_per_epoch),
                                               pct_start=WARMUP_FRACTION, cycle_momentum=False)


class WeightAverage:
    """An exponential moving average of a network's weights and buffers (``decay`` per step), the network
    evaluation reads when a recipe asks for it (``ema`` > 0); None-like otherwise."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval() if decay else None
        if self.model is not None:
            for p in self.model.parameters():
                p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        if self.model is None:
            return
        for mine, theirs in zip(self.model.parameters(), model.parameters()):
            mine.lerp_(theirs.detach(), 1 - self.decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers()):
            mine.copy_(theirs)

    def evaluated(self, model: nn.Module) -> nn.Module:
        """What evaluation reads: the average where there is one, else ``model``."""
        return self.model if self.model is not None else model
