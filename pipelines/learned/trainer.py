"""The fast training loop both networks share (what ``runner.py`` uses).

- The whole dataset lives on the device as uint8; batches are index slices of a per-epoch permutation
  drawn from the seed, upsampled on the device (``F.interpolate``, bilinear) and scaled to [0, 1].
- ``channels_last`` everywhere (oneDNN's convolutions on the CPU are faster in it too); bf16 autocast where the
  precision policy chooses it (``precision.py``: on CUDA where supported, on a CPU where a probe measures it
  faster); ``cudnn.benchmark`` on CUDA; optional ``torch.compile``.
- No host sync inside the batch loop: loss and correct counts accumulate on the device.
- The learning rate is constant (d2l's recipes) or follows a one-cycle schedule (``schedule="onecycle"``:
  warm-up then cosine decay over the planned steps, torch's ``OneCycleLR``); optional label smoothing.
- Time to accuracy: when the test labels are given, the test images are scored after every complete epoch and
  the history records that accuracy beside the training time so far (scoring is not training time; the
  schedule is fixed in advance, so the curve chooses nothing).
- A checkpoint after every complete epoch (atomic, ``checkpoints.py``), ``--resume`` continues from it; NaN/inf
  loss fails. Batches and augmentation live in ``batches.py``, the optimiser in ``optim.py``, precision and
  device synchronisation in ``precision.py``; the time-to-target recipe's ingredients (whitened first layer,
  identity-initialised convolutions, fast batch-norm biases, weight averaging, alternating flips, shifted test
  views) are read from its config where it has them (``cnn28_fast.FastConfig``), absent elsewhere.
- Under torchrun: DistributedDataParallel, each rank trains on its shard of the permutation.
"""
from __future__ import annotations

import inspect
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import distributed as dist
from ..base import TRAIN_SCORE_MAX, RunContext
from .batches import augment, epoch_permutation, flip_phase, images_tensor, prepare, random_erase  # noqa: F401
from .checkpoints import Checkpoints, unwrap
from .models import (MODELS, Standardize, dirac_init, first_conv, network,  # noqa: F401  (MODELS: benches, tests)
                     whiten_init)
from .optim import SCHEDULES, WeightAverage, make_optimizer, make_schedule  # noqa: F401
from .precision import FP32, autocast, fixed_choice, probe, probe_step, sync

PROBE_STEPS = 3  # batches after the first that time the estimate of the full recipe
BUDGET_CHECK_EVERY = 1  # steps between time-budget checks (each is a collective under DDP)


class TrainingError(Exception):
    """Training cannot go on (the loss became NaN or infinite); one-line message."""


@dataclass(frozen=True)
class TrainConfig:
    model: str
    image_size: int = 28
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.9
    momentum: float = 0.0
    weight_decay: float = 0.0
    n_train: int | None = None        # None: all 60k
    n_test: int | None = None         # None: all 10k
    time_budget: float | None = None  # seconds of training; None: the full recipe
    train_score_max: int = TRAIN_SCORE_MAX  # training images scored in eval mode after training (train accuracy)
    model_kwargs: tuple = ()          # e.g. (("activation", "relu"),)
    augment: bool = False             # random horizontal flips and 2-pixel shifted crops
    erase: float = 0.0                # with ``augment`` (ignored without): share of images given a random erasure
    schedule: str = "constant"        # "constant" or "onecycle" (SCHEDULES)
    label_smoothing: float = 0.0
    nesterov: bool = False
    flip_test: bool = False           # predict from the image and its mirror image (mean of the two softmaxes)
    standardize: bool = False         # scale inputs to zero mean, unit variance (the training images' statistics)


@dataclass
class TrainState:
    epoch: int = 0                   # complete epochs so far
    images_seen: int = 0
    train_seconds: float = 0.0
    timed_images: int = 0            # images of epochs after the first (throughput)
    timed_seconds: float = 0.0
    history: list = field(default_factory=list)


def build_model(cfg: TrainConfig, device: torch.device, x_train: torch.Tensor | None = None,
                num_classes: int | None = None) -> nn.Module:
    """The network; with ``cfg.standardize``, behind a ``Standardize`` layer holding ``x_train``'s statistics."""
    build = network(cfg.model)
    kwargs = dict(cfg.model_kwargs)
    accepts = inspect.signature(build).parameters
    if "image_size" in accepts:  # a network whose shape follows its input side ...
        kwargs["image_size"] = cfg.image_size
    if "in_channels" in accepts and x_train is not None:  # ... its input channels (grey 1, colour 3) ...
        kwargs["in_channels"] = x_train.shape[1] if x_train.ndim == 4 else 1
    if num_classes is not None:  # ... and its outputs
        kwargs["num_classes"] = num_classes
    model = build(**kwargs)
    if cfg.standardize:
        pixels = x_train.float().div(255.0)
        model = nn.Sequential(Standardize(pixels.mean().item(), pixels.std().item()), *model)
    return model.to(device, memory_format=torch.channels_last)


