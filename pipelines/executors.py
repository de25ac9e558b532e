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
from .base import DeviceError, DeviceInfo, RunContext, seed_everything, select_device
from .data import Dataset
from .results import ResultRow, append_run, provenance, save_predictions, upsert
from .tuning import config_record, divergence_errors

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


SHARES = 1  # task slots of this process's host when it is a Dask worker (set by ``call``): its cores were divided


@dataclass
class Slot:
    host: str
    concurrency: int = 1  # the most tasks of this suite (this user's) running on the host at once, this one included,
    #                       and on a Dask worker at least the host's task slots (its cores were shared among them)


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
    """Hold a marker file while the task runs and sample, every ``SAMPLE_SECONDS``, how many tasks hold one.
    Under torchrun, rank 0 holds the one marker of the run (its ranks are one task)."""
    if not distributed.is_main():
        yield Slot(socket.gethostname())
        return
    SLOTS.mkdir(parents=True, exist_ok=True)
    marker = SLOTS / f"{os.getpid()}-{uuid.uuid4().hex}"
    marker.touch()
    slot, stop = Slot(socket.gethostname(), max(SHARES, running_tasks())), threading.Event()

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


def cores() -> int:
    """The cores this process may use (its CPU affinity, where the platform tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def limit_threads(threads: int) -> None:
    """Give this process's torch, BLAS/OpenMP pools (threadpoolctl), OpenCV and joblib ``threads`` threads."""
    from threadpoolctl import threadpool_limits
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        os.environ[var] = str(threads)  # libraries loaded later read these
    threadpool_limits(threads)  # ... those already loaded (numpy's BLAS) are set here
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)


