"""The small interface every pipeline implements, and the context the runner hands it.

A pipeline is a class with a frozen-dataclass ``Config``, a ``presets`` dict (smoke / cpu / paper) of
named instances of it, and ``run(data, config, ctx) -> Outcome``. The runner knows nothing else about it.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .data import DEFAULT_DATASET, Dataset
from .results import dataset_dir

PRESETS = ("smoke", "cpu", "paper")
TRAIN_SCORE_MAX = 10_000  # training accuracy (eval mode) is measured on at most this many training images
SPEED_ONLY = "speed_only"  # metadata of a config field that changes how fast a run goes, never what it measures


def speed_only(default):
    """A config field that sets only speed (cores, evaluation batch): records that differ in it describe the
    same run (``speed_fields``)."""
    return field(default=default, metadata={SPEED_ONLY: True})


def speed_fields(config_class) -> set[str]:
    """The ``speed_only`` fields of a config class: what comparisons of a stored configuration with today's
    (stale files, set-aside rows, checkpoints) pass over."""
    return {f.name for f in dataclasses.fields(config_class) if f.metadata.get(SPEED_ONLY)}


@dataclass(frozen=True)
class DeviceInfo:
    """Chosen once, at start-up (see ``select_device``)."""
    kind: str  # "cpu" or "cuda"
    name: str


class DeviceError(Exception):
    """The asked-for device is not available; one-line message."""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


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
    time_budget: float | None = None  # seconds, for pipelines that train under a budget
    compile: bool = False
    figures: bool = True  # experiments and tuning switch the pipelines' pictures off
    checkpoints: bool = True  # ... and the learned pipelines' checkpoints and progress bars
    curves: bool = True  # ... and their time-to-accuracy curves (the test images scored after each epoch)
    dataset: str = DEFAULT_DATASET  # the name of the data it runs on: part of every result's key and path

    @property
    def cache_dir(self) -> Path:
        return self.results_dir / "cache"

    @property
    def dataset_dir(self) -> Path:
        """``results.dataset_dir`` of this context's dataset."""
        return dataset_dir(self.results_dir, self.dataset)

    @property
    def figures_dir(self) -> Path:
        return self.dataset_dir / "figures"

    def checkpoint_dir(self, pipeline: str) -> Path:
        return self.dataset_dir / "checkpoints" / pipeline

    def key(self, pipeline: str, device: str | None = None) -> dict:
        """The result key (``results.KEY``) of ``pipeline`` run in this context (on ``device``, if it runs
        elsewhere than the context's device)."""
        return {"dataset": self.dataset, "pipeline": pipeline, "preset": self.preset,
                "device": device or self.device.kind, "seed": self.seed}


@dataclass
class Outcome:
    """What a pipeline measured. Keys of ``extra`` must be ``ResultRow`` fields."""
    test_accuracy: float
    n_train: int
    n_test: int
    image_size: int
    train_accuracy: float | None = None
    epochs: float | None = None
    feature_seconds: float | None = None
    fit_seconds: float | None = None
    predict_seconds: float | None = None
    train_images_per_second: float | None = None
    params: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
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
    runs_on_accelerator: ClassVar[bool] = False
    grid: ClassVar[dict[str, tuple]] = {}
    tune_n_train: ClassVar[int | None] = 20_000
    more_grids: ClassVar[dict[str, tuple]] = {}

    def config(self, preset: str):
        return self.presets[preset]

    def device_for(self, requested: DeviceInfo) -> DeviceInfo:
        """Where this pipeline really runs: the hand-crafted ones always run on the CPU."""
        return requested if self.runs_on_accelerator else DeviceInfo("cpu", cpu_name())

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
