"""cvbench-2012 runner: hand-crafted features + SVMs against LeNet and AlexNet, on the same data.

    python runner.py --all                   # every pipeline, best preset for this machine
    python runner.py --only alexnet --gpu    # one pipeline, on the GPU (paper preset)
    python runner.py --list                  # what is registered
    python runner.py --all --seeds 0 1 2     # three seeds: one row each, mean ± 95% CI in the report
    python runner.py --experiments all       # the report's experiments (docs/report.md)
    python runner.py --report                # results/report.md from whatever has run

Rows go to results/summary.csv (one per pipeline, preset, device, seed; written atomically) and
results/runs.jsonl (append-only history with the full configuration). See docs/results.md for every column and
PROTOCOL.md for how settings are chosen and verdicts reached.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
from pathlib import Path

from pipelines import DATASETS, DEFAULT_DATASET, EXPERIMENTS, PIPELINES, PRESETS, distributed, executors
from pipelines.base import DeviceError, DeviceInfo, RunContext, select_device
from pipelines.datasets import DataError, Dataset, named, open_dataset
from pipelines.run import SCORED, check_data, needs_gpu, plan_runs, record_lost, run_pipeline
from pipelines.store import ResultRow, ResultsError, read_runs, read_summary, runs_path, summary_path

SHOWN = ["dataset", "pipeline", "preset", "device", "seed", "n_train", "n_test", "epochs", "test_accuracy", "feature_seconds", "encode_seconds",
         "fit_seconds", "predict_seconds", "total_seconds", "status"]


class UsageError(Exception):
    """Bad command-line input; one-line message, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``error: ...``, exit 2), like every other bad input here."""

    def error(self, message: str):
        raise UsageError(f"{message} (see --help)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = ", ".join(PIPELINES)
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
    p.add_argument("--dataset", choices=list(DATASETS), nargs="+", metavar="NAME",
                   help="datasets by name, each a part of the grid (default " + DEFAULT_DATASET + "): "
                        + "; ".join(f"{name}: {entry.description}" for name, entry in DATASETS.items()))
    p.add_argument("--dataset-name", metavar="NAME",
                   help="name the data of --data-dir (its results are kept under this name); a registered name must "
                        "hold that dataset's images, and a name already in the results folder must hold the images "
                        "its rows were made on")
    p.add_argument("--resume", action="store_true",
                   help="skip pipelines whose row for this preset/device/seed is ok; continue training from checkpoints")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="cap each learned pipeline's training time (default: the preset's, e.g. alexnet in cpu)")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="the networks' precision (default auto: bf16 on CUDA where supported; on a CPU bf16 where a "
                        "probe before training measures it faster and the recipe was validated in it, else fp32)")
    p.add_argument("--experiment", nargs="+", metavar="NAME", default=[],
                   help=f"run these report experiments ({', '.join(EXPERIMENTS)}); size: smoke with "
                        "--preset smoke, else cpu")
    p.add_argument("--experiments", choices=["all"], help="run every report experiment")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run the grid (pipeline x seed, experiment arm x seed) on N local Dask worker processes; "
                        "default 1: serial, in this process, the only mode whose timings the report ranks "
                        f"(Dask: {executors.CLUSTER_EXTRA})")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the grid on a running Dask cluster (e.g. tcp://head:8786); its workers need this "
                        "package installed and the results folder on a shared filesystem (docs/runner.md)")
    p.add_argument("--report", action="store_true",
                   help="write results/report.md and its figures from the results (also done after --all)")
    args = p.parse_args(argv)
    if not (args.all or args.only or args.list or args.report or args.experiment or args.experiments):
        raise UsageError("nothing to run: give --all, --only NAME [NAME ...], --experiment NAME, --report or --list")
    unknown = [n for n in args.only or [] if n not in PIPELINES]
    if unknown:
        raise UsageError(f"unknown pipeline {', '.join(unknown)}; valid: {names}")
    bad = [n for n in args.experiment if n not in EXPERIMENTS]
    if bad:
        raise UsageError(f"unknown experiment {', '.join(bad)}; valid: {', '.join(EXPERIMENTS)}")
    args.experiment = list(EXPERIMENTS) if args.experiments else args.experiment
    given = list(dict.fromkeys(args.seeds)) if args.seeds else ([args.seed] if args.seed is not None else None)
    args.experiment_seeds = tuple(given) if given else None  # None: each experiment's own seeds
    args.seeds = given or [0]
    args.dataset = list(dict.fromkeys(args.dataset)) if args.dataset else [None]  # None: --data-dir or the default
    if args.data_dir and len(args.dataset) > 1:
        raise UsageError("--data-dir names where one dataset is: give it with one --dataset")
    if args.dataset_name and len(args.dataset) > 1:
        raise UsageError("--dataset-name names one dataset: give it with one --data-dir or --dataset")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, not {args.jobs}")
    if args.scheduler and args.jobs > 1:
        raise UsageError("--jobs and --scheduler do not combine: the cluster's workers decide the concurrency")
    if (args.jobs > 1 or args.scheduler) and distributed.world_size() > 1:
        raise UsageError("torchrun and --jobs/--scheduler do not combine: DDP runs inside one task (docs/runner.md)")
    if args.time_budget is not None and not (math.isfinite(args.time_budget) and args.time_budget > 0):
        raise UsageError("--time-budget must be a positive, finite number of seconds")
    bad_seeds = [s for s in args.seeds if not 0 <= s < 2**32]
    if bad_seeds:
        raise UsageError(f"seed {bad_seeds[0]} is out of range: seeds are integers from 0 to 2**32 - 1")
    return args


def print_list() -> None:
    for name, entry in PIPELINES.items():
        print(f"{name:16s} {entry.family:12s} {entry.description}")


def print_table(rows: list[ResultRow]) -> None:
    import pandas as pd
    frame = pd.DataFrame([dataclasses.asdict(r) for r in rows])[SHOWN]
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def run_pipelines(names: list[str], datasets: list[Dataset], ctx: RunContext, seeds: list[int], ex) -> bool:
    """Run the pipelines for each dataset and seed on the executor, print their rows; True if all are scored."""
    plan = [(name, c, data) for data in datasets for name, c in plan_runs(names, data, ctx, seeds)]
    tasks = [executors.Task(f"{name} {data.name} seed {c.seed}", run_pipeline, (name, ex.scatter(data), c),
                            gpu=needs_gpu(name, c))
             for name, c, data in plan]
    rows = [None] * len(plan)
    for done in ex.run(tasks):
        name, c, data = plan[done.index]
        rows[done.index] = done.value if done.error is None else record_lost(name, data, c, done.error)
    if rows and distributed.is_main():
        print_table(rows)
        print(f"rows written to {summary_path(ctx.results_dir)}")
    return all(r.status in SCORED for r in rows)  # a diverged run is a result: chance


def plan_experiments(names: list[str], datasets: list[Dataset], ctx: RunContext,
                     seeds: tuple[int, ...] | None) -> tuple[list, bool]:
    """Every experiment on every dataset planned, before any task runs (what planning measures, it measures
    alone); and False if one could not be (it is reported and the others go on)."""
    from pipelines.experiments.engine import plan_experiment
    plans, ok = [], True
    for data in datasets:
        views = {}
        for name in names:
            try:
                plans.append(plan_experiment(name, data, ctx, seeds, views))
            except Exception as exc:  # isolation, as for pipelines
                ok = False
                print(f"[experiment {name}] {data.name}: failed: {executors.one_line(exc)}", file=sys.stderr)
    return plans, ok


def run_experiments(plans: list, ex) -> bool:
    """Run all the plans' arms as one grid, writing each experiment when its arms are done; a failure costs that
    experiment (or that arm) and the others go on."""
    from pipelines.experiments.engine import run_plans
    ok = True
    for plan, outcome in run_plans(plans, ex):
        if isinstance(outcome, Exception):
            ok = False
            print(f"[experiment {plan.name}] failed: {executors.one_line(outcome)}", file=sys.stderr)
            continue
        failed = len(plan.failed)
        ok = ok and not failed
        print(f"[experiment {plan.name}] written to {outcome}: {plan.seconds:.0f} s of runs"
              + (f"; {failed} arm run(s) failed (--resume reruns only those)" if failed else ""))
    return ok


def write_report(results_dir: Path) -> bool:
    from pipelines.report import build_report
    try:
        print(f"report written to {build_report(results_dir)}")
        return True
    except Exception as exc:
        print(f"[report] failed: {executors.one_line(exc)}", file=sys.stderr)
        return False


def check_results_dir(folder: Path) -> None:
    """Before any work: the folder can be written (a file is created and removed) and its summary.csv reads."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UsageError(f"--results-dir {folder} is not writable ({exc.strerror or exc})") from None
    read_summary(summary_path(folder))
    problems: list[str] = []
    read_runs(runs_path(folder), problems)
    for problem in problems:
        print(f"warning: {problem} (the report skips them; new lines are appended intact)", file=sys.stderr)


