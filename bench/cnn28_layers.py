"""Where a ``cnn28`` training step spends its time on this machine, by width of the 28x28 block (``stem``): the
trainer's own step (augmentation, ``prepare``, ``train_step`` with the preset's optimizer and label smoothing, at
a constant learning rate: without the schedule's per-step update) on real training images, timed for training
speed and profiled by layer shape. The ``stem`` grid of ``cnn28`` (``bench/tune.py --only cnn28-stem``) sets each
design's epochs from these speeds.

    python bench/cnn28_layers.py --rounds 5 > results/bench/cnn28_layers.txt   # stems 24 and 16, cpu preset

Prints, per stem: training images per second (median of ``--rounds``), then the slowest operations by their
own time over one profiled round, with their input shapes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import PRESETS, get  # noqa: E402
from pipelines.base import cpu_name  # noqa: E402
from pipelines.datasets import open_dataset  # noqa: E402
from pipelines.learned import trainer as tr  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", choices=PRESETS)
    p.add_argument("--stems", type=int, nargs="+", default=[24, 16], help="widths of the 28x28 block")
    p.add_argument("--steps", type=int, default=60, help="training steps per round (default 60)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--top", type=int, default=8, help="operations listed per stem (default 8)")
    args = p.parse_args()
    if min(args.stems) < 1 or args.steps < 1 or args.rounds < 1:
        print("error: --stems, --steps and --rounds must be positive", file=sys.stderr)
        return 2
    import torch
    from torch.profiler import ProfilerActivity, profile
    device = torch.device("cpu")
    base = get("cnn28").config(args.preset)
    data = open_dataset()
    n = base.batch_size * args.steps
    x = tr.images_tensor(data.x_train[:n], device)
    y = torch.from_numpy(data.y_train[:n].astype(np.int64))
    print(f"cnn28 preset {args.preset}, batch {base.batch_size}, {args.steps} steps per round, "
          f"on {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for stem in args.stems:
        cfg = get("cnn28").with_settings(base, model_kwargs=(("stem", stem),))
        model = tr.build_model(cfg, device, x, len(data.class_names))
        opt = tr.make_optimizer(model, cfg)
        amp = tr.autocast(tr.FP32, device)
        gen = torch.Generator().manual_seed(0)

        def one_round():
            for i in range(0, n, cfg.batch_size):
                xb, yb = x[i:i + cfg.batch_size], y[i:i + cfg.batch_size]
                xb = tr.augment(xb, gen, cfg.erase) if cfg.augment else xb
                tr.train_step(model, opt, tr.prepare(xb, cfg.image_size), yb, amp, None, cfg.label_smoothing)

        one_round()  # warm-up
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            one_round()
            times.append(time.perf_counter() - start)
        t = float(np.median(times))
        print(f"\nstem {stem:3d}: {n / t:8,.0f} training img/s (rounds {', '.join(f'{n / v:,.0f}' for v in times)})")
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            one_round()
        rows = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in rows)
        for e in rows[:args.top]:
            shape = next((s for s in e.input_shapes if s), [])
            print(f"  {e.self_cpu_time_total / total:6.1%}  {e.key:36s} {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
