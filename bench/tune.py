"""Choose every tuned setting on the validation split and store it under ``results/tuning/`` (PROTOCOL.md).

    python bench/tune.py                          # every grid, in order (each one's seconds: --summary)
    python bench/tune.py --only hog_svm cnn28     # some of them
    python bench/tune.py --list                   # the grids
    python bench/tune.py --summary                # the stored choices, as a markdown table

Each grid writes ``results/tuning/NAME.json``: the grid, every point's validation accuracy and the choice.
The pipelines' ``cpu`` presets hold the choices (``tests/test_protocol.py`` checks them against these files);
the experiments read theirs at run time. The test set is never loaded into a choice.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.base import RunContext, select_device  # noqa: E402
from pipelines.datasets import open_dataset  # noqa: E402
from pipelines.experiments import experiment_tunings  # noqa: E402
from pipelines.tuning import pipeline_tunings, run_tuning  # noqa: E402


def setting(field: str, value) -> str:
    """A grid value as the table shows it: network arguments (pairs, read back from JSON as lists) as
    ``name=value``, anything else as ``field value``."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
        return " ".join(f"{k}={v}" for k, v in value) or f"{field} defaults"
    return f"{field} {value}"


def summary(tunings) -> str:
    """One line per stored grid: training images, every point's validation accuracy, the choice, the time."""
    lines = ["| grid | trained on | validation accuracy per point | choice | seconds |", "|---|---|---|---|---|"]
    for t in tunings:
        if not t.path.exists():
            lines.append(f"| `{t.name}` | – | not run yet | – | – |")
            continue
        stored = json.loads(t.path.read_text())
        points = "; ".join(" ".join(setting(k, p[k]) for k in stored["grid"])
                           + f": {p['validation_accuracy']:.4f}" for p in stored["points"])
        choice = ", ".join(setting(k, v) for k, v in stored["choice"].items())
        seconds = sum(p["seconds"] for p in stored["points"])
        n_train = stored["fixed"].get("n_train") or stored["validation"]["fit_pool_images"]  # None: the whole pool
        lines.append(f"| `{t.name}` | {n_train:,} images | {points} | **{choice}** | {seconds:,.0f} |")
    return "\n".join(lines)


def main() -> int:
    tunings = {t.name: t for t in pipeline_tunings() + experiment_tunings()}
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"grids to run: {', '.join(tunings)}")
    p.add_argument("--list", action="store_true", help="print each grid and exit")
    p.add_argument("--summary", action="store_true", help="print the stored results as a markdown table and exit")
    p.add_argument("--data-dir", help="an MNIST-format IDX folder (default: Fashion-MNIST)")
    args = p.parse_args()
    unknown = [n for n in args.only or [] if n not in tunings]
    if unknown:
        print(f"error: unknown grid {', '.join(unknown)}; valid: {', '.join(tunings)}", file=sys.stderr)
        return 2
    chosen = [tunings[n] for n in args.only] if args.only else list(tunings.values())
    if args.list:
        for t in chosen:
            print(f"{t.name:28s} {t.pipeline:14s} grid {t.grid}  fixed {t.fixed}")
        return 0
    if args.summary:
        print(summary(chosen))
        return 0
    data, device = open_dataset(args.data_dir), select_device(False)
    ctx = RunContext(preset="cpu", seed=0, device=device, results_dir=Path("results"), dataset=data.name)
    print(f"validation split of {data.name}; machine: {device.name}")
    for t in chosen:
        start = time.perf_counter()
        payload = run_tuning(t, data, ctx)
        print(f"[tune {t.name}] choice {payload['choice']} -> {t.path} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