def open_data(args: argparse.Namespace) -> list[Dataset]:
    """Every dataset of the run, opened, named and checked (its identity against the results folder) before any
    work starts."""
    datasets = [open_dataset(args.data_dir, name) for name in args.dataset]
    if args.dataset_name:
        datasets = [named(d, args.dataset_name) for d in datasets]
    for data in datasets:
        check_data(data, args.results_dir)
        print(f"data: {data.name} from {data.source} ({len(data.x_train):,} train / {len(data.x_test):,} test, "
              f"{data.image_size}x{data.image_size}, {'colour' if data.channels == 3 else 'grey'}, "
              f"{len(data.class_names)} classes; fingerprint {data.fingerprint})")
    return datasets


def run(args: argparse.Namespace) -> int:
    # on a cluster, the GPU is the workers' business: each names its own device in its rows
    device = DeviceInfo("cuda", "GPU workers of the Dask cluster") if args.gpu and args.scheduler else \
        select_device(args.gpu)
    distributed.init(device.kind)
    preset = args.preset or ("paper" if args.gpu else "cpu")
    check_results_dir(args.results_dir)
    ok = True
    if args.all or args.only or args.experiment:
        datasets = open_data(args)
        print(f"preset {preset}; device {device.kind} ({device.name}); seeds {' '.join(map(str, args.seeds))}; "
              f"{f'Dask scheduler {args.scheduler}' if args.scheduler else f'--jobs {args.jobs}'}")
        folder = args.results_dir.resolve() if args.jobs > 1 or args.scheduler else args.results_dir  # for workers
        ctx = RunContext(preset=preset, seed=args.seeds[0], device=device, results_dir=folder,
                         resume=args.resume, time_budget=args.time_budget, compile=args.compile,
                         precision=args.precision)
        plans, ok = plan_experiments(args.experiment, datasets, ctx, args.experiment_seeds)
        with executors.executor(args.jobs, args.scheduler) as ex:
            if args.all or args.only:
                ok = run_pipelines(list(PIPELINES) if args.all else args.only, datasets, ctx, args.seeds, ex) and ok
            ok = run_experiments(plans, ex) and ok
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
    except (UsageError, DeviceError, DataError, ResultsError, executors.GridError) as exc:
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
