"""The small interface every pipeline implements, and the context the runner hands it.

A pipeline is a class with a frozen-dataclass ``Config``, a ``presets`` dict (smoke / cpu / paper) of named
instances of it, and ``run(data, config, ctx) -> Outcome``; ``record(config)`` is its configuration as the result
files record it, and ``config_hash`` of that record identifies it. The runner knows nothing else about it.
Knobs that change only how fast a run goes (cores, evaluation batch) live in ``RunContext``, never in a config.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import DEFAULT_DATASET
from .datasets import Dataset
from .store import as_json, cache_dir, checkpoint_path, config_hash, dataset_dir, figures_dir

TRAIN_SCORE_MAX = 10_000  # training accuracy (eval mode) is measured on at most this many training images


@dataclass(frozen=True)
class DeviceInfo:
    """Chosen once, at start-up (see ``select_device``)."""
    kind: str  # "cpu" or "cuda"
    name: str


class DeviceError(Exception):
    """The asked-for device is not available; one-line message."""


MATRIX_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")  # what bf16 training can use on an x86 CPU


def cpu_name() -> str:
    """The CPU model, its cores and its bf16 units (``MATRIX_FLAGS`` it has, or "no bf16 units"): CPUs of one
    model name differ in them, and a speed figure is compared only with another of the same name."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                 platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    units = " ".join(f for f in MATRIX_FLAGS if f in flags) or "no bf16 units"
    return f"{model} ({os.cpu_count()} cores; {units})"


def select_device(gpu: bool) -> DeviceInfo:
    """CPU unless ``gpu``; with ``gpu``, CUDA or a ``DeviceError`` (never a silent CPU run)."""
    if not gpu:
        return DeviceInfo("cpu", cpu_name())
    try:
        import torch
    except ImportError:
        raise DeviceError("--gpu needs PyTorch with CUDA, and torch is not installed") from None
    if not torch.cuda.is_available():
        raise DeviceError("--gpu needs a CUDA GPU, and torch.cuda.is_available() is False "
                          f"(torch {torch.__version__}); run without --gpu for the CPU presets")
    return DeviceInfo("cuda", torch.cuda.get_device_name(int(os.environ.get("LOCAL_RANK", 0))))


def seed_everything(seed: int) -> None:
    """One seed for Python, numpy and (when loaded) torch; estimators get it as ``random_state``."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


@dataclass
class RunContext:
    preset: str
    seed: int
    device: DeviceInfo
    results_dir: Path
    resume: bool = False
    time_budget: float | None = None  # seconds, for pipelines that train under a budget (overrides the preset's)
    compile: bool = False
    figures: bool = True  # experiments and tuning switch the pipelines' pictures off
    checkpoints: bool = True  # ... and the learned pipelines' checkpoints and progress bars
    curves: bool = True  # ... and their time-to-accuracy curves (the test images scored after each epoch)
    dataset: str = DEFAULT_DATASET  # the name of the data it runs on: part of every result's key and path
    n_jobs: int = -1  # speed only: cores for hand-crafted extraction and one-vs-rest fitting (-1: all)
    precision: str = "auto"  # the learned pipelines' precision policy (--precision; learned.precision.POLICIES)

    @property
    def cache_dir(self) -> Path:
        return cache_dir(self.results_dir)

    @property
    def dataset_dir(self) -> Path:
        return dataset_dir(self.results_dir, self.dataset)

    @property
    def figures_dir(self) -> Path:
        return figures_dir(self.results_dir, self.dataset)

    def checkpoint_path(self, pipeline: str) -> Path:
        return checkpoint_path(self.results_dir, self.key(pipeline))

    def key(self, pipeline: str, device: str | None = None) -> dict:
        """The result key (``store.KEY``) of ``pipeline`` run in this context (on ``device``, if it runs
        elsewhere than the context's device)."""
        return {"dataset": self.dataset, "pipeline": pipeline, "preset": self.preset,
                "device": device or self.device.kind, "seed": self.seed}


@dataclass
class Outcome:
    """What a pipeline measured: ``values`` are ``store.ResultRow`` columns (the row schema's one home; an unknown
    name is an error when the row is filled), the rest is what the row does not hold."""
    values: dict[str, Any]
    curve: list[dict] | None = None  # learned: per complete epoch, training seconds so far and test accuracy
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None


class Pipeline:
    """Base class: subclasses set ``Config`` and ``presets`` and implement ``run``.

    ``grid`` lists the settings chosen on the validation split (``bench/tune.py``, PROTOCOL.md): each field
    and its candidates, tried on ``tune_n_train`` of the validation split's training images from the ``cpu``
    preset; the ``cpu`` preset holds the winners (a test checks it against ``results/tuning/NAME.json``).
    ``more_grids`` are further grids, each tried on its own before ``grid`` (``bench/tune.py`` runs them in
    that order) from the ``cpu`` preset as it stands: a name suffix -> (fields and candidates, fixed fields), or
    (..., True) for a paired grid (``Tuning.paired``: candidates taken in step, not in product); stored as
    ``NAME-SUFFIX.json``."""
    Config: ClassVar[type]
    presets: ClassVar[dict[str, Any]]
    grid: ClassVar[dict[str, tuple]] = {}
    tune_n_train: ClassVar[int | None] = 20_000
    more_grids: ClassVar[dict[str, tuple]] = {}
    diverges: ClassVar[tuple[type[Exception], ...]] = ()  # what "this setting diverged" raises (scored as chance)

    def config(self, preset: str):
        return self.presets[preset]

    def with_settings(self, cfg, **settings):
        """``cfg`` with ``settings`` set over it (a network pipeline merges network arguments instead)."""
        return dataclasses.replace(cfg, **settings)

    def effective(self, cfg, time_budget: float | None = None):
        """``cfg`` as it runs: ``--time-budget``'s ``time_budget`` replaces the preset's where the config has one."""
        if time_budget is not None and "time_budget" in {f.name for f in dataclasses.fields(cfg)}:
            return dataclasses.replace(cfg, time_budget=time_budget)
        return cfg

    def record(self, cfg) -> dict:
        """The configuration as result files record it (JSON data); ``config_hash`` of it identifies the run."""
        return as_json(dataclasses.asdict(cfg))

    def hash(self, cfg) -> str:
        return config_hash(self.record(cfg))

    def run(self, data: Dataset, config, ctx: RunContext) -> Outcome:
        raise NotImplementedError


class Stopwatch:
    """Named wall-clock sections, ``time.perf_counter`` based; ``sync`` runs before each clock read."""

    def __init__(self, sync=None):
        self.seconds: dict[str, float] = {}
        self._sync = sync or (lambda: None)

    @contextmanager
    def section(self, name: str):
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