def call(fn: Callable, args: tuple, slots: dict[str, int]) -> Any:
    """What a Dask worker runs: ``fn(*args)`` with this host's cores divided among its task ``slots`` (by host
    name), which every row of the task records as its least ``concurrency``."""
    global SHARES
    SHARES = slots.get(socket.gethostname(), 1)
    limit_threads(max(1, cores() // SHARES))
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


@contextmanager
def kept_environ():
    """Restore this process's environment afterwards (Dask's nannies set the workers' variables in it)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Executor:
    """What runs the grid's tasks: ``scatter`` a value the tasks share (sent once), ``run`` the tasks (each one's
    ``Done`` as it finishes), ``close``; a context manager. ``concurrent``: whether tasks may share a host."""
    concurrent = False

    def scatter(self, value):
        return value

    def run(self, tasks: list[Task]) -> Iterator[Done]:
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Serial(Executor):
    """``--jobs 1``: each task in this process, in order; the timings of record."""

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


class DaskGrid(Executor):
    """``--jobs N`` (a ``LocalCluster`` of N single-task worker processes) or ``--scheduler ADDRESS``."""
    concurrent = True

    def __init__(self, jobs: int | None = None, address: str | None = None):
        try:
            import dask
            from distributed import Client
        except ImportError:
            raise GridError(f"--jobs above 1 and --scheduler need Dask's distributed: {CLUSTER_EXTRA}") from None
        dask.config.set({"distributed.worker.daemon": False})  # joblib may use a worker's cores (read at each spawn)
        self.cluster, self.shared = None, {}
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT) if address else Client(self._local(jobs))
        except (OSError, TimeoutError) as exc:
            self.close()
            where = f"the Dask scheduler at {address}" if address else f"a local Dask cluster of {jobs} workers"
            raise GridError(f"cannot reach {where}: {one_line(exc)}") from None
        workers = self.client.scheduler_info()["workers"]
        self.slots = self._slots_per_host(workers)
        self.gpu_workers = sum("GPU" in (w.get("resources") or {}) for w in workers.values())

    def _local(self, jobs: int):
        """N single-task worker processes on this machine. A worker that dies fails its task after a second try
        (an innocent task caught by the death of its worker then finishes); a worker holds only the task it runs;
        workers keep their logs free of progress bars (per-task bars: serial mode only)."""
        import logging
        import dask
        from distributed import LocalCluster
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0,
                              "distributed.nanny.pre-spawn-environ.TQDM_DISABLE": "1"}), kept_environ():
            self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                                        silence_logs=logging.ERROR, scheduler_kwargs={"allowed_failures": 1})
        return self.cluster

    def _slots_per_host(self, workers: dict) -> dict[str, int]:
        """Task slots (worker threads) per host name: a host's cores are divided among them."""
        names = self.client.run(socket.gethostname)
        slots = Counter()
        for addr, name in names.items():
            slots[name] += workers[addr]["nthreads"]
        return dict(slots)

    def _resources(self, task: Task) -> dict | None:
        """A GPU task asks for a worker offering ``GPU``; on a local cluster without such workers, any worker
        (they share this machine's GPU); on a cluster without one, a one-line error before anything runs."""
        if not task.gpu:
            return None
        if self.gpu_workers:
            return {"GPU": 1}
        if self.cluster is not None:
            return None
        raise GridError(f"{task.label} trains on CUDA, and no worker of the cluster offers the resource GPU "
                        "(start them with: dask worker ADDRESS --resources GPU=1)")

    def scatter(self, value):
        """Send ``value`` to every worker once (the same object again: the same copy)."""
        if id(value) not in self.shared:
            self.shared[id(value)] = (value, self.client.scatter(value, broadcast=True, hash=False))
        return self.shared[id(value)][1]

    def run(self, tasks: list[Task]) -> Iterator[Done]:
        from distributed import as_completed
        resources = [self._resources(t) for t in tasks]  # checked before any task is sent
        progress = Progress(len(tasks))
        futures, index = [], {}
        for i, task in enumerate(tasks):
            future = self.client.submit(call, task.fn, task.args, self.slots, pure=False,
                                        key=f"{task.label}-{uuid.uuid4().hex[:8]}", resources=resources[i])
            futures.append(future)
            index[future.key] = i
        try:
            # results are fetched as each task finishes: a worker that dies later cannot take them with it
            for future, value in as_completed(futures, with_results=True, raise_errors=False):
                i = index[future.key]
                if future.status == "finished":
                    done = Done(i, value)
                else:  # an error, or cancelled (the scheduler lost it)
                    done = Done(i, error=one_line(value if isinstance(value, BaseException) else future.exception()))
                future.release()
                yield progress.step(done)
        finally:
            progress.close()

    def close(self):
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def executor(jobs: int = 1, scheduler: str | None = None) -> Executor:
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


def device_of(name: str, ctx: RunContext) -> DeviceInfo:
    """Where pipeline ``name`` runs in ``ctx`` (hand-crafted ones: always the CPU); the context's device if it
    cannot be loaded."""
    pipeline, _ = load_pipeline(name)
    return pipeline.device_for(ctx.device) if pipeline else ctx.device


def needs_gpu(name: str, ctx: RunContext) -> bool:
    """Whether a task of pipeline ``name`` must go to a worker with a GPU."""
    return ctx.device.kind == "cuda" and REGISTRY[name].family == "learned"


def here(device: DeviceInfo) -> DeviceInfo:
    """``device`` as the process running the task names it (a Dask worker its own CPU or GPU, not the runner's)."""
    try:
        return select_device(device.kind == "cuda")
    except DeviceError:
        return device  # the run itself then fails, in its own row


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
    config = {"pipeline": config_record(cfg) if cfg is not None else None, "preset": ctx.preset, "seed": ctx.seed,
              "time_budget": ctx.time_budget, "compile": ctx.compile, "data_source": source}
    upsert(ctx.results_dir / "summary.csv", row)
    append_run(ctx.results_dir / "runs.jsonl", row, config, outcome.curve if outcome is not None else None)
    if outcome is not None and outcome.y_pred is not None:
        save_predictions(ctx.results_dir, row, outcome.y_true, outcome.y_pred)


def run_pipeline(name: str, data: Dataset, ctx: RunContext) -> ResultRow:
    """Run one pipeline isolated (an exception becomes a failed row), write its row and return it. The device's
    name and the provenance (commit, versions) are read where it runs."""
    ctx = dataclasses.replace(ctx, device=here(ctx.device))
    pipeline, load_error = load_pipeline(name)
    device = pipeline.device_for(ctx.device) if pipeline else ctx.device
    cfg = pipeline.config(ctx.preset) if pipeline else None
    row = base_row(name, ctx, data.name, device, provenance())
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
        except divergence_errors(name) as exc:  # a diverged network scores chance (PROTOCOL.md, section 3)
            diverged(row, cfg, data, one_line(exc))
            print(f"[{name}] diverged, scored as chance: {row.error}", file=sys.stderr)
        except Exception as exc:  # isolation: one failure costs one row
            row.status, row.error = "failed", one_line(exc)
            print(f"[{name}] failed: {row.error}", file=sys.stderr)
        row.total_seconds = round(time.perf_counter() - start, 3)
    row.host, row.concurrency = slot.host, slot.concurrency
    if distributed.is_main():
        record(ctx, row, cfg, data.source, outcome)
    return row


DIVERGED = "diverged"  # a row's status when its network's loss became NaN or infinite: it scores chance


def diverged(row: ResultRow, cfg, data: Dataset, error: str) -> None:
    """Mark ``row`` as a diverged run: chance accuracy on the images it would have scored, as PROTOCOL.md says."""
    n_train, n_test = (min(n or len(x), len(x)) for n, x in ((cfg.n_train, data.x_train), (cfg.n_test, data.x_test)))
    row.status, row.error = DIVERGED, error
    row.test_accuracy = round(1 / len(data.class_names), ROUNDING["test_accuracy"])
    row.n_train, row.n_test, row.full_data = n_train, n_test, n_train == len(data.x_train) and n_test == len(data.x_test)
    row.truncated = False


def record_lost(name: str, data: Dataset, ctx: RunContext, error: str) -> ResultRow:
    """The failed row of a pipeline task that never returned (its worker died, or it raised outside the
    pipeline), written by the runner; if even that cannot be written, it is only printed."""
    row = base_row(name, ctx, data.name, device_of(name, ctx), provenance())
    row.status, row.error = "failed", error
    print(f"[{name}] failed: {error}", file=sys.stderr)
    if distributed.is_main():
        try:
            record(ctx, row, None, data.source, None)
        except Exception as exc:
            print(f"[{name}] its failed row could not be written either: {one_line(exc)}", file=sys.stderr)
    return row
