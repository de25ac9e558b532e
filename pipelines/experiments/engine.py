"""The engine that runs the report's experiments: sizes, arms, plans, ``--resume``, the grid's tasks, the files.

    python runner.py --experiment activation            # one experiment (cpu size)
    python runner.py --experiments all --preset smoke   # every experiment, tiny
    python runner.py --experiment dropout --seeds 0 1 2 3 4

Every arm is a registered pipeline run through its own ``run`` on a seeded training subset (the same subset
for every arm of a seed, so arms pair by seed), scored on the validation images and the test set in one pass.
An arm's effective configuration is its pipeline's recipe with the arm's settings over it; its ``config_hash``
goes into its row and into its resume key, so ``--resume`` reuses only a run of that very configuration and
data, and a file is stale exactly when today's arms would have other hashes (``stale``). Each size writes its
own file (``store.experiment_path``): a smoke run never replaces a cpu one. Rows of the same size and of other
seeds that are still current are kept, so seeds accumulate.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import PRESETS, experiment, get
from ..base import RunContext
from ..datasets import Dataset, validation_split
from ..executors import Serial, Task, host_slot
from ..run import here, needs_gpu
from ..store import (atomic_write_json, experiment_path, locked, partial_path, provenance, read_json)
from ..tuning import stale as tuning_stale


@dataclass(frozen=True)
class ExpSize:
    """How big an experiment runs. Training lengths are budgets fixed in advance, never tuned on results."""
    n_train: int
    seeds: tuple[int, ...]
    epochs: int = 16                 # learned arms
    sizes: tuple[int, ...] = ()      # learning curves: training-set sizes
    fast_up_to: int = 0              # learning curves: FAST_SEEDS seeds at sizes up to this, else MIN_SEEDS
    min_steps: int = 0               # learning curves: at least this many SGD steps per learned run
    n_train_of: tuple[tuple[str, int], ...] = ()  # a pipeline's own training-set size, where not ``n_train``
    n_eval: int | None = None        # score the first n validation and the first n test images (None: all)
    budget: float | None = None      # seconds of training per run, where arms are compared at a fixed time

    def n_for(self, pipeline: str) -> int:
        return dict(self.n_train_of).get(pipeline, self.n_train)


@dataclass
class Arm:
    """One arm run: a registered pipeline on a seeded subset of ``n_train`` images of the pool (None: all of it)
    with ``overrides`` of its recipe; ``meta`` labels its row (arm, model, ...). A task of the run grid."""
    meta: dict
    pipeline: str
    seed: int
    n_train: int | None
    overrides: dict

    def identity(self) -> str:
        """What names this arm among an experiment's arms (its configuration aside)."""
        return json.dumps([self.pipeline, self.seed, self.n_train, self.meta], sort_keys=True, default=str)

    def config(self, recipe: str, time_budget: float | None = None):
        """The configuration it trains: the pipeline's ``recipe`` preset on its subset, scored on every image of
        the evaluation view, with its overrides set over it (network arguments merge) and ``--time-budget``."""
        pipeline = get(self.pipeline)
        base = dataclasses.replace(pipeline.config(recipe), n_train=self.n_train, n_test=None)
        return pipeline.effective(pipeline.with_settings(base, **self.overrides), time_budget)


def arm(meta: dict, pipeline: str, seed: int, n_train: int | None, **overrides) -> Arm:
    return Arm(meta, pipeline, seed, n_train, overrides)


def recipe_name(size: str) -> str:
    """The pipelines' preset an experiment's arms start from: ``smoke`` for tiny runs, else ``cpu``."""
    return "smoke" if size == "smoke" else "cpu"


def size_key(exp, preset: str) -> str:
    """Which of an experiment's sizes a preset runs: its ``paper`` size where it has one (for a GPU), else
    ``recipe_name``."""
    return preset if preset == "paper" and preset in exp.sizes else recipe_name(preset)


def evaluation_view(data: Dataset, n_eval: int | None = None) -> tuple[Dataset, int]:
    """What experiment arms see: the validation split's training pool to train on, and as "test" images the
    validation images followed by the real test images (so one prediction pass scores both); and how many
    of those are validation images. Arms are chosen on the first part and scored on the second. ``n_eval``
    keeps the first n of each (the same images for every arm and seed), where scoring all costs too much."""
    val = validation_split(data)
    x_val, y_val, x_te, y_te = val.x_test[:n_eval], val.y_test[:n_eval], data.x_test[:n_eval], data.y_test[:n_eval]
    view = Dataset(val.x_train, val.y_train, np.concatenate([x_val, x_te]), np.concatenate([y_val, y_te]),
                   name=data.name, source=val.source, class_names=data.class_names)
    return view, len(x_val)


