"""One pipeline run -> one row: what the runner plans (``--resume`` included), runs as a task of the grid, and
writes. A row records the ``config_hash`` of the configuration that ran and the ``data_fingerprint`` of its data
when it is written; keeping a row (``--resume``) and setting one aside (the report) each compare them with
today's (``current_hash``), and nothing else.

    python runner.py --only hog_svm cnn28 --seeds 0 1 2
"""
from __future__ import annotations

import dataclasses
import sys
import time
from datetime import datetime, timezone

from . import PIPELINES, distributed, family
from .base import DeviceError, DeviceInfo, RunContext, cpu_name, seed_everything, select_device
from .datasets import DataError, Dataset, check_name
from .executors import host_slot, one_line
from .store import (COLUMNS, KEY, ResultRow, append_run, provenance, read_summary, runs_path, save_curve,
                    save_predictions, summary_path, upsert)

ROUNDING = {"test_accuracy": 4, "train_accuracy": 4, "feature_seconds": 3, "encode_seconds": 3, "fit_seconds": 3,
            "predict_seconds": 3, "train_images_per_second": 1, "epochs": 3, "compile_seconds": 3,
            "precision_probe_seconds": 3}
DIVERGED = "diverged"  # a row's status when its network's loss became NaN or infinite: it scores chance
SCORED = ("ok", DIVERGED)  # the statuses of rows that carry a test accuracy


def load_pipeline(name: str):
    """The pipeline and None, or None and the import error (a missing library still costs only one row)."""
    try:
        return PIPELINES[name].load(), None
    except Exception as exc:
        return None, exc


def device_for(name: str, requested: DeviceInfo) -> DeviceInfo:
    """Where pipeline ``name`` runs: a learned one where asked, a hand-crafted one always on the CPU."""
    return requested if family(name) == "learned" else DeviceInfo("cpu", cpu_name())


def needs_gpu(name: str, ctx: RunContext) -> bool:
    """Whether a task of pipeline ``name`` must go to a worker with a GPU."""
    return ctx.device.kind == "cuda" and family(name) == "learned"


def here(device: DeviceInfo) -> DeviceInfo:
    """``device`` as the process running the task names it (a Dask worker its own CPU or GPU, not the runner's)."""
    try:
        return select_device(device.kind == "cuda")
    except DeviceError:
        return device  # the run itself then fails, in its own row


# --- what ran: the configuration's hash ---------------------------------------------------------------------------

def current_hash(name: str, preset: str, time_budget: float | None = None) -> str | None:
    """Today's ``config_hash`` of pipeline ``name`` at ``preset`` (with ``--time-budget``'s budget where given); None
    where the pipeline or the preset is gone, or cannot be loaded here."""
    pipeline, error = load_pipeline(name) if name in PIPELINES else (None, None)
    if pipeline is None or preset not in pipeline.presets:
        return None
    return pipeline.hash(pipeline.effective(pipeline.config(preset), time_budget))


# --- one run --------------------------------------------------------------------------------------------------------

def base_row(name: str, ctx: RunContext, data: Dataset, device: DeviceInfo) -> ResultRow:
    return ResultRow(pipeline=name, family=family(name), preset=ctx.preset, dataset=data.name, seed=ctx.seed,
                     device=device.kind, device_name=device.name, compiled=ctx.compile,
                     data_fingerprint=data.fingerprint,
                     started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance())


def fill_row(row: ResultRow, values: dict) -> None:
    """Set an outcome's values on the row (rounded where ``ROUNDING`` says); a name that is no column is an error."""
    unknown = sorted(set(values) - set(COLUMNS))
    if unknown:
        raise ValueError(f"outcome values that are no ResultRow column: {', '.join(unknown)}")
    for name, value in values.items():
        setattr(row, name, round(value, ROUNDING[name]) if name in ROUNDING and value is not None else value)


def diverged(row: ResultRow, cfg, data: Dataset, error: str) -> None:
    """Mark ``row`` as a diverged run: chance accuracy on the images it would have scored (PROTOCOL.md §3)."""
    n_train, n_test = (min(n or len(x), len(x)) for n, x in ((cfg.n_train, data.x_train), (cfg.n_test, data.x_test)))
    row.status, row.error, row.truncated = DIVERGED, error, False
    row.test_accuracy = round(1 / len(data.class_names), ROUNDING["test_accuracy"])
    row.n_train, row.n_test, row.full_data = n_train, n_test, n_train == len(data.x_train) and n_test == len(data.x_test)


def record(ctx: RunContext, row: ResultRow, config: dict | None, source: str, outcome) -> None:
    """Upsert the summary row, append the history line (with the configuration record behind the row's hash),
    keep the predictions for the report."""
    line = {"pipeline": config, "preset": ctx.preset, "seed": ctx.seed, "time_budget": ctx.time_budget,
            "compile": ctx.compile, "data_source": source}
    upsert(summary_path(ctx.results_dir), row)
    append_run(runs_path(ctx.results_dir), row, line, outcome.curve if outcome is not None else None)
    if outcome is not None and outcome.y_pred is not None:
        save_predictions(ctx.results_dir, row, outcome.y_true, outcome.y_pred)
    if outcome is not None and outcome.curve:
        save_curve(ctx.results_dir, row, outcome.curve)