def train_step(model, opt, x, y, amp, sched=None, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    with amp:
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()
    return loss.detach(), (logits.argmax(1) == y).sum()


def test_views(x: torch.Tensor, cfg) -> list[torch.Tensor]:
    """The views a prediction averages (mean of their softmaxes): the image alone; with ``flip_test`` also its
    mirror (AlexNet's test-time averaging, reduced to two views); with ``tta_shifts`` also both shifted by one
    pixel up-left and down-right (airbench's multi-crop)."""
    views = [x, x.flip(-1)] if cfg.flip_test else [x]
    if getattr(cfg, "tta_shifts", False):
        padded = [F.pad(v, (1, 1, 1, 1)) for v in views[:2]]
        side = x.shape[-1]
        views += [p[..., a:a + side, a:a + side].contiguous(memory_format=torch.channels_last)
                  for p in padded for a in (0, 2)]
    return views


@torch.inference_mode()
def evaluate(model, x_uint8: torch.Tensor, cfg: TrainConfig, amp, batch: int = 1000) -> torch.Tensor:
    """Predicted labels for every image (batches of ``batch``, no grad, eval mode), on the device."""
    model.eval()
    preds = []
    for i in range(0, len(x_uint8), batch):
        with amp:
            x = prepare(x_uint8[i:i + batch], cfg.image_size)
            views = test_views(x, cfg)
            logits = model(views[0]) if len(views) == 1 else sum(model(v).softmax(1) for v in views)
            preds.append(logits.argmax(1))
    model.train()
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=x_uint8.device)


@dataclass
class TrainResult:
    model: nn.Module
    state: TrainState
    y_pred: np.ndarray
    eval_seconds: float
    precision: str
    compiled: bool
    estimate_seconds: float | None  # the full recipe's estimated training time on this device
    compile_seconds: float | None = None  # torch.compile's first compilation, kept out of training time
    probed: dict | None = None  # the precision probe's figures (``precision.probe``), where it ran
    start_filters: np.ndarray | None = None  # conv1's weights as the run's seed drew them, before any training


