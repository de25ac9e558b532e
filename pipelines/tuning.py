"""Settings chosen on the validation split, never on the test set (PROTOCOL.md, "Choosing settings").

A ``Tuning`` is one grid: a registered pipeline's ``cpu`` preset with some fields fixed and the others tried
over their candidates (network arguments merged into the preset's network, never replacing it). Each point runs
the pipeline itself on ``validation_split(data)`` (training on part of the training set, scoring the held-out
validation images), one seed; the choice is the point with the highest validation accuracy, the first in grid
order on a tie. ``results/tuning/NAME.json`` stores the grid, every point's score, its ``config_hash`` and the
record behind it, the data's fingerprint and the choice; the presets and experiments read or are checked
against it, and the file is stale when today's points would have other hashes (``stale``).

    python bench/tune.py                 # every grid (each one's seconds: python bench/tune.py --summary)
    python bench/tune.py --only hog_svm  # one
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import PIPELINES, get
from .base import RunContext
from .datasets import VALIDATION_SEED, Dataset, validation_split
from .store import atomic_write_json, provenance, read_json, tuning_path

TUNING_SEED = 0
RULE = "highest validation accuracy, first in grid order on a tie"


class TuningError(Exception):
    """A stored choice is missing or unreadable; one-line message."""


@dataclass(frozen=True)
class Tuning:
    name: str                       # results/tuning/<name>.json
    pipeline: str                   # a registry name; its cpu preset is the base of every point
    grid: dict[str, tuple]          # field -> candidates, tried in full product (or in step: ``paired``)
    fixed: dict = field(default_factory=dict)  # fields set at every point (n_train, epochs, model_kwargs)
    paired: bool = False            # the i-th point takes every field's i-th candidate: designs, not a product

    def points(self) -> list[dict]:
        keys = list(self.grid)
        if self.paired:
            if len({len(v) for v in self.grid.values()}) > 1:
                raise ValueError(f"tuning {self.name}: a paired grid needs as many candidates for every field")
            return [dict(zip(keys, values)) for values in zip(*(self.grid[k] for k in keys))]
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]

    def config(self, point: dict):
        """The configuration a point trains: the ``cpu`` preset, scored on every validation image, with the fixed
        fields and then the point's set over it (``Pipeline.with_settings``: network arguments merge)."""
        pipeline = get(self.pipeline)
        base = dataclasses.replace(pipeline.config("cpu"), n_test=None)
        return pipeline.with_settings(pipeline.with_settings(base, **self.fixed), **point)

    def hashes(self) -> list[str]:
        """Today's ``config_hash`` of every point, in grid order."""
        pipeline = get(self.pipeline)
        return [pipeline.hash(self.config(p)) for p in self.points()]

    @property
    def path(self) -> Path:
        return tuning_path(self.name)


def pipeline_tunings() -> list[Tuning]:
    """One tuning per registered pipeline that declares a ``grid`` (the recipes, lenet and alexnet, do not),
    after one per entry of its ``more_grids`` (``cnn28``: regularisation, then the 28x28 block's width, then the
    learning rate). Where two grids of a pipeline set the same field, the later one's choice stands."""
    out = []
    for name, entry in PIPELINES.items():
        cls = entry.load().__class__
        out += [Tuning(f"{name}-{suffix}", name, dict(grid), dict(fixed), *paired)
                for suffix, (grid, fixed, *paired) in cls.more_grids.items()]
        if cls.grid:
            out.append(Tuning(name, name, dict(cls.grid), {"n_train": cls.tune_n_train}))
    return out


def score_point(t: Tuning, cfg, val: Dataset, ctx: RunContext) -> tuple[float, str]:
    """A point's validation accuracy (a diverged network scores chance there, and the grid goes on) and a note."""
    pipeline = get(t.pipeline)
    try:
        return pipeline.run(val, cfg, ctx).values["test_accuracy"], ""
    except pipeline.diverges as exc:
        return 1 / len(val.class_names), f"diverged: {exc}"


def run_tuning(t: Tuning, data: Dataset, ctx: RunContext, log=print) -> dict:
    """Try every point on the validation split; write and return the stored payload."""
    pipeline, val = get(t.pipeline), validation_split(data)
    vctx = dataclasses.replace(ctx, seed=TUNING_SEED, figures=False, checkpoints=False, curves=False, resume=False)
    started, prov, rows, configs = datetime.now(timezone.utc).isoformat(timespec="seconds"), provenance(), [], {}
    for point in t.points():
        cfg = t.config(point)
        configs[pipeline.hash(cfg)] = pipeline.record(cfg)
        start = time.perf_counter()
        acc, note = score_point(t, cfg, val, vctx)
        rows.append({**point, "validation_accuracy": round(acc, 4), "seconds": round(time.perf_counter() - start, 1),
                     "config_hash": pipeline.hash(cfg), **({"note": note} if note else {})})
        log(f"[tune {t.name}] {point}: validation accuracy {acc:.4f} ({rows[-1]['seconds']:.0f} s) {note}")
    best = max(range(len(rows)), key=lambda i: (rows[i]["validation_accuracy"], -i))
    payload = {"tuning": t.name, "pipeline": t.pipeline, "grid": t.grid, "fixed": t.fixed, "rule": RULE,
               **({"paired": True} if t.paired else {}),
               "validation": {"dataset": data.name, "data_fingerprint": data.fingerprint, "fit_pool_images":
                              len(val.x_train), "validation_images": len(val.x_test), "split_seed": VALIDATION_SEED,
                              "run_seed": TUNING_SEED},
               "choice": {k: rows[best][k] for k in t.grid}, "points": rows, "configs": configs,
               "device": ctx.device.kind, "device_name": ctx.device.name, "started_at": started, **prov}
    atomic_write_json(t.path, payload)
    return payload


def stale(t: Tuning, payload: dict | None) -> str:
    """Why a stored tuning file no longer describes today's grid (its points' recorded hashes are not today's),
    or "" when it does: the one comparison behind "stale"."""
    if payload is None:
        return f"{t.path.name} is missing or unreadable"
    stored = [p.get("config_hash") for p in payload.get("points", [])]
    if stored != t.hashes():
        return f"{t.name} was made with other configurations than today's grid"
    return ""


def stored_choice_score(name: str) -> float | None:
    """The validation accuracy stored tuning ``name`` gave its choice, or None (no such file, or unreadable)."""
    payload = read_json(tuning_path(name))
    try:
        choice = payload["choice"]
        return next(float(p["validation_accuracy"]) for p in payload["points"]
                    if all(p.get(k) == v for k, v in choice.items()))
    except (TypeError, KeyError, ValueError, StopIteration):
        return None


def validation_scores() -> dict[str, float]:
    """pipeline -> the validation accuracy its last stored grid (the one that chose its preset as it stands: its
    main grid, else the last of its ``more_grids``) gave its chosen setting; pipelines without a grid (the
    chapter's recipes) are absent."""
    out = {}
    for t in pipeline_tunings():  # in the order they run: a pipeline's later grid overrides its earlier ones
        score = stored_choice_score(t.name)
        if score is not None:
            out[t.pipeline] = score
    return out


def chosen(name: str) -> dict:
    """The stored choice of tuning ``name`` (field -> value), or a ``TuningError`` naming the remedy."""
    payload = read_json(tuning_path(name))
    if not payload or "choice" not in payload:
        raise TuningError(f"{tuning_path(name)}: no stored choice; run `python bench/tune.py --only {name}`")
    return payload["choice"]
