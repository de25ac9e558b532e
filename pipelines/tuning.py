"""Settings chosen on the validation split, never on the test set (PROTOCOL.md, "Choosing settings").

A ``Tuning`` is one grid: a registered pipeline's ``cpu`` preset with some fields fixed and the others tried
over their candidates. Each point runs the pipeline itself on ``validation_split(data)`` (training on part of
the training set, scoring the held-out validation images), one seed; the choice is the point with the highest
validation accuracy, the first in grid order on a tie. The grid, every point's score and the choice are
written to ``results/tuning/NAME.json``, which the presets and experiments read or are checked against.

    python bench/tune.py                 # every grid (each one's seconds: the README)
    python bench/tune.py --only hog_svm  # one
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import REGISTRY
from .base import RunContext, speed_fields
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

    @property
    def path(self) -> Path:
        return TUNING_DIR / f"{self.name}.json"


def pipeline_tunings() -> list[Tuning]:
    """One tuning per registered pipeline that declares a ``grid`` (the recipes, lenet and alexnet, do not),
    after one per entry of its ``more_grids`` (``cnn28``: regularisation, then the 28x28 block's width, then the
    learning rate). Where two grids of a pipeline set the same field, the later one's choice stands."""
    out = []
    for name, entry in REGISTRY.items():
        cls = entry.load().__class__
        out += [Tuning(f"{name}-{suffix}", name, dict(grid), dict(fixed), *paired)
                for suffix, (grid, fixed, *paired) in cls.more_grids.items()]
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
               **({"paired": True} if t.paired else {}),
               "validation": {"dataset": data.name, "fit_pool_images": len(val.x_train), "validation_images":
                              len(val.x_test), "split_seed": VALIDATION_SEED, "run_seed": TUNING_SEED},
               "choice": {k: rows[best][k] for k in t.grid}, "points": rows, "device": ctx.device.kind,
               "device_name": ctx.device.name, "presets": presets_of([t.pipeline]), "started_at": started, **prov}
    atomic_write_text(t.path, json.dumps(payload, indent=1, default=list))
    return payload


def as_json(value):
    """``value`` as it reads back from a JSON file (tuples become lists, other objects their ``str``)."""
    return json.loads(json.dumps(value, default=str))


@functools.lru_cache(maxsize=None)  # the code cannot change within a process; AlexNet takes ~0.6 s to build
def model_fingerprint(model: str) -> str:
    """A short hash of the network a building function makes with its default arguments (its layers, their
    shapes and settings, as torch prints them): a record of which network a run trained. It does not see the
    initialisation. (Files written before it hashed the function's source: ``bench/migrate_fingerprints.py``.)"""
    from .learned.models import MODELS
    return hashlib.sha256(repr(MODELS[model]()).encode()).hexdigest()[:16]


def config_record(cfg) -> dict:
    """A pipeline's configuration as JSON data, with the fingerprint of its network's code where it trains one
    (``model_source``): what result files record of what ran, and what ``changed_fields`` compares."""
    record = as_json(dataclasses.asdict(cfg))
    if getattr(cfg, "model", None):
        record["model_source"] = model_fingerprint(cfg.model)
    return record


def presets_of(pipelines) -> dict:
    """The ``config_record`` of each pipeline's ``cpu`` preset: what experiment and tuning files record of the
    pipelines they ran, and what ``changed_fields`` compares today's with."""
    return {name: config_record(REGISTRY[name].load().config("cpu")) for name in sorted(pipelines)
            if name in REGISTRY}


def changed_fields(pipeline: str, stored: dict, now: dict, ignore=()) -> list[str]:
    """The fields where a stored ``config_record`` differs from today's, except the ``ignore``d ones (a tuning's
    grid sets those itself); fields the record has and today's configuration lacks come first. A config field
    added since the record was written counts as equal when today's preset leaves it at its default (the
    recorded run could not have set it otherwise). Fields that set only speed (``base.speed_only``) never differ."""
    config_class = REGISTRY[pipeline].load().Config
    plain = as_json({f.name: f.default for f in dataclasses.fields(config_class)})
    ignore = {*ignore, *speed_fields(config_class)}
    return [k for k in stored if k not in now] + [
        k for k, v in now.items() if k not in ignore and (stored[k] != v if k in stored else v != plain.get(k))]


def same_preset(pipeline: str, stored: dict | None, now: dict, ignore=()) -> bool:
    """``stored`` exists and no field of it has ``changed_fields``."""
    return stored is not None and not changed_fields(pipeline, stored, now, ignore)


UNVERIFIED, STALE = "unverified", "stale"


def drift(record: dict, pipelines) -> tuple[str, str]:
    """(kind, reason) when a stored record (an experiment or tuning file) may not describe today's pipelines:
    ``STALE`` if it recorded another preset or network of one (a tuning's own grid fields aside),
    ``UNVERIFIED`` if it recorded none; else ('', '')."""
    used = sorted(p for p in pipelines if p in REGISTRY)
    if not used:
        return "", ""
    if "presets" not in record:
        return UNVERIFIED, (f"made before files recorded their pipelines' presets (commit "
                            f"{record.get('git_commit') or 'unknown'})")
    now, ignore = presets_of(used), record.get("grid") or ()
    fields = {p: changed_fields(p, record["presets"][p], now[p], ignore) if p in record["presets"] else None
              for p in used}  # None: no record of it
    changed = {p: f for p, f in fields.items() if f is None or f}
    return (STALE, "made with an earlier preset or network of " + ", ".join(
        f"{p} ({', '.join(f)})" if f else p for p, f in changed.items())) if changed else ("", "")


def divergence_errors(pipeline: str) -> tuple[type[Exception], ...]:
    """The exceptions that mean "this setting diverged" for a pipeline (NaN loss in a network)."""
    if REGISTRY[pipeline].family != "learned":
        return ()
    from .learned.trainer import TrainingError
    return (TrainingError,)


def stored_choice_score(name: str) -> float | None:
    """The validation accuracy stored tuning ``name`` gave its choice, or None (no such file, or unreadable)."""
    try:
        payload = json.loads((TUNING_DIR / f"{name}.json").read_text())
        choice = payload["choice"]
        return next(float(p["validation_accuracy"]) for p in payload["points"]
                    if all(p.get(k) == v for k, v in choice.items()))
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None


def chosen(name: str) -> dict:
    """The stored choice of tuning ``name`` (field -> value), or a ``TuningError`` naming the remedy."""
    path = TUNING_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text())["choice"]
    except (OSError, ValueError, KeyError) as exc:
        raise TuningError(f"{path}: no stored choice ({type(exc).__name__}); run `python bench/tune.py "
                          f"--only {name}`") from None