class Trainer:
    """Trains one network on (x_train, y_train) and predicts x_test; all arrays uint8 numpy."""

    def __init__(self, cfg: TrainConfig, ctx: RunContext, pipeline: str, recipe_images: int,
                 checkpoint: bool = True, quiet: bool = False, eval_batch: int = 1000, identity: dict | None = None,
                 precision: str = FP32):
        """``identity``: what a checkpoint must have been made with to be resumed (``config_hash``,
        ``data_fingerprint``); ``eval_batch``: images per prediction batch (speed only); ``precision``: the
        policy (``precision.POLICIES``), resolved before training."""
        self.cfg, self.ctx, self.pipeline, self.recipe_images = cfg, ctx, pipeline, recipe_images
        self.checkpoint, self.quiet, self.eval_batch = checkpoint, quiet, eval_batch
        self.device = torch.device(dist.torch_device(ctx.device.kind))
        self.policy = "fp32" if precision == FP32 else precision
        self.precision, self.probed, self.amp = FP32, None, autocast(FP32, self.device)
        self.average = WeightAverage(nn.Identity(), 0.0)
        self.budget = cfg.time_budget  # the effective one: the run put --time-budget in it (Pipeline.effective)
        self.estimate: float | None = None
        self.checkpoints = Checkpoints(ctx.checkpoint_path(pipeline), identity or {})

    def _shard(self, perm: torch.Tensor) -> torch.Tensor:
        """This rank's share of the permutation; every rank gets the same count, so steps line up."""
        world = dist.world_size()
        return perm[: len(perm) - len(perm) % world][dist.rank()::world]

    def _out_of_time(self, start: float) -> bool:
        """Budget check against training time (``start`` is this epoch's start shifted back by the training
        time of earlier epochs, so checkpoint saves never count); under DDP the ranks agree."""
        late = time.perf_counter() - start > self.budget
        if dist.world_size() == 1:
            return late
        flag = dist.all_sum(torch.tensor([float(late)], device=self.device))
        return bool(flag.item() > 0)

    def _steps_per_epoch(self, n: int) -> int:
        shard = n // dist.world_size()  # what _shard gives each rank
        return math.ceil(shard / max(1, self.cfg.batch_size // dist.world_size()))

    def _run_epoch(self, model, opt, sched, x, y, state: TrainState, start: float, bar) -> bool:
        """One epoch (or until the budget runs out); returns True if the epoch completed."""
        cfg, dev = self.cfg, self.device
        perm = self._shard(epoch_permutation(len(x), self.ctx.seed, state.epoch, dev))
        bs = max(1, cfg.batch_size // dist.world_size())
        gen = torch.Generator(device=dev).manual_seed(self.ctx.seed * 7919 + state.epoch)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        for step, i in enumerate(range(0, len(perm), bs)):
            if self.estimate is None:
                self._probe(step, bs)
            idx = perm[i:i + bs]
            flip = self.phase[idx] ^ bool(state.epoch % 2) if self.phase is not None else None
            xb = augment(x[idx], gen, cfg.erase, flip) if cfg.augment else x[idx]
            loss, hits = train_step(model, opt, prepare(xb, cfg.image_size), y[idx], self.amp, sched,
                                    cfg.label_smoothing)
            self.average.update(model)
            loss_sum += loss * len(idx)
            correct += hits
            seen += len(idx)
            bar.update(len(idx) * dist.world_size())
            if self.budget is not None and step % BUDGET_CHECK_EVERY == 0 and self._out_of_time(start):
                break
        totals = dist.all_sum(torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=dev)]))
        mean_loss, acc = (totals[0] / totals[2]).item(), (totals[1] / totals[2]).item()
        if not math.isfinite(mean_loss):
            raise TrainingError(f"loss became {mean_loss} in epoch {state.epoch + 1}; lower the learning rate")
        state.images_seen += int(totals[2].item())
        complete = seen >= len(perm)
        state.history.append({"epoch": state.epoch + 1, "loss": mean_loss, "train_accuracy": acc,
                              "images": int(totals[2].item()), "complete": complete})
        bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{acc:.3f}")
        return complete

    def _probe(self, step: int, batch: int) -> None:
        """Called before each batch: batch 0 warms up, batches 1..PROBE_STEPS are timed, then the
        estimated cost of the full recipe on this device is printed."""
        if step not in (1, PROBE_STEPS + 1):
            return
        sync(self.device)
        if step == 1:
            self._probe_start = time.perf_counter()
            return
        ips = PROBE_STEPS * batch * dist.world_size() / (time.perf_counter() - self._probe_start)
        self.estimate = self.recipe_images / ips
        if dist.is_main() and not self.quiet:
            tqdm.write(f"[{self.pipeline}] the full recipe ({self.recipe_images:,} training images) would take "
                       f"~{fmt_duration(self.estimate)} here at ~{ips:,.1f} img/s"
                       + (f"; this run is capped at {self.budget:.0f} s of training" if self.budget else ""))

    def fit_predict(self, x_train, y_train, x_test, y_test=None, num_classes: int | None = None) -> TrainResult:
        """Train, then predict ``x_test``; with ``y_test``, also score it after every complete epoch. The network
        has ``num_classes`` outputs (default: the largest training label + 1)."""
        cfg, ctx, dev = self.cfg, self.ctx, self.device
        self.clock_start = time.perf_counter()  # the first touch of the data (a resumed run counts from here)
        torch.manual_seed(ctx.seed)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True
        x, y = images_tensor(x_train, dev), torch.from_numpy(y_train.astype(np.int64)).to(dev)
        xt = images_tensor(x_test, dev)
        model = self._model(x, num_classes or int(y_train.max()) + 1)
        start_filters = first_conv(model).weight.detach().float().cpu().numpy().copy()  # before a checkpoint loads
        self.phase = flip_phase(len(x), ctx.seed, dev) if getattr(cfg, "alternate_flips", False) else None
        opt = make_optimizer(model, cfg)
        sched = make_schedule(opt, cfg, self._steps_per_epoch(len(x)))
        self.average = WeightAverage(model, getattr(cfg, "ema", 0.0))
        saved = self.checkpoints.load(model, opt, sched, self.average.model) if ctx.resume else None
        state = TrainState(**saved) if saved else TrainState()
        self._choose_precision(model, x, y)
        net = self._wrap(model)
        compile_seconds = self._compile(net, x, y) if ctx.compile else None
        watch = None if y_test is None else (xt, torch.from_numpy(np.asarray(y_test).astype(np.int64)).to(dev))
        state = self._train(net, opt, sched, x, y, state, watch)
        sync(dev)
        start = time.perf_counter()
        preds = self._predict(net, xt)
        sync(dev)
        eval_seconds = time.perf_counter() - start
        return TrainResult(self.average.evaluated(model), state, preds.cpu().numpy(), eval_seconds, self.precision,
                           bool(ctx.compile), self.estimate, compile_seconds, self.probed, start_filters)

    def _model(self, x: torch.Tensor, num_classes: int) -> nn.Module:
        """The network, with the recipe's initialisation ingredients where it asks for them (whitening of the
        first layer from the training images, identity initialisation of the later convolutions)."""
        model = build_model(self.cfg, self.device, x, num_classes)
        if getattr(self.cfg, "whiten", False):
            whiten_init(model, prepare(x[:20_000], self.cfg.image_size))
        if getattr(self.cfg, "dirac", False):
            dirac_init(model)
        return model

    def _choose_precision(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        """The run's precision: the policy's fixed choice, or (``auto`` on a CPU) the probe's, measured on this
        network and device before training and outside its time."""
        self.precision, self.probed = fixed_choice(self.policy, self.device), None
        if self.precision is None:
            bs, n = self.cfg.batch_size, min(len(x) // max(1, self.cfg.batch_size), 3)
            batches = [(prepare(x[i * bs:(i + 1) * bs], self.cfg.image_size), y[i * bs:(i + 1) * bs])
                       for i in range(max(1, n))]
            self.precision, self.probed = probe(model, batches, lambda net: make_optimizer(net, self.cfg),
                                                probe_step)
            if dist.is_main() and not self.quiet:
                tqdm.write(f"[{self.pipeline}] precision probe: fp32 {self.probed['fp32_images_per_second']:,.0f} "
                           f"img/s, bf16 {self.probed['bf16_images_per_second']:,.0f} img/s -> {self.precision}")
        self.amp = autocast(self.precision, self.device)

    def _compile(self, net, x, y) -> float:
        """torch.compile compiles lazily; do it here, untimed by training: one forward and backward on a
        batch, its gradients dropped and its buffers (batch norm's running statistics) restored, so the
        weights and statistics are unchanged. Returns the seconds it took."""
        buffers = [(b, b.detach().clone()) for b in net.buffers()]
        sync(self.device)
        start = time.perf_counter()
        with self.amp:
            loss = F.cross_entropy(net(prepare(x[:self.cfg.batch_size], self.cfg.image_size)), y[:self.cfg.batch_size])
        loss.backward()
        net.zero_grad(set_to_none=True)
        sync(self.device)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        return seconds

    def _wrap(self, model: nn.Module) -> nn.Module:
        net = model
        if dist.world_size() > 1:
            from torch.nn.parallel import DistributedDataParallel
            net = DistributedDataParallel(model, device_ids=[dev_index(self.device)] if self.device.type == "cuda" else None)
        return torch.compile(net) if self.ctx.compile else net

    def _predict(self, net, x_uint8: torch.Tensor) -> torch.Tensor:
        """``evaluate`` on the bare model under DDP (every rank predicts all of ``x_uint8``, no collectives)."""
        model = self.average.evaluated(net if dist.world_size() == 1 else unwrap(net))
        return evaluate(model, x_uint8, self.cfg, self.amp, self.eval_batch)

    def _score(self, net, watch) -> float:
        """Accuracy on the watched images (untimed by training)."""
        x, y = watch
        return float((self._predict(net, x) == y).float().mean().item())

    def _train(self, net, opt, sched, x, y, state: TrainState, watch=None) -> TrainState:
        cfg, dev = self.cfg, self.device
        total = cfg.epochs * len(x)
        with tqdm(total=total, initial=state.epoch * len(x), desc=f"{cfg.model} train", unit="img",
                  disable=not dist.is_main() or self.quiet or os.environ.get("TQDM_DISABLE") == "1",  # tqdm's switch
                  mininterval=1.0) as bar:
            while state.epoch < cfg.epochs:
                sync(dev)
                t0 = time.perf_counter()
                before = state.images_seen
                complete = self._run_epoch(net, opt, sched, x, y, state, t0 - state.train_seconds, bar)
                sync(dev)
                elapsed = time.perf_counter() - t0
                state.train_seconds += elapsed  # training only: checkpoint saves below are not timed
                if state.epoch > 0 or cfg.epochs == 1 or not complete:
                    state.timed_images += state.images_seen - before
                    state.timed_seconds += elapsed
                if not complete:
                    break
                state.epoch += 1
                state.history[-1]["train_seconds"] = round(state.train_seconds, 3)
                if watch is not None:
                    state.history[-1]["test_accuracy"] = round(self._score(net, watch), 4)
                    # MLPerf's clock: from the first touch of the data to the end of this evaluation, everything in
                    sync(dev)
                    state.history[-1]["clock_seconds"] = round(time.perf_counter() - self.clock_start, 3)
                if dist.is_main() and self.checkpoint:
                    self.checkpoints.save(net, opt, state, sched, self.average.model)
        if state.timed_images == 0 and state.history:  # only the first epoch ran: time it
            state.timed_images, state.timed_seconds = state.images_seen, state.train_seconds
        return state


def dev_index(device: torch.device) -> int:
    return device.index if device.index is not None else 0


def fmt_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
