"""The run grid: the runner's work as independent tasks, handed to an executor.

    python runner.py --all --seeds 0 1 2                 # --jobs 1 (default): serial, in this process
    python runner.py --all --seeds 0 1 2 --jobs 2        # 2 local Dask worker processes (LocalCluster)
    python runner.py --experiments all --scheduler tcp://head:8786   # a running Dask cluster

A task is a module-level function and its arguments (a pipeline run: ``run_pipeline``; an experiment arm:
``experiments.run_arm_task``), so Dask can ship it to another process or machine. Executors yield each task's
``Done`` as it finishes: its value, or a one-line error when it raised or its worker died (one task, one row;
the rest of the grid goes on). Every task runs inside ``host_slot``, which records the host it ran on and the
most tasks of this suite running there at once during it (``concurrency``; 1: it ran alone), so that times
taken side by side are marked in the report and never ranked against serial ones. ``--jobs 1`` is for
timings; more is for throughput.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from tqdm.auto import tqdm

from . import REGISTRY, distributed
from .base import RunContext, seed_everything
from .data import Dataset
from .results import ResultRow, append_run, save_predictions, upsert

CLUSTER_EXTRA = "pip install -e '.[cluster]'"  # what installs Dask (pyproject.toml's ``cluster`` extra)
CONNECT_TIMEOUT = "20s"  # how long ``--scheduler`` waits for the scheduler to answer


class GridError(Exception):
    """The grid cannot start (Dask missing, the scheduler unreachable); one-line message."""


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and message, whitespace folded, at most 500 characters."""
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


# --- where a task ran, and beside how many others ---------------------------------------------------------------

SLOTS = Path(tempfile.gettempdir()) / f"cvbench-2012-tasks-{os.getuid() if hasattr(os, 'getuid') else 0}"
SAMPLE_SECONDS = 0.5


@dataclass
class Slot:
    host: str
    concurrency: int = 1  # the most tasks of this suite (this user's) running on the host at once, this one included


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_tasks() -> int:
    """How many tasks hold a slot on this host now; markers left by killed processes are removed."""
    count = 0
    for marker in SLOTS.glob("*-*"):
        if _alive(int(marker.name.split("-")[0])):
            count += 1
        else:
            marker.unlink(missing_ok=True)
    return count


@contextmanager
def host_slot() -> Iterator[Slot]:
    """Hold a marker file while the task runs and sample, every ``SAMPLE_SECONDS``, how many tasks hold one."""
    SLOTS.mkdir(parents=True, exist_ok=True)
    marker = SLOTS / f"{os.getpid()}-{uuid.uuid4().hex}"
    marker.touch()
    slot, stop = Slot(socket.gethostname(), running_tasks()), threading.Event()

    def watch():
        while not stop.wait(SAMPLE_SECONDS):
            slot.concurrency = max(slot.concurrency, running_tasks())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield slot
    finally:
        stop.set()
        watcher.join()
        slot.concurrency = max(slot.concurrency, running_tasks())
        marker.unlink(missing_ok=True)


# --- tasks and executors -------------------------------------------------------------------------------------------

@dataclass
class Task:
    label: str
    fn: Callable
    args: tuple
    gpu: bool = False  # ask the cluster for a worker with the resource ``GPU`` (``dask worker --resources GPU=1``)


@dataclass
class Done:
    index: int  # the task's position in the list given to ``run``
    value: Any = None
    error: str | None = None


def limit_threads(threads: int | None) -> None:
    """Give this process's torch, OpenMP, BLAS, OpenCV and joblib ``threads`` threads (None: leave them)."""
    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)


def call(fn: Callable, args: tuple, threads: int | dict | None) -> Any:
    """What a worker runs: ``fn(*args)`` with its threads limited (``threads`` per host name, for a cluster)."""
    if isinstance(threads, dict):
        threads = threads.get(socket.gethostname())
    limit_threads(threads)
    return fn(*args)


class Progress:
    """The one bar over the grid: tasks done of the total, and failures."""

    def __init__(self, total: int):
        self.failed = 0
        self.bar = tqdm(total=total, desc="grid", unit="task", mininterval=1.0, disable=total < 2)

    def step(self, done: Done) -> Done:
        if done.error is not None:
            self.failed += 1
            self.bar.set_postfix(failed=self.failed)
        self.bar.update(1)
        return done

    def close(self):
        self.bar.close()


class Serial:
    """``--jobs 1``: each task in this process, in order; the timings of record."""
    concurrent = False

    def scatter(self, value):
        return value

    def run(self, tasks: list[Task]) -> Iterator[Done]:
        progress = Progress(len(tasks))
        try:
            for i, task in enumerate(tasks):
                try:
                    done = Done(i, value=task.fn(*task.args))
                except Exception as exc:  # isolation: one task, one failure
                    done = Done(i, error=one_line(exc))
                yield progress.step(done)
        finally:
            progress.close()

    def close(self):
        pass


