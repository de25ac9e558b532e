"""cvbench-2012 runner: hand-crafted features + SVMs against LeNet and AlexNet, on the same data.

    python runner.py --all                   # every pipeline, best preset for this machine
    python runner.py --only alexnet --gpu    # one pipeline, on the GPU (paper preset)
    python runner.py --list                  # what is registered
    python runner.py --all --seeds 0 1 2     # three seeds: one row each, mean ± 95% CI in the report
    python runner.py --experiments all       # the report's experiments (see README for their time)
    python runner.py --report                # results/report.md from whatever has run

Rows go to results/summary.csv (one per pipeline, preset, device, seed; written atomically) and
results/runs.jsonl (append-only history with the full configuration). See README.md for every column and
PROTOCOL.md for how settings are chosen and verdicts reached.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from pipelines import REGISTRY, distributed
from pipelines.base import PRESETS, DeviceError, RunContext, seed_everything, select_device
from pipelines.data import DEFAULT_DATASET, DataError, Dataset
from pipelines.sources import DATASETS, open_dataset
from pipelines.report.experiments import EXPERIMENTS
from pipelines.results import (ResultRow, ResultsError, append_run, has_ok_row, provenance, read_summary,
                               save_predictions, upsert)

SHOWN = ["pipeline", "preset", "device", "seed", "n_train", "n_test", "epochs", "test_accuracy", "feature_seconds", "encode_seconds",
         "fit_seconds", "predict_seconds", "total_seconds", "status"]


class UsageError(Exception):
    """Bad command-line input; one-line message, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``error: ...``, exit 2), like every other bad input here."""

    def error(self, message: str):
        raise UsageError(f"{message} (see --help)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = ", ".join(REGISTRY)
    p = Parser(
        description="Run the cvbench-2012 pipelines on Fashion-MNIST and write results/summary.csv.",
        epilog=f"Pipelines: {names}. Presets: smoke (tiny, ~2 min for --all), cpu (default without --gpu; "
               "full data where affordable), paper (the chapter's recipes on full data; default with --gpu).")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", help="run every registered pipeline")
    what.add_argument("--only", nargs="+", metavar="NAME", help="run these pipelines, in this order")
    what.add_argument("--list", action="store_true", help="list the pipelines (name, family, description)")
    p.add_argument("--gpu", action="store_true", help="train the learned pipelines on CUDA (fails if there is none)")
    p.add_argument("--preset", choices=PRESETS, help="size of the runs (default: cpu, or paper with --gpu)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, help="one seed for numpy, torch and every random_state (default 0)")
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                       help="several seeds in one call: one row per pipeline and seed; experiments run exactly "
                            "these seeds instead of their own (default: at least 3 per arm, PROTOCOL.md)")
    p.add_argument("--results-dir", type=Path, default=Path("results"), help="where rows and figures go (default results/)")
    p.add_argument("--data-dir", help="a folder of images, named after the folder: MNIST-format IDX files, CIFAR's "
                                      "python batches, or one subfolder per class (train/ and test/, or split "
                                      "with a fixed seed), resized to 32x32; with --dataset, where that dataset "
                                      "is (default: $CVBENCH_DATA_DIR, data/fashion-mnist/, "
                                      "/usr/share/datasets/fashion-mnist/, else download)")
    p.add_argument("--dataset", choices=list(DATASETS), help=f"a dataset by name (default {DEFAULT_DATASET}); "
                   "digits: scikit-learn's 1,797 8x8 digits, offline, resized to 28x28, a fixed 75/25 split; "
                   "cifar10, cifar100: the official python batches, from --data-dir or downloaded (MD5 checked)")
    p.add_argument("--resume", action="store_true",
                   help="skip pipelines whose row for this preset/device/seed is ok; continue training from checkpoints")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="cap each learned pipeline's training time (default: the preset's, e.g. alexnet in cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--experiment", nargs="+", metavar="NAME", default=[],
                   help=f"run these report experiments ({', '.join(EXPERIMENTS)}); size: smoke with "
                        "--preset smoke, else cpu")
    p.add_argument("--experiments", choices=["all"], help="run every report experiment")
    p.add_argument("--report", action="store_true",
                   help="write results/report.md and its figures from the results (also done after --all)")
    args = p.parse_args(argv)
    if not (args.all or args.only or args.list or args.report or args.experiment or args.experiments):
        raise UsageError("nothing to run: give --all, --only NAME [NAME ...], --experiment NAME, --report or --list")
    unknown = [n for n in args.only or [] if n not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown pipeline {', '.join(unknown)}; valid: {names}")
    bad = [n for n in args.experiment if n not in EXPERIMENTS]
    if bad:
        raise UsageError(f"unknown experiment {', '.join(bad)}; valid: {', '.join(EXPERIMENTS)}")
    args.experiment = list(EXPERIMENTS) if args.experiments else args.experiment
    given = list(dict.fromkeys(args.seeds)) if args.seeds else ([args.seed] if args.seed is not None else None)
    args.experiment_seeds = tuple(given) if given else None  # None: each experiment's own seeds
    args.seeds = given or [0]
    if args.time_budget is not None and not (math.isfinite(args.time_budget) and args.time_budget > 0):
        raise UsageError("--time-budget must be a positive, finite number of seconds")
    bad_seeds = [s for s in args.seeds if not 0 <= s < 2**32]
    if bad_seeds:
        raise UsageError(f"seed {bad_seeds[0]} is out of range: seeds are integers from 0 to 2**32 - 1")
    return args


def print_list() -> None:
    for name, entry in REGISTRY.items():
        print(f"{name:16s} {entry.family:12s} {entry.description}")


def base_row(name: str, ctx: RunContext, data: Dataset, device, prov: dict) -> ResultRow:
    return ResultRow(pipeline=name, family=REGISTRY[name].family, preset=ctx.preset, dataset=data.name,
                     seed=ctx.seed, device=device.kind, device_name=device.name, compiled=ctx.compile,
                     started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **prov)


def load_pipeline(name: str):
    """The pipeline and None, or None and the import error (a missing library still costs only one row)."""
    try:
        return REGISTRY[name].load(), None
    except Exception as exc:
        return None, exc


def run_one(name: str, data: Dataset, ctx: RunContext, prov: dict) -> ResultRow | None:
    """Run one pipeline isolated: an exception becomes a failed row. None when --resume skips it."""
    pipeline, load_error = load_pipeline(name)
    device = pipeline.device_for(ctx.device) if pipeline else ctx.device
    if ctx.resume and has_ok_row(ctx.results_dir / "summary.csv", ctx.key(name, device.kind)):
        print(f"[{name}] skipped: an ok row for {ctx.dataset}, preset {ctx.preset}, {device.kind}, seed {ctx.seed} "
              "exists (--resume)")
        return None
    cfg = pipeline.config(ctx.preset) if pipeline else None
    row = base_row(name, ctx, data, device, prov)
    seed_everything(ctx.seed)
    start = time.perf_counter()
    outcome = None
    try:
        if load_error is not None:
            raise load_error
        outcome = pipeline.run(data, cfg, ctx)
        fill_row(row, outcome)
        row.full_data = outcome.n_train == len(data.x_train) and outcome.n_test == len(data.x_test)
    except Exception as exc:  # isolation: one failure costs one row
        row.status, row.error = "failed", one_line(exc)
        print(f"[{name}] failed: {row.error}", file=sys.stderr)
    row.total_seconds = round(time.perf_counter() - start, 3)
    if distributed.is_main():
        record(ctx, row, cfg, data, outcome)
    return row


ROUNDING = {"test_accuracy": 4, "train_accuracy": 4, "feature_seconds": 3, "fit_seconds": 3,
            "predict_seconds": 3, "train_images_per_second": 1, "epochs": 3}


def fill_row(row: ResultRow, outcome) -> None:
    for f in ("test_accuracy", "train_accuracy", "n_train", "n_test", "image_size", "epochs", "feature_seconds",
              "fit_seconds", "predict_seconds", "train_images_per_second", "params"):
        value = getattr(outcome, f)
        setattr(row, f, round(value, ROUNDING[f]) if f in ROUNDING and value is not None else value)
    for key, value in outcome.extra.items():
        setattr(row, key, value)


def record(ctx: RunContext, row: ResultRow, cfg, data: Dataset, outcome) -> None:
    """Upsert the summary row, append the history line, keep the predictions for the report."""
    config = {"pipeline": dataclasses.asdict(cfg) if cfg is not None else None, "preset": ctx.preset, "seed": ctx.seed,
              "time_budget": ctx.time_budget, "compile": ctx.compile, "data_source": data.source}
    upsert(ctx.results_dir / "summary.csv", row)
    append_run(ctx.results_dir / "runs.jsonl", row, config, outcome.curve if outcome is not None else None)
    if outcome is not None and outcome.y_pred is not None:
        save_predictions(ctx.results_dir, row, outcome.y_true, outcome.y_pred)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


def print_table(rows: list[ResultRow]) -> None:
    import pandas as pd
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])[SHOWN]
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def run_pipelines(names: list[str], data: Dataset, ctx: RunContext, seeds: list[int]) -> bool:
    """Run the pipelines for each seed, print their rows; True if all are ok."""
    if distributed.world_size() > 1:
        names = [n for n in names if REGISTRY[n].family == "learned"]
    rows = [r for seed in seeds for r in (run_one(n, data, dataclasses.replace(ctx, seed=seed), provenance())
                                          for n in names) if r is not None]
    if rows and distributed.is_main():
        print_table(rows)
        print(f"rows written to {ctx.results_dir / 'summary.csv'}")
    return all(r.status == "ok" for r in rows)


def run_experiments(names: list[str], data: Dataset, ctx: RunContext, seeds: tuple[int, ...] | None) -> bool:
    """Run each experiment isolated: a failure is reported in one line and the others go on."""
    from pipelines.report.experiments import run_experiment
    ok = True
    for name in names:
        start = time.perf_counter()
        try:
            path = run_experiment(name, data, ctx, seeds)
            print(f"[experiment {name}] written to {path} in {time.perf_counter() - start:.0f} s")
        except Exception as exc:  # isolation, as for pipelines
            ok = False
            print(f"[experiment {name}] failed: {one_line(exc)}", file=sys.stderr)
    return ok


def write_report(results_dir: Path) -> bool:
    from pipelines.report import build_report
    try:
        print(f"report written to {build_report(results_dir)}")
        return True
    except Exception as exc:
        print(f"[report] failed: {one_line(exc)}", file=sys.stderr)
        return False


def check_results_dir(folder: Path) -> None:
    """Before any work: the folder can be written (a file is created and removed) and its summary.csv reads."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"--results-dir {folder} is not writable ({exc.strerror or exc})") from None
    read_summary(folder / "summary.csv")
    from pipelines.report.inputs import read_runs
    problems: list[str] = []
    read_runs(folder / "runs.jsonl", problems)
    for problem in problems:
        print(f"warning: {problem} (the report skips them; new lines are appended intact)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    device = select_device(args.gpu)
    distributed.init(device.kind)
    preset = args.preset or ("paper" if args.gpu else "cpu")
    check_results_dir(args.results_dir)
    ok = True
    if args.all or args.only or args.experiment:
        data = open_dataset(args.data_dir, args.dataset)
        print(f"data: {data.name} from {data.source} ({len(data.x_train):,} train / {len(data.x_test):,} test, "
              f"{data.image_size}x{data.image_size}, {'colour' if data.channels == 3 else 'grey'}, "
              f"{len(data.class_names)} classes); preset {preset}; device {device.kind} ({device.name}); "
              f"seeds {' '.join(map(str, args.seeds))}")
        ctx = RunContext(preset=preset, seed=args.seeds[0], device=device, results_dir=args.results_dir,
                         resume=args.resume, time_budget=args.time_budget, compile=args.compile, dataset=data.name)
        if args.all or args.only:
            ok = run_pipelines(list(REGISTRY) if args.all else args.only, data, ctx, args.seeds)
        if args.experiment:
            ok = run_experiments(args.experiment, data, ctx, args.experiment_seeds) and ok
    if (args.report or args.all or args.experiment) and distributed.is_main():
        ok = write_report(args.results_dir) and ok
    distributed.shutdown()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if args.list:
            print_list()
            return 0
        return run(args)
    except (UsageError, DeviceError, DataError, ResultsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rows already written are kept in the results folder", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
