"""Settings chosen on the validation split, never on the test set (PROTOCOL.md, "Choosing settings").

A ``Tuning`` is one grid: a registered pipeline's ``cpu`` preset with some fields fixed and the others tried
over their candidates. Each point runs the pipeline itself on ``validation_split(data)`` (training on part of
the training set, scoring the held-out validation images), one seed; the choice is the point with the highest
validation accuracy, the first in grid order on a tie. The grid, every point's score and the choice are
written to ``results/tuning/NAME.json``, which the presets and experiments read or are checked against.

    python bench/tune.py                 # every grid (about 25 min on the 2-core dev machine)
    python bench/tune.py --only hog_svm  # one
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import REGISTRY
from .base import RunContext
from .data import PROJECT_ROOT, VALIDATION_SEED, Dataset, validation_split
from .results import atomic_write_text, provenance

TUNING_DIR = PROJECT_ROOT / "results" / "tuning"  # committed: part of the suite's configuration
TUNING_SEED = 0


class TuningError(Exception):
    """A stored choice is missing or unreadable; one-line message."""


@dataclass(frozen=True)
class Tuning:
    name: str                       # results/tuning/<name>.json
    pipeline: str                   # a registry name; its cpu preset is the base of every point
    grid: dict[str, tuple]          # field -> candidates, tried in full product
    fixed: dict = field(default_factory=dict)  # fields set at every point (n_train, epochs, model_kwargs)

    def points(self) -> list[dict]:
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]

    @property
    def path(self) -> Path:
        return TUNING_DIR / f"{self.name}.json"


def pipeline_tunings() -> list[Tuning]:
    """One tuning per registered pipeline that declares a ``grid`` (the recipes, lenet and alexnet, do not)."""
    out = []
    for name, entry in REGISTRY.items():
        cls = entry.load().__class__
        if cls.grid:
            out.append(Tuning(name, name, dict(cls.grid), {"n_train": cls.tune_n_train}))
    return out


def run_tuning(t: Tuning, data: Dataset, ctx: RunContext, log=print) -> dict:
    """Try every point on the validation split; write and return the stored payload."""
    pipeline = REGISTRY[t.pipeline].load()
    val = validation_split(data)
    vctx = dataclasses.replace(ctx, seed=TUNING_SEED, figures=False, checkpoints=False, curves=False, resume=False)
    started, prov, rows = datetime.now(timezone.utc).isoformat(timespec="seconds"), provenance(), []
    diverges = divergence_errors(t.pipeline)
    for point in t.points():
        cfg = dataclasses.replace(pipeline.config("cpu"), n_test=None, **t.fixed, **point)
        start = time.perf_counter()
        try:
            acc, note = pipeline.run(val, cfg, vctx).test_accuracy, ""
        except diverges as exc:  # a diverged network scores chance at this point; the grid goes on
            acc, note = 1 / len(val.class_names), f"diverged: {exc}"
        rows.append({**point, "validation_accuracy": round(acc, 4), "seconds": round(time.perf_counter() - start, 1),
                     **({"note": note} if note else {})})
        log(f"[tune {t.name}] {point}: validation accuracy {acc:.4f} ({rows[-1]['seconds']:.0f} s) {note}")
    best = max(range(len(rows)), key=lambda i: (rows[i]["validation_accuracy"], -i))
    payload = {"tuning": t.name, "pipeline": t.pipeline, "grid": t.grid, "fixed": t.fixed,
               "rule": "highest validation accuracy, first in grid order on a tie",
               "validation": {"dataset": data.name, "fit_pool_images": len(val.x_train), "validation_images":
                              len(val.x_test), "split_seed": VALIDATION_SEED, "run_seed": TUNING_SEED},
               "choice": {k: rows[best][k] for k in t.grid}, "points": rows, "device": ctx.device.kind,
               "device_name": ctx.device.name, "started_at": started, **prov}
    atomic_write_text(t.path, json.dumps(payload, indent=1, default=list))
    return payload


def divergence_errors(pipeline: str) -> tuple[type[Exception], ...]:
    """The exceptions that mean "this setting diverged" for a pipeline (NaN loss in a network)."""
    if REGISTRY[pipeline].family != "learned":
        return ()
    from .learned.trainer import TrainingError
    return (TrainingError,)


def chosen(name: str) -> dict:
    """The stored choice of tuning ``name`` (field -> value), or a ``TuningError`` naming the remedy."""
    path = TUNING_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text())["choice"]
    except (OSError, ValueError, KeyError) as exc:
        raise TuningError(f"{path}: no stored choice ({type(exc).__name__}); run `python bench/tune.py "
                          f"--only {name}`") from None