ARM_VALUES = ("n_train", "train_accuracy", "epochs", "train_images_per_second", "images_seen", "truncated")


def run_arm(view: tuple[Dataset, int], ctx: RunContext, task: Arm, recipe: str) -> dict:
    """One pipeline run on a seeded subset of the pool, as the runner would run it, scored on the validation
    and the test images; a diverged network scores chance on both. Its row's values keep their row-schema names."""
    data, n_val = view
    pipeline, cfg = get(task.pipeline), task.config(recipe, ctx.time_budget)
    sctx = dataclasses.replace(ctx, seed=task.seed, figures=False, checkpoints=False, curves=False, resume=False)
    start = time.perf_counter()
    row = {"pipeline": task.pipeline, "seed": task.seed, "n_train": task.n_train or len(data.x_train),
           "diverged": False, "truncated": False, "n_classes": len(data.class_names), "config_hash": pipeline.hash(cfg)}
    try:
        out = pipeline.run(data, cfg, sctx)
    except pipeline.diverges as exc:
        chance = 1 / len(data.class_names)
        return {**row, "test_accuracy": chance, "validation_accuracy": chance, "train_accuracy": None,
                "diverged": True, "error": str(exc), "seconds": time.perf_counter() - start}
    hits = np.asarray(out.y_pred) == np.asarray(out.y_true)
    return {**row, **{k: out.values.get(k, row.get(k)) for k in ARM_VALUES}, "test_accuracy": float(hits[n_val:].mean()),
            "validation_accuracy": float(hits[:n_val].mean()), "seconds": time.perf_counter() - start,
            "truncated": bool(out.values.get("truncated") or False)}


def run_arm_task(data: Dataset, n_val: int, ctx: RunContext, task: Arm, recipe: str, key: str) -> dict:
    """An arm as a grid task: ``run_arm`` on ``(data, n_val)`` inside a host slot; the row, labelled."""
    with host_slot() as slot:
        row = run_arm((data, n_val), ctx, task, recipe)
    return {**task.meta, **row, "host": slot.host, "concurrency": slot.concurrency,
            "device_name": here(ctx.device).name, "arm_identity": task.identity(), "task": key}


# --- one experiment at one size: its plan and its file -------------------------------------------------------------