def run_pipeline(name: str, data: Dataset, ctx: RunContext) -> ResultRow:
    """Run one pipeline isolated (an exception becomes a failed row, a diverged network a row at chance), write
    its row and return it. The device's name and the provenance (commit, versions) are read where it runs."""
    ctx = dataclasses.replace(ctx, device=here(ctx.device))
    pipeline, load_error = load_pipeline(name)
    row = base_row(name, ctx, data, device_for(name, ctx.device))
    cfg = pipeline.effective(pipeline.config(ctx.preset), ctx.time_budget) if pipeline else None
    config = pipeline.record(cfg) if pipeline else None
    row.config_hash = pipeline.hash(cfg) if pipeline else ""
    diverges = pipeline.diverges if pipeline else ()
    seed_everything(ctx.seed)
    outcome = None
    with host_slot() as slot:
        start = time.perf_counter()
        try:
            if load_error is not None:
                raise load_error
            outcome = pipeline.run(data, cfg, ctx)
            fill_row(row, outcome.values)
            row.full_data = row.n_train == len(data.x_train) and row.n_test == len(data.x_test)
        except diverges as exc:  # a diverged network scores chance (PROTOCOL.md §3)
            diverged(row, cfg, data, one_line(exc))
            print(f"[{name}] diverged, scored as chance: {row.error}", file=sys.stderr)
        except Exception as exc:  # isolation: one failure costs one row
            row.status, row.error = "failed", one_line(exc)
            print(f"[{name}] failed: {row.error}", file=sys.stderr)
        row.total_seconds = round(time.perf_counter() - start, 3)
    row.host, row.concurrency = slot.host, slot.concurrency
    if distributed.is_main():
        record(ctx, row, config, data.source, outcome)
    return row


def record_lost(name: str, data: Dataset, ctx: RunContext, error: str) -> ResultRow:
    """The failed row of a pipeline task that never returned (its worker died, or it raised outside the
    pipeline), written by the runner; if even that cannot be written, it is only printed."""
    row = base_row(name, ctx, data, device_for(name, ctx.device))
    row.status, row.error = "failed", error
    print(f"[{name}] failed: {error}", file=sys.stderr)
    if distributed.is_main():
        try:
            record(ctx, row, None, data.source, None)
        except Exception as exc:
            print(f"[{name}] its failed row could not be written either: {one_line(exc)}", file=sys.stderr)
    return row


# --- before any work: the data's identity, and what --resume keeps ---------------------------------------------------

def check_data(data: Dataset, results_dir) -> None:
    """A known name holds its known content (``datasets.check_name``), and the results folder's rows of this name
    were made on this content: rows of different data never merge under one name."""
    check_name(data)
    rows = read_summary(summary_path(results_dir))
    prints = set(rows.data_fingerprint[(rows.dataset == data.name) & rows.data_fingerprint.notna()].astype(str))
    other = sorted(prints - {data.fingerprint, ""})
    if other:
        raise DataError(f"{summary_path(results_dir)} holds rows of {data.name} made on other images (fingerprint "
                        f"{other[0]}; this data: {data.fingerprint}): give this data a name of its own with "
                        "--dataset-name NAME, or use another --results-dir")


def plan_runs(names: list[str], data: Dataset, ctx: RunContext, seeds: list[int]) -> list[tuple[str, RunContext]]:
    """(pipeline, its context) for each seed and pipeline to run on ``data``; with ``--resume``, a row of the same
    key, configuration hash and data fingerprint is kept, and any other row of that key runs again from scratch."""
    if distributed.world_size() > 1:
        names = [n for n in names if family(n) == "learned"]
    rows = read_summary(summary_path(ctx.results_dir)) if ctx.resume else None
    plan = []
    for seed in seeds:
        for name in names:
            sctx = dataclasses.replace(ctx, seed=seed, dataset=data.name)
            verdict = resume_verdict(rows, name, sctx, data) if rows is not None else None
            if verdict == "keep":
                print(f"[{name}] skipped: its row for {data.name}, preset {ctx.preset}, seed {seed} is current "
                      "(--resume)")
                continue
            if verdict:  # from scratch: its checkpoint, if any, is of that other configuration or data
                print(f"[{name}] run again: its row for {data.name}, preset {ctx.preset}, seed {seed} {verdict}")
                sctx = dataclasses.replace(sctx, resume=False)
            plan.append((name, sctx))
    return plan


def resume_verdict(rows, name: str, ctx: RunContext, data: Dataset) -> str | None:
    """"keep", what differs (the row runs again from scratch), or None (no such row: run, resuming a checkpoint)."""
    key = ctx.key(name, device_for(name, ctx.device).kind)
    same = rows[(rows[KEY].astype(str) == [str(key[k]) for k in KEY]).all(axis=1)] if len(rows) else rows
    if same.empty or same.status.iloc[0] not in SCORED:
        return None
    row = same.iloc[0]
    want = current_hash(name, ctx.preset, ctx.time_budget)
    if str(row.config_hash) != want:
        return "was made with another configuration (config_hash differs)"
    if str(row.data_fingerprint) != data.fingerprint:
        return "was made on other data (data_fingerprint differs)"
    asked = {"fp32": "fp32", "bf16": "bf16-autocast"}.get(ctx.precision)
    if asked and family(name) == "learned" and str(row.precision) != asked:
        return f"ran in {row.precision}, and --precision asks for {asked}"
    return "keep"
