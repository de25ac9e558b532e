"""Time to accuracy on this machine: the best hand-crafted pipeline against ``cnn28``, in one run.

    python bench/time_to_accuracy.py                 # hog_kernel_svm and cnn28, cpu preset, seed 0
    python bench/time_to_accuracy.py --seeds 0 1 2   # more seeds
    python bench/time_to_accuracy.py --gpu           # cnn28 on CUDA (the hand-crafted side stays on the CPU)

Both pipelines run through the runner (rows, runs.jsonl with cnn28's per-epoch curve, under
``--results-dir``, by default ``results/bench/time_to_accuracy/``, apart from the main table). For the
hand-crafted pipeline's mean test accuracy A it prints: its mean time to test predictions (features, fit,
prediction), the CNN's training time until its test accuracy reaches A for good (scoring after each epoch is
not training time), and the ratio; the same rows go to ``reach.json`` and the curve to a
``time_to_accuracy_*.png`` in that folder. The rules are the report's (``pipelines/analysis/reach.py``:
``pairings``, ``reach_rows``). The CNN's schedule is its preset's, fixed in advance.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import get  # noqa: E402
from pipelines.analysis.reach import pairings, reach_rows, time_to_accuracy_figures  # noqa: E402
from pipelines.base import DeviceError, RunContext, cpu_name, select_device  # noqa: E402
from pipelines.datasets import DataError, open_dataset  # noqa: E402
from pipelines.run import run_pipeline  # noqa: E402
from pipelines.store import atomic_write_text, figures_dir, read_curves, read_summary, summary_path  # noqa: E402

HANDCRAFTED, LEARNED = "hog_kernel_svm", "cnn28"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", help="preset of both pipelines (default cpu)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to run (default 0)")
    parser.add_argument("--gpu", action="store_true", help=f"train {LEARNED} on CUDA")
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: the system copy or the cache)")
    parser.add_argument("--results-dir", type=Path, default=Path("results/bench/time_to_accuracy"))
    args = parser.parse_args(argv)
    presets = [p for p in get(LEARNED).presets if p in get(HANDCRAFTED).presets]
    if args.preset not in presets:
        parser.error(f"unknown preset {args.preset!r}; choose one of {', '.join(presets)}")
    try:
        data, device = open_dataset(args.data_dir), select_device(args.gpu)
    except (DataError, DeviceError) as exc:
        parser.exit(2, f"error: {exc}\n")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    base = RunContext(preset=args.preset, seed=0, device=device, results_dir=args.results_dir, dataset=data.name)
    for seed in args.seeds:
        for name in (HANDCRAFTED, LEARNED):
            ctx = dataclasses.replace(base, seed=seed, device=select_device(False) if name == HANDCRAFTED else device)
            run_pipeline(name, data, ctx)
    table = read_summary(summary_path(args.results_dir))
    ok = table[(table.dataset == data.name) & (table.status == "ok")]
    pairs = pairings(ok, read_curves(args.results_dir, ok))
    rows = [r for r in reach_rows(pairs)
            if r["learned"] == LEARNED and r["preset"] == args.preset and r["seed"] in args.seeds]
    figures = time_to_accuracy_figures(pairs, figures_dir(args.results_dir, data.name))
    machines = {"cpu": cpu_name(), LEARNED: device.name}
    atomic_write_text(args.results_dir / "reach.json", json.dumps({"machines": machines, "rows": rows}, indent=1))
    print(f"\nmachines: {machines}; preset {args.preset}; figures: {', '.join(str(p) for p in figures)}")
    for r in rows:
        reached = (f"reaches it for good after {r['reached_after_seconds']:.1f} s of training (epoch "
                   f"{r['reached_at_epoch']}): ratio {r['ratio']:.2f}" if r["reached"] else
                   f"does not reach it (best {r['learned_best_accuracy']:.4f}): ratio below 1")
        print(f"seed {r['seed']}: {r['handcrafted']} {r['handcrafted_accuracy']:.4f} in {r['handcrafted_seconds']:.1f} s "
              f"(features + fit + prediction); {LEARNED} {reached}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