@dataclass
class ExperimentPlan:
    """One experiment at one size: its rows in order (measured while planning, reused by ``--resume``, or arms
    still to run), filled in as the grid's tasks finish, then written with the still-current rows of its other
    seeds (``finish``)."""
    name: str
    size: str
    ctx: RunContext  # its ``dataset`` is the data's
    view: tuple[Dataset, int]
    items: list
    started_at: str
    data_fingerprint: str  # the data's (``Dataset.fingerprint``), as its rows in summary.csv record it
    plan_seconds: float = 0.0  # what planning measured (exact counts, memory, peaks)
    failed: list[dict] = field(default_factory=list)
    resumed: int = 0
    seconds: float = 0.0
    kept: list[dict] = field(default_factory=list)  # stored rows of other seeds, still current: written again

    @property
    def recipe(self) -> str:
        return recipe_name(self.size)

    @property
    def path(self) -> Path:
        return experiment_path(self.ctx.results_dir, self.ctx.dataset, self.name, self.size)

    @property
    def partial(self) -> Path:
        """Arm rows as they finish, so a crash loses none (``--resume`` reads them); removed by ``finish``."""
        return partial_path(self.ctx.results_dir, self.ctx.dataset, self.name, self.size)

    def key(self, task: Arm) -> str:
        """What identifies an arm's run (``--resume`` reuses a stored row only with the same key): the size and
        its settings, the data's content, the device and how it trains, the arm and its configuration's hash."""
        cfg = task.config(self.recipe, self.ctx.time_budget)
        return json.dumps([self.size, dataclasses.asdict(experiment(self.name).sizes[self.size]), self.data_fingerprint,
                           self.ctx.device.kind, self.ctx.compile, task.identity(), get(task.pipeline).hash(cfg)],
                          sort_keys=True, default=str)

    def pending(self) -> list[tuple[int, Arm]]:
        return [(i, item) for i, item in enumerate(self.items) if isinstance(item, Arm)]

    def fill(self, i: int, row: dict) -> None:
        self.items[i] = row
        with locked(self.partial), open(self.partial, "a") as fh:
            fh.write(json.dumps(row, default=float) + "\n")

    def fail(self, i: int, error: str) -> None:
        task = self.items[i]
        pool = len(self.view[0].x_train)  # the images it would have trained on, as its row would count them
        self.failed.append({**task.meta, "pipeline": task.pipeline, "seed": task.seed,
                            "n_train": min(task.n_train, pool) if task.n_train else pool, "error": error})
        self.items[i] = None
        print(f"[experiment {self.name}] {task.pipeline} seed {task.seed} {task.meta} failed: {error}",
              file=sys.stderr)

    def finish(self) -> Path:
        """Write the experiment's file at this size (atomic): this run's rows, then the kept ones; failed arms are
        listed apart. Every arm row's configuration record is stored once, under its hash (``configs``)."""
        exp, rows = experiment(self.name), [r for r in self.items if r is not None] + self.kept
        # its own work, one run after another (on a grid its runs interleave with other experiments' runs)
        self.seconds = self.plan_seconds + sum(r.get("seconds") or 0 for r in rows if "task" in r)
        configs = {}
        for task in (a for a in exp.arms(exp.sizes[self.size], seeds_of_rows(rows), self.recipe)):
            cfg = task.config(self.recipe, self.ctx.time_budget)
            configs[get(task.pipeline).hash(cfg)] = get(task.pipeline).record(cfg)
        payload = {"experiment": self.name, "description": exp.description, "size": self.size,
                   "config": dataclasses.asdict(exp.sizes[self.size]), "seeds": seeds_of_rows(rows),
                   "device": self.ctx.device.kind, "device_name": self.ctx.device.name, "dataset": self.ctx.dataset,
                   "data_fingerprint": self.data_fingerprint, "time_budget": self.ctx.time_budget,
                   "compile": self.ctx.compile, "started_at": self.started_at, "seconds": round(self.seconds, 1),
                   "resumed": self.resumed, "kept": len(self.kept), "failed": self.failed, **provenance(),
                   "configs": {h: configs[h] for h in sorted({r["config_hash"] for r in rows if r.get("config_hash")})
                               if h in configs}, "rows": rows}
        atomic_write_json(self.path, payload)
        self.partial.unlink(missing_ok=True)
        return self.path


def seeds_of_rows(rows: list[dict]) -> list[int]:
    return sorted({int(r.get("seed", 0)) for r in rows})


def stored_rows(plan: ExperimentPlan) -> dict[str, dict]:
    """Finished arm rows by task key: from the experiment's file at this size and from an interrupted run's
    partial file."""
    found = {r["task"]: r for r in (read_json(plan.path) or {}).get("rows", []) if isinstance(r, dict) and r.get("task")}
    try:
        for line in plan.partial.read_text().splitlines():
            try:
                row = json.loads(line)
                found[row["task"]] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
    except OSError:
        pass
    return found


def plan_experiment(name: str, data: Dataset, ctx: RunContext, seeds: tuple[int, ...] | None = None,
                    views: dict | None = None) -> ExperimentPlan:
    """Plan one experiment at the context's size (``seeds`` replace the size's own): rows measured now, and the
    arms to run; with ``--resume``, arms with a stored row of the same key are not run again. Stored rows of other
    seeds whose key is still today's are kept. ``views`` caches evaluation views."""
    ctx = dataclasses.replace(ctx, dataset=data.name)
    exp = experiment(name)
    key = size_key(exp, ctx.preset)
    size, views = exp.sizes[key], {} if views is None else views
    if size.n_eval not in views:
        views[size.n_eval] = evaluation_view(data, size.n_eval)
    started_at, start = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    with host_slot() as slot:
        measured = exp.measure(ctx, size, recipe_name(key))
    measured = [{**m, "host": slot.host, "concurrency": slot.concurrency} for m in measured]
    chosen = tuple(dict.fromkeys(seeds)) if seeds else None
    plan = ExperimentPlan(name, key, ctx, views[size.n_eval], measured + exp.arms(size, chosen, recipe_name(key)),
                          started_at, data.fingerprint, time.perf_counter() - start)
    stored = stored_rows(plan)
    keys = {plan.key(task) for _, task in plan.pending()}
    for i, task in plan.pending():
        if ctx.resume and plan.key(task) in stored:
            plan.items[i], plan.resumed = stored[plan.key(task)], plan.resumed + 1
    others = sorted({r.get("seed") for r in stored.values()} - {t.seed for _, t in plan.pending()} - set(chosen or ()))
    current = {plan.key(t) for t in exp.arms(size, tuple(others), plan.recipe)} if others else set()
    plan.kept = [r for k, r in stored.items() if k in current and k not in keys]
    return plan


