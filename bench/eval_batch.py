"""How fast a learned pipeline's preset predicts, by evaluation batch size: the trainer's own ``evaluate``
(eval mode, inference mode, the preset's test-time averaging) on the 10,000 test images, a freshly built
network (speed does not depend on the weights). A learned pipeline's ``eval_batch`` on a CPU is set from this.

    python bench/eval_batch.py > results/bench/eval_batch.txt      # cnn28, cpu preset, the default sizes

Prints images per second per batch size (median of ``--rounds``), on the machine it ran on.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import PIPELINES, PRESETS, family, get  # noqa: E402
from pipelines.base import cpu_name  # noqa: E402
from pipelines.datasets import open_dataset  # noqa: E402
from pipelines.learned import trainer as tr  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="cnn28", help="a learned pipeline (default cnn28)")
    p.add_argument("--preset", default="cpu", choices=PRESETS)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 500, 1000, 2000])
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if args.pipeline not in PIPELINES or family(args.pipeline) != "learned":
        learned = ", ".join(n for n in PIPELINES if family(n) == "learned")
        print(f"error: --pipeline must be a learned pipeline ({learned})", file=sys.stderr)
        return 2
    cfg = get(args.pipeline).config(args.preset)
    import torch
    device = torch.device("cpu")
    data = open_dataset()
    x = tr.images_tensor(data.x_test, device)
    model = tr.build_model(cfg, device, x, len(data.class_names))
    amp = tr.autocast(tr.FP32, device)
    print(f"{args.pipeline} preset {args.preset} ({'image and mirror' if cfg.flip_test else 'image only'}), "
          f"{len(x):,} test images, on {cpu_name()}, torch {torch.__version__}")
    for size in args.sizes:
        tr.evaluate(model, x[:size], cfg, amp, size)  # warm-up
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            tr.evaluate(model, x, cfg, amp, size)
            times.append(time.perf_counter() - start)
        t = float(np.median(times))
        print(f"eval batch {size:5d}: {len(x) / t:8,.0f} img/s ({t:.2f} s per pass; rounds "
              f"{', '.join(f'{v:.2f}' for v in times)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
