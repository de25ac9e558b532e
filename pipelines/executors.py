"""The executors of the run grid: the runner's work as independent tasks, run serially or on Dask.

    python runner.py --all --seeds 0 1 2                 # --jobs 1 (default): serial, in this process
    python runner.py --all --seeds 0 1 2 --jobs 2        # 2 local Dask worker processes (LocalCluster)
    python runner.py --experiments all --scheduler tcp://head:8786   # a running Dask cluster

A task is a module-level function and its arguments (a pipeline run: ``run.run_pipeline``; an experiment arm:
``experiments.engine.run_arm_task``), so Dask can ship it to another process or machine. Executors yield each task's
``Done`` as it finishes: its value, or a one-line error when it raised or its worker died (one task, one row;
the rest of the grid goes on). Every task runs inside ``host_slot``, which records the host it ran on and the
most tasks of this suite running there at once during it (``concurrency``; 1: it ran alone), so that times
taken side by side are marked in the report and never ranked against serial ones. ``--jobs 1`` is for
timings; more is for throughput.
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tqdm.auto import tqdm

from . import distributed

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