class DaskGrid:
    """``--jobs N`` (a ``LocalCluster`` of N single-task worker processes) or ``--scheduler ADDRESS``."""
    concurrent = True

    def __init__(self, jobs: int | None = None, address: str | None = None):
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise GridError(f"--jobs above 1 and --scheduler need Dask's distributed: {CLUSTER_EXTRA}") from None
        # A worker that dies fails its task after a second try (an innocent task caught by the death of its
        # worker, e.g. one whose result was not yet reported, then succeeds elsewhere).
        dask.config.set({"distributed.scheduler.allowed-failures": 1,
                         "distributed.scheduler.worker-saturation": 1.0,  # a worker holds only the task it runs
                         "distributed.worker.daemon": False})  # joblib may use the worker's cores (limit_threads)
        self.cluster = None
        try:
            if address:
                self.client = Client(address, timeout=CONNECT_TIMEOUT)
            else:
                import logging
                from unittest import mock
                # per-task bars in serial mode only: workers inherit this at spawn, before they import tqdm
                with mock.patch.dict(os.environ, {"TQDM_DISABLE": "1"}):
                    self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
        except (OSError, TimeoutError) as exc:
            raise GridError(f"cannot reach the Dask scheduler at {address}: {one_line(exc)}") from None
        self.threads = self._threads_per_host()

    def _threads_per_host(self) -> dict[str, int]:
        """Each host's cores shared among the task slots (worker threads) on it, by host name."""
        info = self.client.scheduler_info()["workers"]
        names, cores = self.client.run(socket.gethostname), self.client.run(os.cpu_count)
        slots = Counter()
        for addr, name in names.items():
            slots[name] += info[addr]["nthreads"]
        return {name: max(1, (cores[addr] or 1) // slots[name]) for addr, name in names.items()}

    def scatter(self, value):
        return self.client.scatter(value, broadcast=True, hash=False)

    def run(self, tasks: list[Task]) -> Iterator[Done]:
        from distributed import as_completed
        progress = Progress(len(tasks))
        futures, index = [], {}
        for i, task in enumerate(tasks):
            future = self.client.submit(call, task.fn, task.args, self.threads, pure=False,
                                        key=f"{task.label}-{uuid.uuid4().hex[:8]}",
                                        resources={"GPU": 1} if task.gpu else None)
            futures.append(future)
            index[future.key] = i
        try:
            # results are fetched as each task finishes: a worker that dies later cannot take them with it
            for future, value in as_completed(futures, with_results=True, raise_errors=False):
                i = index[future.key]
                done = Done(i, error=one_line(future.exception())) if future.status == "error" else Done(i, value)
                future.release()
                yield progress.step(done)
        finally:
            progress.close()

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def executor(jobs: int = 1, scheduler: str | None = None):
    """``Serial`` for ``--jobs 1``, else a ``DaskGrid``; close it when done."""
    if scheduler or jobs > 1:
        return DaskGrid(jobs=None if scheduler else jobs, address=scheduler)
    return Serial()


# --- one pipeline run: a task ------------------------------------------------------------------------------------

ROUNDING = {"test_accuracy": 4, "train_accuracy": 4, "feature_seconds": 3, "fit_seconds": 3,
            "predict_seconds": 3, "train_images_per_second": 1, "epochs": 3}


def load_pipeline(name: str):
    """The pipeline and None, or None and the import error (a missing library still costs only one row)."""
    try:
        return REGISTRY[name].load(), None
    except Exception as exc:
        return None, exc


def base_row(name: str, ctx: RunContext, dataset: str, device, prov: dict) -> ResultRow:
    return ResultRow(pipeline=name, family=REGISTRY[name].family, preset=ctx.preset, dataset=dataset,
                     seed=ctx.seed, device=device.kind, device_name=device.name, compiled=ctx.compile,
                     started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), **prov)


def fill_row(row: ResultRow, outcome) -> None:
    for f in ("test_accuracy", "train_accuracy", "n_train", "n_test", "image_size", "epochs", "feature_seconds",
              "fit_seconds", "predict_seconds", "train_images_per_second", "params"):
        value = getattr(outcome, f)
        setattr(row, f, round(value, ROUNDING[f]) if f in ROUNDING and value is not None else value)
    for key, value in outcome.extra.items():
        setattr(row, key, value)


def record(ctx: RunContext, row: ResultRow, cfg, source: str, outcome) -> None:
    """Upsert the summary row, append the history line, keep the predictions for the report."""
    config = {"pipeline": dataclasses.asdict(cfg) if cfg is not None else None, "preset": ctx.preset, "seed": ctx.seed,
              "time_budget": ctx.time_budget, "compile": ctx.compile, "data_source": source}
    upsert(ctx.results_dir / "summary.csv", row)
    append_run(ctx.results_dir / "runs.jsonl", row, config, outcome.curve if outcome is not None else None)
    if outcome is not None and outcome.y_pred is not None:
        save_predictions(ctx.results_dir, row, outcome.y_true, outcome.y_pred)


def run_pipeline(name: str, data: Dataset, ctx: RunContext, prov: dict) -> ResultRow:
    """Run one pipeline isolated (an exception becomes a failed row), write its row and return it."""
    pipeline, load_error = load_pipeline(name)
    device = pipeline.device_for(ctx.device) if pipeline else ctx.device
    cfg = pipeline.config(ctx.preset) if pipeline else None
    row = base_row(name, ctx, data.name, device, prov)
    seed_everything(ctx.seed)
    outcome = None
    with host_slot() as slot:
        start = time.perf_counter()
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
    row.host, row.concurrency = slot.host, slot.concurrency
    if distributed.is_main():
        record(ctx, row, cfg, data.source, outcome)
    return row


def record_lost(name: str, data: Dataset, ctx: RunContext, prov: dict, error: str) -> ResultRow:
    """The failed row of a pipeline task that never returned (its worker died), written by the runner."""
    pipeline, _ = load_pipeline(name)
    device = pipeline.device_for(ctx.device) if pipeline else ctx.device
    row = base_row(name, ctx, data.name, device, prov)
    row.status, row.error = "failed", error
    print(f"[{name}] failed: {error}", file=sys.stderr)
    record(ctx, row, pipeline.config(ctx.preset) if pipeline else None, data.source, None)
    return row