def run_plans(plans: list[ExperimentPlan], ex) -> Iterator[tuple[ExperimentPlan, Path | Exception]]:
    """Run every plan's arms as one grid on the executor ``ex``; yield each plan with its written file (or the
    exception that stopped writing it) as soon as its last arm is done."""
    tasks, owners = [], []
    for plan in plans:
        data, n_val = plan.view
        for i, task in plan.pending():
            tasks.append(Task(f"{plan.name} {task.pipeline} seed {task.seed}", run_arm_task,
                              (ex.scatter(data), n_val, plan.ctx, task, plan.recipe, plan.key(task)),
                              gpu=needs_gpu(task.pipeline, plan.ctx)))
            owners.append((plan, i))
    for plan in plans:
        if not plan.pending():
            yield plan, _finish(plan)
    for done in ex.run(tasks):
        plan, i = owners[done.index]
        plan.fill(i, done.value) if done.error is None else plan.fail(i, done.error)
        if not plan.pending():  # its last arm is done (a finished or failed arm is no longer an ``Arm``)
            yield plan, _finish(plan)


def _finish(plan: ExperimentPlan) -> Path | Exception:
    try:
        return plan.finish()
    except Exception as exc:  # one experiment's file, not the grid
        return exc


def run_experiment(name: str, data: Dataset, ctx: RunContext, seeds: tuple[int, ...] | None = None) -> Path:
    """Run one experiment serially, in this process, and write its JSON."""
    [(_, out)] = run_plans([plan_experiment(name, data, ctx, seeds)], Serial())
    if isinstance(out, Exception):
        raise out
    return out


# --- stale: one comparison of hashes ---------------------------------------------------------------------------------

def stale(exp: dict) -> list[str]:
    """Why a stored experiment file no longer describes today's experiment, or [] when it does: an arm row whose
    recorded ``config_hash`` is not the hash today's arm of the same identity would have (a pipeline's preset,
    network, an arm's settings or a tuned learning rate changed), or a tuning it reads that is stale itself."""
    if exp.get("size") not in PRESETS:
        return [f"unknown size {exp.get('size')!r}"]
    e = experiment(exp["experiment"])
    rows = [r for r in exp.get("rows", []) if isinstance(r, dict) and r.get("pipeline")]
    today = {a.identity(): a for a in e.arms(e.sizes[exp["size"]], tuple(exp.get("seeds") or ()) or None,
                                             recipe_name(exp["size"]))}
    changed: dict[str, list[str]] = {}
    for row in rows:
        task = today.get(row.get("arm_identity", ""))
        want = get(task.pipeline).hash(task.config(recipe_name(exp["size"]), exp.get("time_budget"))) if task else None
        if row.get("config_hash") != want:
            changed.setdefault(row["pipeline"], []).extend(changed_fields(exp, row, task))
    why = [f"made with another configuration of {p}" + (f" ({', '.join(sorted(set(f)))})" if f else "")
           for p, f in changed.items()]
    return why + [f"its tuning {reason}" for t in e.tunings() if (reason := tuning_stale(t, read_json(t.path)))]


def changed_fields(exp: dict, row: dict, task: Arm | None) -> list[str]:
    """The fields where the row's recorded configuration differs from today's arm's (the record stored under its
    hash in the file's ``configs``); [] when either is unknown."""
    stored = (exp.get("configs") or {}).get(row.get("config_hash") or "")
    if task is None or not isinstance(stored, dict):
        return ["no such arm today"] if task is None else []
    now = get(task.pipeline).record(task.config(recipe_name(exp["size"]), exp.get("time_budget")))
    return sorted(k for k in {*stored, *now} if stored.get(k) != now.get(k))
