"""Training throughput: the d2l-style reference loop against the fast path, same data, same process.

    python bench/learned.py --model alexnet --device cuda --steps 50
    python bench/learned.py --model lenet --device cpu --steps 100

Reference path (d2l style): a ``DataLoader`` over per-image tensors, each image resized on the CPU
(``F.interpolate``, bilinear), fp32, and a ``.item()`` loss/accuracy every batch.
Fast path (what ``runner.py`` uses): uint8 data resident on the device, index-sliced batches, upsampling
on the device, channels_last, bf16 autocast on CUDA, no host sync inside the loop.
Both run ``--warmup`` untimed steps first (the reference's loader workers start there, once); timers
synchronize the GPU before reading the clock.

Reference figures (2-core AMD EPYC dev machine, CPU, torch 2.13.0): see docs/pipelines.md, "Learned side".
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.base import cpu_name  # noqa: E402
from pipelines.learned import trainer as tr  # noqa: E402
from pipelines.learned.alexnet import RECIPE as ALEXNET  # noqa: E402
from pipelines.learned.lenet import RECIPE as LENET  # noqa: E402

RECIPES = {"alexnet": ALEXNET, "lenet": LENET}


class PerImage(Dataset):
    """d2l's view of the data: one float tensor per image, resized on the CPU when fetched."""

    def __init__(self, x: np.ndarray, y: np.ndarray, size: int):
        self.x, self.y, self.size = x, y.astype(np.int64), size

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = torch.from_numpy(self.x[i]).float().div(255.0)[None, None]
        if self.size != img.shape[-1]:
            img = F.interpolate(img, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return img[0], int(self.y[i])


def reference_batch_loss(model, x: np.ndarray, y: np.ndarray, size: int) -> float:
    """Loss of one batch through the reference path (fp32)."""
    device = next(model.parameters()).device
    xb, yb = next(iter(DataLoader(PerImage(x, y, size), batch_size=len(x))))
    with torch.no_grad():
        return F.cross_entropy(model(xb.to(device)), yb.to(device)).item()


def fast_batch_loss(model, x: np.ndarray, y: np.ndarray, size: int, device: torch.device) -> float:
    """Loss of the same batch through the fast path (device-side resize, autocast on CUDA)."""
    xd = torch.from_numpy(x).to(device)
    yd = torch.from_numpy(y.astype(np.int64)).to(device)
    with torch.no_grad(), tr.autocast(tr.fixed_choice("auto", device) or tr.FP32, device):
        return F.cross_entropy(model(tr.prepare(xd, size)), yd).float().item()


def reference_batches(x, y, cfg, workers: int):
    """The d2l loader, started once: its workers persist across rounds, so no timed round pays their start-up
    (between rounds they may prefetch a few batches, which can only flatter the reference)."""
    loader = DataLoader(PerImage(x, y, cfg.image_size), batch_size=cfg.batch_size, shuffle=True,
                        num_workers=workers, drop_last=True, persistent_workers=workers > 0)
    while True:
        yield from loader


def reference_steps(model, batches, cfg, device, steps: int) -> int:
    """d2l-style training loop for ``steps`` batches from ``batches``; returns images processed."""
    opt = tr.make_optimizer(model, cfg)
    done, correct = 0, 0
    for _ in range(steps):
        xb, yb = next(batches)
        xb, yb = xb.to(device), yb.to(device)
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        correct += (logits.argmax(1) == yb).sum().item()  # the per-batch host sync d2l does
        loss.item()
        done += len(xb)
    return done


def fast_steps(model, x_dev, y_dev, cfg, device, steps: int) -> int:
    opt = tr.make_optimizer(model, cfg)
    amp = tr.autocast(tr.fixed_choice("auto", device) or tr.FP32, device)
    perm = tr.epoch_permutation(len(x_dev), 0, 0, device)
    loss_sum = torch.zeros((), device=device)
    done = 0
    for step in range(steps):
        idx = perm[(step * cfg.batch_size) % len(perm):][: cfg.batch_size]
        loss, _ = tr.train_step(model, opt, tr.prepare(x_dev[idx], cfg.image_size),
                                y_dev[idx], amp)
        loss_sum += loss
        done += len(idx)
    return done


def timed(fn, device) -> tuple[int, float]:
    tr.sync(device)
    start = time.perf_counter()
    n = fn()
    tr.sync(device)
    return n, time.perf_counter() - start


def load_data(dummy: bool, n: int):
    if dummy:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)
    from pipelines.datasets import open_dataset
    data = open_dataset()
    return data.x_train[:n], data.y_train[:n]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=RECIPES, default="alexnet")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20, help="timed steps per path")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per path")
    p.add_argument("--rounds", type=int, default=3, help="alternating timed rounds per path (median reported)")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the reference path (d2l: 4)")
    p.add_argument("--dummy", action="store_true", help="random images instead of Fashion-MNIST")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda needs a CUDA GPU", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    cfg = RECIPES[args.model]
    if args.batch_size:
        cfg = tr.TrainConfig(**{**cfg.__dict__, "batch_size": args.batch_size})
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    x, y = load_data(args.dummy, max(cfg.batch_size * (args.steps + args.warmup) * 2, 4096))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"{args.model} batch {cfg.batch_size}, image {cfg.image_size}px, {args.steps} timed steps after "
          f"{args.warmup} warm-up, on {name}, torch {torch.__version__}")
    torch.manual_seed(0)
    ref_model = tr.MODELS[args.model]().to(device)
    torch.manual_seed(0)
    fast_model = tr.build_model(cfg, device)
    x_dev, y_dev = torch.from_numpy(x).to(device), torch.from_numpy(y.astype(np.int64)).to(device)
    batches = reference_batches(x, y, cfg, args.workers)
    reference_steps(ref_model, batches, cfg, device, max(args.warmup, 1))  # starts the workers, untimed
    fast_steps(fast_model, x_dev, y_dev, cfg, device, args.warmup)
    ref_ips, fast_ips = [], []
    for _ in range(args.rounds):  # alternate the two paths so drift hits both alike
        n, t = timed(lambda: reference_steps(ref_model, batches, cfg, device, args.steps), device)
        ref_ips.append(n / t)
        n, t = timed(lambda: fast_steps(fast_model, x_dev, y_dev, cfg, device, args.steps), device)
        fast_ips.append(n / t)
    ref, fast = float(np.median(ref_ips)), float(np.median(fast_ips))
    print(f"reference (d2l-style, fp32, CPU resize, {args.workers} workers): {ref:10,.1f} img/s "
          f"(median of {args.rounds} rounds: {', '.join(f'{v:,.1f}' for v in ref_ips)})")
    print(f"fast path ({tr.fixed_choice('auto', device) or tr.FP32}, device resize, channels_last): {fast:10,.1f} img/s "
          f"(median of {args.rounds} rounds: {', '.join(f'{v:,.1f}' for v in fast_ips)})")
    print(f"ratio fast/reference: {fast / ref:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
