"""The report's experiments: each one object with its arms, sizes, tunings, claim, decision rule and report
section (PROTOCOL.md). Adding an experiment is one class here and one line in ``EXPERIMENTS``.

    python runner.py --experiment activation            # one experiment (cpu size)
    python runner.py --experiments all --preset smoke   # every experiment, tiny
    python runner.py --experiment dropout --seeds 0 1 2 3 4

Every arm is a registered pipeline run through its own ``run`` on a seeded training subset (the same subset
for every arm of a seed, so arms pair by seed) and scored on the test set. Settings an arm does not share with
its pipeline's tuned ``cpu`` preset are chosen on the validation split (``bench/tune.py``). Results go to
``results/experiments/<name>.json`` (atomic): seeds, epochs and images each run really trained, any time
budget, compile, device, commit and dirty flag.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from .. import REGISTRY
from ..base import RunContext
from ..data import Dataset, validation_split
from ..grid import Serial, Task, here, host_slot, needs_gpu
from ..results import atomic_write_text, dataset_dir, locked, provenance
from ..tuning import STALE, TUNING_DIR, Tuning, chosen, divergence_errors, drift, presets_of
from .claims import (ALL_OF_RULE, DELTA, FAST_SEEDS, INCONCLUSIVE, MIN_SEEDS, NOT_RUN, NOT_SUPPORTED, SUPPORTED,
                     TWO_ARM_RULE, Verdict, all_of, decide, family)
from .plots import bar_plot, batch_plot, cost_plot, curve_plot, epochs_plot, roofline
from .stats import Estimate, difference, mean_ci, slope
from .tables import aggregate, flag, fmt, md_table, pm, seeds_of


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


CPU_SEEDS, FAST = tuple(range(MIN_SEEDS)), tuple(range(FAST_SEEDS))
LR_GRID = (0.03, 0.1, 0.3, 0.9)  # the learning rates an experiment arm chooses from on validation (constant SGD)


def runs_on_cpu(name: str) -> bool:
    """Registered pipelines an experiment can afford on a CPU: every one whose cpu preset needs no time budget."""
    return getattr(REGISTRY[name].load().config("cpu"), "time_budget", None) is None


def side_of(arm: str) -> str:
    """``learned`` or ``hand``: the side of the 2012 contrast a registered pipeline is on."""
    return "learned" if family(arm) == "learned" else "hand"


def arms_of(kind: str) -> list[str]:
    return [n for n, e in REGISTRY.items() if e.family == kind and runs_on_cpu(n)]


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


def recipe_of(pipeline: str, preset: str):
    """A pipeline's preset at an experiment's size: its ``cpu`` preset, or its ``smoke`` one for tiny runs."""
    return REGISTRY[pipeline].load().config(size_name(preset))


def preset_model_kwargs(pipeline: str, **kwargs) -> tuple:
    """The network arguments of ``pipeline``'s ``cpu`` preset with ``kwargs`` set over them (sorted pairs): an
    arm that switches one thing of the pipeline's network keeps the rest of it (``cnn28``'s preset has no
    dropout, its network's default has)."""
    from ..learned.trainer import with_network
    return with_network(REGISTRY[pipeline].load().config("cpu"), **kwargs).model_kwargs


def run_arm(view: tuple[Dataset, int], ctx: RunContext, pipeline: str, seed: int, n_train: int, **overrides) -> dict:
    """One pipeline run on a seeded subset of the pool, as the runner would run it, scored on the validation
    and the test images; a diverged network scores chance on both."""
    data, n_val = view
    p = REGISTRY[pipeline].load()
    cfg = dataclasses.replace(recipe_of(pipeline, ctx.preset), n_train=n_train, n_test=None, **overrides)
    sctx = dataclasses.replace(ctx, seed=seed, figures=False, checkpoints=False, curves=False, resume=False)
    start = time.perf_counter()
    row = {"pipeline": pipeline, "seed": seed, "n_train": n_train, "diverged": False, "truncated": False,
           "n_classes": len(data.class_names)}
    try:
        out = p.run(data, cfg, sctx)
    except divergence_errors(pipeline) as exc:
        chance = 1 / len(data.class_names)
        return {**row, "test_accuracy": chance, "validation_accuracy": chance, "train_accuracy": None,
                "diverged": True, "error": str(exc), "seconds": time.perf_counter() - start}
    hits = np.asarray(out.y_pred) == np.asarray(out.y_true)
    return {**row, "n_train": out.n_train, "test_accuracy": float(hits[n_val:].mean()),
            "validation_accuracy": float(hits[:n_val].mean()), "train_accuracy": out.train_accuracy,
            "seconds": time.perf_counter() - start, "epochs": out.epochs,
            "train_images_per_second": out.train_images_per_second,
            "images_seen": out.extra.get("images_seen"), "truncated": bool(out.extra.get("truncated", False))}


@dataclass
class Arm:
    """One arm run still to make: a registered pipeline on a seeded subset of ``n_train`` images with
    ``overrides`` of its recipe; ``meta`` labels its row (arm, model, ...). A task of the run grid."""
    meta: dict
    pipeline: str
    seed: int
    n_train: int
    overrides: dict


def arm(meta: dict, pipeline: str, seed: int, n_train: int, **overrides) -> Arm:
    return Arm(meta, pipeline, seed, n_train, overrides)


def run_arm_task(data: Dataset, n_val: int, ctx: RunContext, task: Arm, key: str) -> dict:
    """An arm as a grid task: ``run_arm`` on ``(data, n_val)`` inside a host slot; the row, labelled."""
    with host_slot() as slot:
        row = run_arm((data, n_val), ctx, task.pipeline, task.seed, task.n_train, **task.overrides)
    return {**task.meta, **row, "host": slot.host, "concurrency": slot.concurrency,
            "device_name": here(ctx.device).name, "task": key}


class Experiment:
    """Subclasses set the class attributes and implement ``run``, ``judge`` and ``body``."""
    name: str
    description: str
    title: str
    claim: str | None = None
    rule: str = TWO_ARM_RULE
    sizes: dict[str, ExpSize]
    exercises: tuple[str, ...] = ()  # the chapter's exercises it answers (keys of ``EXERCISES``)

    def tunings(self) -> list[Tuning]:
        return []

    def plan(self, view: tuple[Dataset, int], ctx: RunContext, size: ExpSize,
             seeds: tuple[int, ...] | None) -> list[dict | Arm]:
        """Every arm and seed, in the order of the stored rows: an ``Arm`` to run as a task of the grid, or a
        row measured here, while planning (exact counts, memory, peaks: measured alone, before any task runs).
        ``seeds``: given on the command line, else None for the size's own; ``view``: ``evaluation_view(data)``."""
        raise NotImplementedError

    def judge(self, rows: pd.DataFrame, exp: dict) -> tuple[str, str, str]:
        """(measured, verdict, why) from the untruncated rows."""
        raise NotImplementedError

    def body(self, inp, exp: dict) -> str:
        raise NotImplementedError

    def answer(self, exp: dict, exercise: str = "") -> str:
        """An exercise's answer in one sentence, from the stored rows (experiments with ``exercises``)."""
        return self.judge(pd.DataFrame(exp["rows"]), exp)[0]

    def verdict(self, exp: dict | None) -> Verdict | None:
        if self.claim is None:
            return None
        if not exp:
            return Verdict(self.claim, self.name, "–", INCONCLUSIVE,
                           f"{NOT_RUN}: `python runner.py --experiment {self.name}`", self.rule)
        rows, failed = pd.DataFrame(exp["rows"]), pd.DataFrame(exp.get("failed") or [])
        cut = flag(rows, "truncated").eq(True)
        point = [c for c in ("seed",) if c in rows]  # by seed: a seed's arms at every size leave together
        dropped = set(rows.loc[cut, point].apply(tuple, axis=1)) if cut.any() else set()
        if len(failed) and set(point) <= set(failed.columns):
            dropped |= set(failed[point].apply(tuple, axis=1))
        hit = rows[point].apply(tuple, axis=1).isin(dropped) if dropped else cut & False
        measured, verdict, why = self.judge(rows[~hit], exp)
        lost = [f"{n} {what} run(s)" for n, what in ((int(cut.sum()), "budget-truncated"), (len(failed), "failed"))
                if n]
        if lost:
            why += (f"; {' and '.join(lost)} left out, with every arm's run of the same seed ({int(hit.sum())} stored "
                    "runs in all), so arms stay paired")
        return Verdict(self.claim, self.name, measured, verdict, why, self.rule)


# --- the experiments ------------------------------------------------------------------------------------

class Features(Experiment):
    name, title = "features", "Features matter"
    description = "features matter: the same linear SVM on pixels, HOG and SIFT encodings"
    claim = "With the same linear classifier, better features (HOG, SIFT encodings) beat raw pixels."
    control = "pixels_svm"
    rule = f"each feature arm − `{control}`, paired by seed: {TWO_ARM_RULE}; combined: {ALL_OF_RULE}"
    sizes = {"smoke": ExpSize(600, (0, 1)), "cpu": ExpSize(10_000, FAST)}

    @staticmethod
    def arms() -> list[str]:
        """The hand-crafted pipelines that share the one linear SVM (read from the code, not listed)."""
        from ..handcrafted.common import HandcraftedPipeline
        return [n for n in arms_of("handcrafted")
                if type(REGISTRY[n].load()).classifier is HandcraftedPipeline.classifier]

    def plan(self, view, ctx, size, seeds):
        return [arm({"arm": n}, n, s, size.n_train) for s in seeds or size.seeds
                for n in self.arms()]

    def judge(self, rows, exp):
        agg = aggregate(rows, ["arm"])
        control = seeds_of(rows, "arm", self.control)
        parts = [(arm, *decide(difference(seeds_of(rows, "arm", arm), control)))
                 for arm in agg.arm if arm != self.control]
        return ("; ".join(f"{a.arm} {pm(a.test_accuracy_mean, a.test_accuracy_half)}" for a in agg.itertuples()),
                *all_of(parts))

    def body(self, inp, exp):
        return bar_section(inp, exp, ["arm"], lambda a: a.arm, "Same linear SVM, different features")


class DataCurve(Experiment):
    name, title = "data", "Data: learning curves"
    description = "learning curves: test accuracy against training-set size, hand-crafted and learned"
    claim = "CNNs need much data: with few images hand-crafted features win, and the gap closes as data grows."
    rule = (f"gap = best hand-crafted − best learned test accuracy, per seed (each side's best by mean validation "
            f"accuracy at each size). (a) the gap at the smallest size, paired by seed; (b) the closing rate, −slope "
            f"of the gap against log10(images) per decade, one slope per seed run at every size: each by the two-arm "
            f"rule ({TWO_ARM_RULE}); combined: {ALL_OF_RULE}")
    sizes = {"smoke": ExpSize(600, (0,), epochs=2, sizes=(200, 600), min_steps=20),
             "cpu": ExpSize(0, CPU_SEEDS, epochs=8, sizes=(500, 2000, 8000, 20000), fast_up_to=2000,
                            min_steps=800)}

    @staticmethod
    def epochs_for(n: int, size: ExpSize, batch: int) -> int:
        """max(epochs, ⌈min_steps × batch / n⌉): small sets get at least ``min_steps`` SGD steps."""
        return max(size.epochs, math.ceil(size.min_steps * batch / max(n, 1)))

    @staticmethod
    def seeds_at(n: int, size: ExpSize, seeds: tuple[int, ...] | None) -> tuple[int, ...]:
        """Seeds given on the command line; else the size's, FAST_SEEDS of them at the cheap sizes."""
        if seeds:
            return seeds
        return FAST if n <= size.fast_up_to else size.seeds

    def plan(self, view, ctx, size, seeds):
        rows = []
        for n in size.sizes:
            for s in self.seeds_at(n, size, seeds):
                rows += [arm({"arm": a}, a, s, n) for a in arms_of("handcrafted")]
                for a in arms_of("learned"):
                    batch = REGISTRY[a].load().config("cpu").batch_size
                    rows.append(arm({"arm": a}, a, s, n, epochs=self.epochs_for(n, size, batch)))
        return rows

    @staticmethod
    def gaps(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Per size: each side's best arm, chosen by mean *validation* accuracy (the test set never chooses), and
        the per-seed gap between their test accuracies."""
        agg = aggregate(rows, ["arm", "n_train"], values=("validation_accuracy",))
        agg["side"] = [side_of(a) for a in agg.arm]
        best = agg.loc[agg.groupby(["n_train", "side"]).validation_accuracy_mean.idxmax()]
        best = best.pivot(index="n_train", columns="side", values="arm").reindex(columns=["hand", "learned"]).dropna()
        per_seed = []
        for n, b in best.iterrows():
            h = seeds_of(rows, "arm", b.hand, n_train=n)
            l = seeds_of(rows, "arm", b.learned, n_train=n)
            per_seed += [{"n_train": n, "seed": s, "gap": h[s] - l[s]} for s in sorted(set(h) & set(l))]
        return best, pd.DataFrame(per_seed, columns=["n_train", "seed", "gap"])

    def judge(self, rows, exp):
        best, gaps = self.gaps(rows)
        if gaps.empty:
            return "no size with both sides", INCONCLUSIVE, NOT_RUN
        means = gaps.groupby("n_train").gap.mean()
        measured = "; ".join(f"{int(n):,}: gap {g:+.3f} ({best.loc[n].hand} vs {best.loc[n].learned})"
                             for n, g in means.items())
        small = gaps[gaps.n_train == gaps.n_train.min()]
        lead = dataclasses.replace(mean_ci(small.gap), method="paired t")
        return (measured, *all_of([("hand-crafted lead at the smallest size", *decide(lead)),
                                   ("gap closes per decade of data", *decide(self.closing(gaps)))]))

    @staticmethod
    def closing(gaps: pd.DataFrame) -> Estimate:
        """−slope of the gap against log10(images), one slope per seed measured at every size (a seed's subsets
        are nested, so its points are not independent), then the mean and t interval over those seeds."""
        sizes = gaps.n_train.nunique()
        per_seed = [-slope(np.log10(g.n_train), g.gap).mean for _, g in gaps.groupby("seed") if len(g) == sizes]
        est = mean_ci(per_seed)
        return dataclasses.replace(est, method="per-seed slopes") if sizes >= 2 else Estimate(
            float("nan"), float("nan"), float("nan"), 0)

    def body(self, inp, exp):
        rows = pd.DataFrame(exp["rows"])
        agg = aggregate(rows, ["arm", "n_train"])
        full = full_data_points(inp, exp, agg)
        learned = {a for a in agg.arm if side_of(a) == "learned"}
        curve_plot(agg, full, learned, inp.figures / "learning_curves.png")
        table = md_table(["pipeline", "train images", "test acc (mean ± 95% CI)", "seeds"],
                         [[a.arm, fmt(int(a.n_train)), pm(a.test_accuracy_mean, a.test_accuracy_half), a.n]
                          for a in agg.itertuples()]
                         + [[p.arm, fmt(int(p.n_train)), pm(p.test_accuracy_mean, p.test_accuracy_half),
                             f"{p.n} (summary.csv, preset {p.preset})"] for p in full.itertuples()])
        cfg = exp["config"]
        schedule = (f"Learned arms train max({cfg['epochs']}, ⌈{cfg['min_steps']} × batch / n⌉) epochs at their "
                    "pipeline's cpu settings, so every size gets at least "
                    f"{cfg['min_steps']} SGD steps; hand-crafted arms use their cpu settings on the subset. All "
                    "arms of one seed train on the same subset and score the same test images. Open markers are "
                    "the runner's own full-data rows of summary.csv, not runs of this experiment.")
        both = pd.concat([agg, full], ignore_index=True)
        diverged, cut = failed_runs(rows)
        counts = f" Runs that diverged (scored as chance): {diverged}; stopped by a time budget: {cut}."
        return (f"![learning curves](figures/learning_curves.png)\n\n{table}\n\n{schedule}{counts}\n\n"
                f"Crossover: {crossover(both)}")


class Activation(Experiment):
    name, title = "activation", "Activation: sigmoid against ReLU"
    description = "sigmoid against ReLU, each at its own validation-chosen learning rate"
    claim = "ReLU makes training easier than sigmoid (same network, same training length)."
    rule = (f"per network: ReLU − sigmoid, each at the learning rate the validation split chose for it, paired by "
            f"seed: {TWO_ARM_RULE}; combined over networks: {ALL_OF_RULE}")
    activations = ("sigmoid", "relu")
    lr_grid = LR_GRID
    sizes = {"smoke": ExpSize(600, (0, 1), epochs=2), "cpu": ExpSize(10_000, FAST, epochs=16)}

    def tunings(self):
        size = self.sizes["cpu"]
        return [Tuning(f"activation-{m}-{a}", m, {"lr": self.lr_grid},
                       {"n_train": size.n_train, "epochs": size.epochs,
                        "model_kwargs": preset_model_kwargs(m, activation=a)})
                for m in arms_of("learned") for a in self.activations]

    def plan(self, view, ctx, size, seeds):
        rows = []
        for s in seeds or size.seeds:
            for t in self.tunings():
                model, act = t.pipeline, dict(t.fixed["model_kwargs"])["activation"]
                lr = chosen(t.name)["lr"]
                rows.append(arm({"arm": f"{model} {act}", "model": model, "activation": act, "lr": lr},
                                model, s, size.n_train, epochs=size.epochs, lr=lr,
                                model_kwargs=t.fixed["model_kwargs"]))
        return rows

    def judge(self, rows, exp):
        parts, measured = [], []
        for model, g in rows.groupby("model", sort=False):
            r, s = seeds_of(g, "activation", "relu"), seeds_of(g, "activation", "sigmoid")
            lr = dict(zip(g.activation, g.lr))
            measured.append(f"{model}: ReLU {mean_of(r):.4f} (lr {lr.get('relu')}) vs sigmoid {mean_of(s):.4f} "
                            f"(lr {lr.get('sigmoid')})")
            parts.append((model, *decide(difference(r, s))))
        return "; ".join(measured), *all_of(parts)

    def body(self, inp, exp):
        text = bar_section(inp, exp, ["model", "activation", "lr"], lambda a: f"{a.model} {a.activation} lr {a.lr}",
                           "Sigmoid vs ReLU, each at its validation-chosen learning rate", hue="activation")
        return text + "\n\n" + tuning_table([t.name for t in self.tunings()])


class LeNetLadder(Experiment):
    name, title = "lenet_ladder", "LeNet modernised step by step (exercise 5)"
    exercises = ("5",)
    description = ("d2l's LeNet with ReLU, max-pooling, dropout and standardised input added one at a time and "
                   "each alone, every arm at its own validation-chosen learning rate")
    claim = "Modernising LeNet (ReLU, max-pooling, dropout, standardised input) improves its test accuracy."
    rule = f"all four steps − d2l's LeNet, each at its validation-chosen lr, paired by seed: {TWO_ARM_RULE}"
    lr_grid = LR_GRID
    steps = {"relu": {"activation": "relu"}, "maxpool": {"pool": "max"}, "dropout": {"dropout": 0.5},
             "standardize": {}}  # the last is the trainer's input scaling, not a layer
    sizes = {"smoke": ExpSize(600, (0, 1), epochs=2), "cpu": ExpSize(10_000, FAST, epochs=10)}

    def arms(self) -> dict[str, tuple[str, ...]]:
        """Label -> the steps it takes: the recipe, each step alone, then the ladder (steps added in turn)."""
        names = list(self.steps)
        return {"d2l LeNet": (), **{f"{n} alone": (n,) for n in names},
                **{" + ".join(names[:i]): tuple(names[:i]) for i in range(2, len(names) + 1)}}

    def rung_below(self, label: str) -> str | None:
        """The ladder arm one step shorter (the recipe below the first step), or None for the 'alone' arms."""
        arms = self.arms()
        taken = arms[label]
        if len(taken) < 2:
            return None
        return next(a for a, t in arms.items() if t == taken[:-1])

    def overrides(self, taken: tuple[str, ...]) -> dict:
        kwargs = {k: v for step in taken for k, v in self.steps[step].items()}
        return {"model_kwargs": tuple(sorted(kwargs.items())), "standardize": "standardize" in taken}

    def tunings(self):
        size = self.sizes["cpu"]
        return [Tuning(f"ladder-{'-'.join(taken) or 'd2l'}", "lenet", {"lr": self.lr_grid},
                       {"n_train": size.n_train, "epochs": size.epochs, **self.overrides(taken)})
                for taken in self.arms().values()]

    def plan(self, view, ctx, size, seeds):
        rows = []
        for s in seeds or size.seeds:
            for (label, taken), t in zip(self.arms().items(), self.tunings()):
                lr = chosen(t.name)["lr"]
                rows.append(arm({"arm": label, "steps": len(taken), "lr": lr}, "lenet", s, size.n_train,
                                epochs=size.epochs, lr=lr, **self.overrides(taken)))
        return rows

    def judge(self, rows, exp):
        labels = list(self.arms())
        base, full = seeds_of(rows, "arm", labels[0]), seeds_of(rows, "arm", labels[-1])
        alone = {a: difference(seeds_of(rows, "arm", a), base) for a in labels if a.endswith(" alone")}
        top = max(alone, key=lambda a: alone[a].mean)
        effect = difference(full, base)
        return (f"d2l LeNet {mean_of(base):.4f} → all four steps {mean_of(full):.4f} ({effect.text()}); the step that "
                f"helps most alone: {top.removesuffix(' alone')} ({alone[top].text()})", *decide(effect))

    def body(self, inp, exp):
        rows = pd.DataFrame(exp["rows"])
        labels = list(self.arms())
        base = seeds_of(rows, "arm", labels[0])
        text = bar_section(inp, exp, ["arm", "lr"], lambda a: f"{a.arm} (lr {a.lr})", "LeNet modernised: "
                           "the recipe, each step alone, the steps added in turn")
        steps = [[a, difference(seeds_of(rows, "arm", a), base).text(),
                  f"{difference(seeds_of(rows, 'arm', a), seeds_of(rows, 'arm', below)).text()} (vs {below})"
                  if (below := self.rung_below(a)) else "–"] for a in labels[1:]]
        table = md_table(["arm", "test accuracy − d2l LeNet (mean, 95% CI)", "− the rung below"], steps)
        return f"{text}\n\n{table}\n\n{tuning_table([t.name for t in self.tunings()])}"


class Ablation(Experiment):
    """One network with one switch on and off; every other setting is its tuned ``cpu`` preset's (tuned with
    the preset's own switches: ``cnn28``'s without dropout, with augmentation)."""
    model = "cnn28"
    arms: dict[str, dict]  # label -> the switch's overrides; the first arm is the switch on
    sizes = {"smoke": ExpSize(600, (0, 1), epochs=2), "cpu": ExpSize(10_000, FAST, epochs=16)}
    plot_title: str

    def plan(self, view, ctx, size, seeds):
        return [arm({"arm": label}, self.model, s, size.n_train, epochs=size.epochs, **self.overrides(label))
                for s in seeds or size.seeds for label in self.arms]

    def overrides(self, label: str) -> dict:
        """An arm's settings over the preset; a network switch keeps the preset's other network arguments
        (``cnn28``'s width of the 28x28 block)."""
        out = dict(self.arms[label])
        if "model_kwargs" in out:
            out["model_kwargs"] = preset_model_kwargs(self.model, **dict(out["model_kwargs"]))
        return out

    def per_arm(self, rows: pd.DataFrame, value: str = "test_accuracy") -> tuple[dict, dict]:
        on, off = self.arms
        return seeds_of(rows, "arm", on, value), seeds_of(rows, "arm", off, value)

    def body(self, inp, exp):
        return bar_section(inp, exp, ["arm"], lambda a: a.arm, f"{self.model} {self.plot_title}", with_train=True)


def mean_of(values: dict) -> float:
    return float(np.mean(list(values.values()))) if values else float("nan")


class Dropout(Ablation):
    name, title = "dropout", "Dropout"
    description = "dropout 0.5 before the classifier of cnn28, on and off: the train/test gap"
    claim = "Dropout reduces overfitting (a smaller train/test gap)."
    rule = (f"effect = gap without dropout − gap with it (gap = eval-mode train accuracy − test accuracy), paired "
            f"by seed: {TWO_ARM_RULE}")
    arms = {"dropout 0.5": {"model_kwargs": (("dropout", 0.5),)}, "dropout 0.0": {"model_kwargs": (("dropout", 0.0),)}}
    plot_title = "with and without dropout"

    def judge(self, rows, exp):
        rows = rows.assign(gap=pd.to_numeric(rows.train_accuracy, errors="coerce") - rows.test_accuracy)
        no_gap = set(rows.seed[rows.gap.isna()])  # a diverged run has no train accuracy: drop its seed everywhere
        rows = rows[~rows.seed.isin(no_gap)]
        on, off = self.per_arm(rows, "gap")
        t_on, t_off = self.per_arm(rows)
        measured = (f"gap with dropout {mean_of(on):.4f} (test {mean_of(t_on):.4f}); without {mean_of(off):.4f} "
                    f"(test {mean_of(t_off):.4f}); test difference {difference(t_on, t_off).text()}")
        verdict, why = decide(difference(off, on))
        if no_gap:
            why += f"; seeds without a gap (diverged) left out: {sorted(no_gap)}"
        return measured, verdict, why


class Augmentation(Ablation):
    name, title = "augmentation", "Augmentation"
    description = ("random flips and 2-pixel crops in training (each image its own) with mirror averaging at test, "
                   "on and off, for cnn28")
    claim = "Data augmentation (flips, crops) improves test accuracy."
    rule = f"effect = augmented − plain test accuracy, paired by seed: {TWO_ARM_RULE}"
    arms = {"augmented": {"augment": True, "flip_test": True}, "plain": {"augment": False, "flip_test": False}}
    plot_title = "with and without flips and crops"

    def judge(self, rows, exp):
        a, p = self.per_arm(rows)
        effect = difference(a, p)
        return (f"augmented {mean_of(a):.4f}; plain {mean_of(p):.4f}; effect {effect.text()} at "
                f"{exp['config']['epochs']} epochs of {exp['config']['n_train']:,} images", *decide(effect))


class Anatomy(Experiment):
    name, title = "anatomy", "Compute anatomy of AlexNet-224 (exercises 4a, 4b)"
    exercises = ("4a", "4b")
    recipe_batch = 128  # the chapter's batch for AlexNet: where the activations are weighed against the weights
    description = "AlexNet-224 parameters, FLOPs, memory and time per layer"
    claim = ("In AlexNet the fully connected layers hold most parameters while the convolutions do most of the "
             "compute.")
    rule = ("exact counts, no seeds: supported if the fully connected layers hold > 50% of the parameters and the "
            "convolutions > 50% of the forward FLOPs; else not supported")
    sizes = {"smoke": ExpSize(0, (0,)), "cpu": ExpSize(0, (0,))}

    def plan(self, view, ctx, size, seeds):
        from ..learned.anatomy import layer_table
        from ..distributed import torch_device
        return layer_table(batch=2 if ctx.preset == "smoke" else 16, repeats=1 if ctx.preset == "smoke" else 3,
                           device=torch_device(ctx.device.kind))

    def judge(self, rows, exp):
        fc_params = rows[rows.layer == "Linear"].params.sum() / rows.params.sum()
        conv_flops = rows[rows.layer == "Conv2d"].flops.sum() / rows.flops.sum()
        conv_time = rows[rows.layer == "Conv2d"].forward_ms.sum() / rows.forward_ms.sum()
        match = ("analytic FLOPs equal torch's counter at every layer" if (rows.flops == rows.flops_torch).all()
                 else "analytic FLOPs DIFFER from torch's counter at some layer")
        return (f"FC layers: {fc_params:.1%} of parameters; convolutions: {conv_flops:.1%} of FLOPs, "
                f"{conv_time:.1%} of measured forward time",
                SUPPORTED if fc_params > 0.5 and conv_flops > 0.5 else NOT_SUPPORTED, match)

    def answer(self, exp, exercise=""):
        frame = pd.DataFrame(exp["rows"])
        if exercise == "4b":
            conv = frame[frame.layer == "Conv2d"]
            top = layer_names(frame.layer)[int(frame.flops.idxmax())]
            return (f"the convolutions: {conv.flops.sum() / frame.flops.sum():.1%} of the forward FLOPs "
                    f"({frame.flops.sum() / 1e9:.2f} GFLOPs per image; {top} alone {frame.flops.max() / frame.flops.sum():.1%}) "
                    f"and {conv.forward_ms.sum() / frame.forward_ms.sum():.1%} of the measured forward time")
        weights = 4 * frame.params.sum()
        fc = frame[frame.layer == "Linear"].params.sum() / frame.params.sum()
        acts = self.recipe_batch * frame.activation_bytes.sum()
        return (f"the weights: {weights / 2**20:.0f} MiB in fp32 ({fc:.1%} in the fully connected layers), held again "
                f"for their gradients in training; one image's forward activations take "
                f"{frame.activation_bytes.sum() / 2**20:.1f} MiB, {acts / 2**20:.0f} MiB at the recipe's batch of "
                f"{self.recipe_batch}, so the weights dominate up to a batch of about "
                f"{weights / frame.activation_bytes.sum():.0f} images and the activations beyond it")

    def body(self, inp, exp):
        frame = pd.DataFrame(exp["rows"])
        device = frame.device[0] if "device" in frame else "cpu"
        rows = [[r.index, r.layer, r.output_shape, fmt(int(r.params)), fmt(int(r.flops)), fmt(int(r.flops_torch)),
                 f"{r.activation_bytes / 1024:.1f}", f"{r.forward_ms:.2f}"] for r in frame.itertuples()]
        table = md_table(["#", "layer", "output", "params", "FLOPs (analytic)", "FLOPs (torch counter)",
                          "activation KiB/img", f"forward ms (batch {int(frame.batch[0])}, {device})"], rows)
        conv, fc = frame[frame.layer == "Conv2d"], frame[frame.layer == "Linear"]
        return (f"{table}\n\nTotals: {frame.params.sum():,} parameters ({fc.params.sum() / frame.params.sum():.1%} in "
                f"the fully connected layers); {frame.flops.sum() / 1e9:.2f} GFLOPs per image forward "
                f"({conv.flops.sum() / frame.flops.sum():.1%} in the convolutions); activations "
                f"{frame.activation_bytes.sum() / 2**20:.2f} MiB per image (fp32). {self.judge(frame, exp)[2]}.")


def layer_names(layers) -> list[str]:
    """conv1..conv5, fc6..fc8 as the AlexNet paper numbers them; other layers keep their class name."""
    out, conv, fc = [], 0, 0
    for layer in layers:
        conv, fc = conv + (layer == "Conv2d"), fc + (layer == "Linear")
        out.append(f"conv{conv}" if layer == "Conv2d" else f"fc{5 + fc}" if layer == "Linear" else layer)
    return out


class Roofline(Experiment):
    name, title = "roofline", "Memory bandwidth: AlexNet-224 on a roofline (exercise 4c)"
    exercises = ("4c",)
    description = ("bytes moved and FLOPs per byte of each AlexNet-224 layer at batch 1 and at the recipe's batch, "
                   "placed under this device's measured peak FLOP/s and memory bandwidth")
    sizes = {"smoke": ExpSize(0, (0,)), "cpu": ExpSize(0, (0,))}
    batches = {"smoke": (1, 4), "cpu": (1, 128)}  # 128: the chapter's batch for AlexNet
    peaks = {"smoke": {"matmul_n": 256, "copy_mib": 8, "repeats": 2},
             "cpu": {"matmul_n": 2048, "copy_mib": 256, "repeats": 5}}

    def plan(self, view, ctx, size, seeds):
        from ..distributed import torch_device
        from ..learned.anatomy import achieved_flops, device_peaks, layer_traffic
        device, which = torch_device(ctx.device.kind), size_name(ctx.preset)
        peaks = device_peaks(device, **self.peaks[which])
        rows = []
        for batch in self.batches[which]:
            achieved = achieved_flops(batch, device, repeats=1 if which == "smoke" else 3)
            for row, measured in zip(layer_traffic(batch), achieved):
                rows.append({**row, **peaks, "achieved_flops": measured,
                             "bound": ("memory" if row["intensity"] < peaks["ridge"] else "compute")
                             if row["flops"] else "–"})
        return rows

    @staticmethod
    def named(exp: dict) -> pd.DataFrame:
        """The stored rows, each layer named as the AlexNet paper numbers it."""
        frame = pd.DataFrame(exp["rows"])
        return frame.assign(name=[n for _, g in frame.groupby("batch", sort=False) for n in layer_names(g.layer)])

    def answer(self, exp, exercise=""):
        return self.bound_layers(self.named(exp))

    @staticmethod
    def bound_layers(frame: pd.DataFrame) -> str:
        """Which layers the bandwidth limits, per batch size."""
        parts = []
        for batch, g in frame[frame.flops > 0].groupby("batch"):
            memory = list(g.name[g.bound == "memory"])
            verb = "sits" if len(memory) == 1 else "sit"
            parts.append(f"at batch {batch}, " + (f"{', '.join(memory)} {verb} below the ridge point (bandwidth-bound)"
                                                  if memory else "every layer sits above the ridge point "
                                                                 "(compute-bound)"))
        return "; ".join(parts)

    def body(self, inp, exp):
        frame = self.named(exp)
        path = roofline(frame, inp.figures / f"exp_{self.name}.png")
        peak = frame.iloc[0]
        rows = [[r.name, r.batch, fmt(r.flops / 1e6, 1), fmt(r.bytes_read / 2**20, 2), fmt(r.bytes_written / 2**20, 2),
                 fmt(r.intensity, 1), r.bound, fmt(r.achieved_flops / 1e9, 1) if r.flops else "–"]
                for r in frame[frame.flops > 0].itertuples()]
        table = md_table(["layer", "batch", "MFLOPs", "MiB read", "MiB written", "FLOPs/byte", "bound",
                          "measured GFLOP/s"], rows)
        return (f"![roofline](figures/{path.name})\n\nThis device ({peak.device}): {peak.peak_flops / 1e9:.1f} "
                f"GFLOP/s on a {int(peak.matmul_n)}² fp32 matmul, {peak.bandwidth / 1e9:.1f} GB/s on a "
                f"{int(peak.copy_mib)} MiB copy (read + write), so the ridge point is {peak.ridge:.1f} FLOPs per "
                f"byte. These ceilings are what a plain matmul and a plain copy reached: a layer drawn above the roof ran "
                f"faster than that matmul (oneDNN's convolutions can), or, left of the ridge, moved fewer bytes "
                f"through main memory than counted (caches).\n\n{table}\n\nBytes are a lower bound (weights read once per batch, each activation read "
                f"and written once, fp32); pooling and activation layers move bytes but do no counted FLOPs and are "
                f"left out. **Answer:** {self.bound_layers(frame)}.")


class Epochs(Experiment):
    name, title = "epochs", "Epochs: training longer than the recipe (exercise 1)"
    exercises = ("1",)
    description = ("LeNet and cnn28 trained for 1×, 2× and 3× their recipe's epochs, each a complete run of its own "
                   "schedule (cnn28's one-cycle schedule stretches over the longer run)")
    claim = ("Training longer helps d2l's LeNet more than cnn28: LeNet's recipe stops before it has learned what it "
             "can, the modern network's does not (at the cpu size: LeNet on 20,000 images, cnn28 on 3,000).")
    networks = ("lenet", "cnn28")
    multiples = (1, 2, 3)
    rule = (f"effect = LeNet's test-accuracy gain from 1× to 3× the recipe's epochs − cnn28's, paired by seed: "
            f"{TWO_ARM_RULE}")
    sizes = {"smoke": ExpSize(600, (0, 1), n_eval=100),
             "cpu": ExpSize(20_000, CPU_SEEDS, n_train_of=(("cnn28", 3_000),), n_eval=2_000)}

    def plan(self, view, ctx, size, seeds):
        rows = []
        for s in seeds or size.seeds:
            for net in self.networks:
                recipe = recipe_of(net, ctx.preset).epochs
                rows += [arm({"arm": f"{net} {m}×", "model": net, "multiple": m}, net, s, size.n_for(net),
                             epochs=m * recipe) for m in self.multiples]
        return rows

    def gains(self, rows: pd.DataFrame) -> dict[str, dict]:
        """Per network, {seed: test accuracy at the longest run − at the recipe's length}."""
        out = {}
        for net in self.networks:
            hi, lo = (seeds_of(rows, "model", net, multiple=m) for m in (self.multiples[-1], self.multiples[0]))
            out[net] = {s: hi[s] - lo[s] for s in set(hi) & set(lo)}
        return out

    def judge(self, rows, exp):
        agg = aggregate(rows, ["model", "multiple"])
        gains = self.gains(rows)
        measured = "; ".join(
            f"{net}: " + ", ".join(f"{int(a.multiple)}× {a.test_accuracy_mean:.4f}" for a in g.itertuples())
            + f" (gain {mean_ci(list(gains[net].values())).text()}; train − test gap "
            + " → ".join(f"{a.gap_mean:+.3f}" for a in g.itertuples()) + ")"
            for net, g in agg.groupby("model", sort=False))
        return measured, *decide(difference(*(gains[n] for n in self.networks)))

    def body(self, inp, exp):
        rows = pd.DataFrame(exp["rows"])
        agg = aggregate(rows, ["model", "multiple", "epochs"])
        path = epochs_plot(agg, inp.figures / f"exp_{self.name}.png")
        table = md_table(["network", "epochs (× recipe)", "train images", "test acc", "train acc (eval mode)",
                          "gap (train − test)", "seeds"],
                         [[a.model, f"{fmt(a.epochs, 0)} ({int(a.multiple)}×)",
                           fmt(int(dict(exp["config"]["n_train_of"]).get(a.model, exp["config"]["n_train"]))),
                           pm(a.test_accuracy_mean, a.test_accuracy_half), pm(a.train_accuracy_mean, a.train_accuracy_half),
                           pm(a.gap_mean, a.gap_half), a.n] for a in agg.itertuples()])
        diverged, _ = failed_runs(rows)
        note = f" {diverged} run(s) diverged and count as chance." if diverged else ""
        return (f"![epochs](figures/{path.name})\n\n{table}\n\nEach point is a complete run: the recipe's "
                f"settings with its epochs multiplied (LeNet's learning rate is constant, cnn28's one-cycle schedule "
                f"spans the whole run), on a seeded subset of the training pool (a size per network, so that the "
                f"cpu size fits its time: a network trained on fewer images can overfit sooner and gain less "
                f"from more epochs, which favours the claim), scored on the first "
                f"{fmt(exp['config']['n_eval'] or 0)} test images.{note} "
                f"**Answer:** {self.answer(exp)}.")

    def answer(self, exp, exercise=""):
        rows = pd.DataFrame(exp["rows"])
        agg = aggregate(rows, ["model", "multiple"])
        gains = {net: mean_ci(list(g.values())) for net, g in self.gains(rows).items()}
        parts = []
        for net, g in agg.groupby("model", sort=False):
            first, last = g.iloc[0], g.iloc[-1]
            parts.append(f"{net} goes from {first.test_accuracy_mean:.3f} to {last.test_accuracy_mean:.3f} "
                         f"(gain {gains[net].text()}) while its train − test gap goes from {first.gap_mean:+.3f} "
                         f"to {last.gap_mean:+.3f}")
        return "from 1× to 3× the recipe's epochs, " + "; ".join(parts)


class BatchSize(Experiment):
    name, title = "batch", "Batch size: accuracy, memory and speed (exercise 3)"
    exercises = ("3",)
    description = ("LeNet and cnn28 at batch sizes from 16 to 1024 for the recipe's epochs, each at the recipe's "
                   "learning rate and at the rate scaled with the batch; peak training memory and throughput")
    networks = ("lenet", "cnn28")
    batches = (16, 64, 256, 1024)        # and each network's own recipe batch
    rules = ("recipe lr", "scaled lr")   # scaled: lr × batch / the recipe's batch (Goyal et al. 2017)
    sizes = {"smoke": ExpSize(600, (0,), n_eval=100),
             "cpu": ExpSize(10_000, CPU_SEEDS, n_train_of=(("cnn28", 2_000),), n_eval=2_000)}

    def grid(self, net: str, preset: str) -> list[tuple[int, str, float]]:
        """(batch, rule, lr) of each run of one network; at the recipe's own batch both rules are one run."""
        recipe, out = recipe_of(net, preset), []
        for b in sorted(set(self.batches) | {recipe.batch_size}):
            out.append((b, self.rules[0], recipe.lr))
            if b != recipe.batch_size:
                out.append((b, self.rules[1], recipe.lr * b / recipe.batch_size))
        return out

    def plan(self, view, ctx, size, seeds):
        from ..distributed import torch_device
        from ..learned.anatomy import memory_by_batch
        rows = []
        for net in self.networks:
            batches = sorted({b for b, _, _ in self.grid(net, ctx.preset)})
            memory = memory_by_batch(recipe_of(net, ctx.preset), batches, torch_device(ctx.device.kind))
            rows += [{"kind": "memory", "model": net, "batch": b, **m} for b, m in memory.items()]
        for s in seeds or size.seeds:
            for net in self.networks:
                rows += [arm({"kind": "accuracy", "model": net, "batch": b, "rule": rule, "lr": lr}, net, s,
                             size.n_for(net), batch_size=b, lr=lr)
                         for b, rule, lr in self.grid(net, ctx.preset)]
        return rows

    def lines(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Mean and CI per (network, rule, batch); the recipe batch's one run belongs to both rules' lines."""
        acc = rows[rows.kind == "accuracy"]
        both = [acc]
        for net, g in acc.groupby("model"):
            scaled = set(g.batch[g.rule == self.rules[1]])
            own = g[(g.rule == self.rules[0]) & ~g.batch.isin(scaled)]
            both.append(own.assign(rule=self.rules[1]))
        agg = aggregate(pd.concat(both), ["model", "rule", "batch", "lr"],
                        values=("test_accuracy", "train_images_per_second"))
        order = {n: i for i, n in enumerate(self.networks)}
        return agg.sort_values(["model", "batch", "rule"], key=lambda c: c.map(order) if c.name == "model" else c,
                               ignore_index=True)

    def answer(self, exp, exercise=""):
        rows = pd.DataFrame(exp["rows"])
        lines, memory = self.lines(rows), rows[rows.kind == "memory"]
        parts = []
        for net in self.networks:
            g = lines[lines.model == net]
            acc = "; ".join(f"{rule} {r.iloc[0].test_accuracy_mean:.3f} → {r.iloc[-1].test_accuracy_mean:.3f}"
                            for rule, r in g.sort_values("batch").groupby("rule", sort=False))
            m = memory[memory.model == net].sort_values("batch")
            b0, b1 = int(m.batch.iloc[0]), int(m.batch.iloc[-1])
            speed = g[g.rule == self.rules[0]].sort_values("batch")
            parts.append(f"{net}, batch {b0} → {b1}: test accuracy {acc}; peak training memory "
                         f"{m.peak_memory_bytes.iloc[0] / 2**20:.0f} → {m.peak_memory_bytes.iloc[-1] / 2**20:.0f} MiB; "
                         f"training speed {speed.train_images_per_second_mean.iloc[0]:,.0f} → "
                         f"{speed.train_images_per_second_mean.iloc[-1]:,.0f} img/s")
        return "; ".join(parts)

    def body(self, inp, exp):
        rows = pd.DataFrame(exp["rows"])
        lines, memory = self.lines(rows), rows[rows.kind == "memory"]
        path = batch_plot(lines, memory, inp.figures / f"exp_{self.name}.png")
        table = md_table(["network", "batch", "rule", "lr", "test acc", "train img/s", "peak training MiB", "seeds"],
                         [[a.model, a.batch, a.rule, f"{a.lr:g}", pm(a.test_accuracy_mean, a.test_accuracy_half),
                           fmt(getattr(a, "train_images_per_second_mean", np.nan), 0),
                           fmt(float(memory[(memory.model == a.model) & (memory.batch == a.batch)]
                                     .peak_memory_bytes.iloc[0]) / 2**20, 1), a.n] for a in lines.itertuples()])
        cfg = exp["config"]
        sizes = ", ".join(f"{n} {fmt(int(dict(cfg['n_train_of']).get(n, cfg['n_train'])))}" for n in self.networks)
        diverged, _ = failed_runs(rows[rows.kind == "accuracy"])
        note = f" {diverged} run(s) diverged (NaN loss) and count as chance." if diverged else ""
        return (f"![batch size](figures/{path.name})\n\n{table}\n\nEvery run trains its recipe's epochs on a seeded "
                f"subset (training images: {sizes}), so a larger batch takes fewer steps. *Recipe lr* keeps the "
                f"recipe's learning rate at every batch, as the exercise asks; *scaled lr* multiplies it by batch / "
                f"recipe batch (the linear scaling rule). Memory: {memory.memory_method.iloc[0]}, 3 SGD steps on "
                f"{exp['device']}, one measurement per batch. Throughput: training images per second of the run's "
                f"epochs after the first.{note} **Answer:** {self.answer(exp)}.")


class SimplerAlexNet(Experiment):
    name, title = "simpler_alexnet", "A cheaper AlexNet (exercise 2a)"
    exercises = ("2a",)
    description = ("AlexNet made cheaper step by step (fewer dense units, fewer channels, a smaller input): FLOPs, "
                   "measured training speed, test accuracy within a fixed training time and, where the size has "
                   "them, after a fixed number of epochs")
    # Label -> (input side, model settings); each step keeps the ones before it. The first is the chapter's AlexNet.
    points = {"AlexNet-224": (224, {}),
              "dense 1024": (224, {"hidden": 1024}),
              "+ channels ½": (224, {"hidden": 1024, "width": 0.5}),
              "+ input 112": (112, {"hidden": 1024, "width": 0.5}),
              "+ channels ¼, dense 256": (112, {"hidden": 256, "width": 0.25})}
    TRAINED_MARGIN = 0.1  # the reference must beat chance by this much before "keeps its accuracy" means anything
    # epochs 0: no fixed-epoch arm (one epoch of AlexNet-224 on the 50k pool takes about 17 min on 2 CPU cores)
    sizes = {"smoke": ExpSize(150, (0,), epochs=1, n_eval=50, budget=1.0),
             "cpu": ExpSize(0, CPU_SEEDS, epochs=0, n_eval=1_000, budget=15.0),
             "paper": ExpSize(0, CPU_SEEDS, epochs=10, n_eval=None, budget=60.0)}

    def overrides(self, label: str) -> dict:
        side, kwargs = self.points[label]
        return {"image_size": side, "model_kwargs": tuple(sorted(kwargs.items()))}

    def plan(self, view, ctx, size, seeds):
        from ..learned.anatomy import forward_flops
        from ..learned.trainer import build_model
        import torch
        base, rows = recipe_of("alexnet", ctx.preset), []
        for label in self.points:
            model = build_model(dataclasses.replace(base, **self.overrides(label)), torch.device("cpu"))
            rows.append({"kind": "cost", "point": label, "flops": forward_flops(model, self.points[label][0]),
                         "params": sum(p.numel() for p in model.parameters())})
        n = size.n_train or len(view[0].x_train)
        # train accuracy is not asked here: score few training images (at 224 they cost seconds each hundred)
        kinds = [("budget", {"time_budget": size.budget, "epochs": 1000, "train_score_max": 100})] + (
            [("epochs", {"time_budget": None, "epochs": size.epochs, "train_score_max": 100})] if size.epochs else [])
        for s in seeds or size.seeds:
            for kind, settings in kinds:
                rows += [arm({"kind": kind, "point": label}, "alexnet", s, n, **settings, **self.overrides(label))
                         for label in self.points]
        return rows

    def table(self, rows: pd.DataFrame) -> pd.DataFrame:
        """One row per point: FLOPs, parameters, training img/s, and test accuracy per arm (mean, CI)."""
        cost = rows[rows.kind == "cost"].set_index("point")[["flops", "params"]]
        out = cost.assign(images_per_second=aggregate(rows[rows.kind != "cost"], ["point"],
                          values=("train_images_per_second",)).set_index("point").train_images_per_second_mean)
        for arm in ("budget", "epochs"):
            agg = aggregate(rows[rows.kind == arm], ["point"]) if (rows.kind == arm).any() else None
            if agg is not None:
                agg = agg.set_index("point")
                out[f"{arm}_mean"], out[f"{arm}_half"] = agg.test_accuracy_mean, agg.test_accuracy_half
        return out.reindex(list(self.points)).reset_index()

    def keeps(self, rows: pd.DataFrame) -> tuple[str | None, str]:
        """At a fixed number of epochs, the cheapest point down the ladder such that it and every point before it
        keep AlexNet-224's accuracy: the two-arm rule on the loss (AlexNet-224 − point) says *not supported* (its
        CI lies below δ). (None, why) where no point does, or where AlexNet-224 itself stayed within
        ``TRAINED_MARGIN`` of chance (then every comparison says nothing)."""
        runs = rows[rows.kind == "epochs"]
        full = seeds_of(runs, "point", next(iter(self.points)))
        chance = 1 / runs.n_classes.iloc[0]
        if mean_of(full) < chance + self.TRAINED_MARGIN:
            return None, f"AlexNet-224 stayed within {self.TRAINED_MARGIN} of chance at this size"
        kept, why = None, "the first cheaper point is not shown to keep its accuracy"
        for label in list(self.points)[1:]:
            verdict, reason = decide(difference(full, seeds_of(runs, "point", label)))
            if verdict != NOT_SUPPORTED:
                why = f"{label}: loss {reason}"
                break
            kept = label
        return kept, why

    def answer(self, exp, exercise=""):
        rows = pd.DataFrame(exp["rows"])
        t = self.table(rows).set_index("point")
        full, last = t.iloc[0], t.iloc[-1]
        budget = rows[rows.kind == "budget"]
        best = budget.groupby("point").validation_accuracy.mean().idxmax()  # named by validation, not test
        text = (f"the cheapest point ({t.index[-1]}) needs {full.flops / last.flops:.0f}× fewer FLOPs per image and "
                f"trains {last.images_per_second / full.images_per_second:.0f}× faster here; in "
                f"{exp['config']['budget']:g} s of training AlexNet-224 reaches {full.budget_mean:.3f} test accuracy "
                f"and {best} (the best point by validation accuracy) {t.budget_mean[best]:.3f}")
        if not (rows.kind == "epochs").any():
            return text + "; how much cheaper it can get at equal epochs needs this experiment's paper size (a GPU)"
        kept, why = self.keeps(rows)
        epochs = f"at {exp['config']['epochs']} epoch(s)"
        if kept is None:
            return text + f"; {epochs} no cheaper point is shown to keep AlexNet-224's accuracy ({why})"
        return (text + f"; {epochs}, {kept} ({full.flops / t.flops[kept]:.0f}× fewer FLOPs) is the cheapest point "
                f"shown to lose less than δ = {DELTA} against AlexNet-224, with every step before it ({why})")

    def body(self, inp, exp):
        rows = pd.DataFrame(exp["rows"])
        t = self.table(rows)
        path = cost_plot(t, inp.figures / f"exp_{self.name}.png", exp["config"]["budget"], exp["config"]["epochs"])
        has_epochs = "epochs_mean" in t
        table = md_table(["point", "GFLOPs / image (forward)", "parameters", "train img/s",
                          f"test acc after {exp['config']['budget']:g} s"]
                         + ([f"test acc after {exp['config']['epochs']} epoch(s)"] if has_epochs else []),
                         [[r.point, fmt(r.flops / 1e9, 3), fmt(int(r.params)), fmt(r.images_per_second, 0),
                           pm(r.budget_mean, r.budget_half)] + ([pm(r.epochs_mean, r.epochs_half)] if has_epochs else [])
                          for r in t.itertuples()])
        cfg = exp["config"]
        scope = ("" if has_epochs else " This size has no fixed-epoch runs: one epoch of AlexNet-224 on the training "
                 "pool takes about 17 minutes on 2 CPU cores; `python runner.py --experiment simpler_alexnet --preset "
                 "paper --gpu` runs them.")
        return (f"![cheaper AlexNet](figures/{path.name})\n\n{table}\n\nEvery point trains with the chapter's "
                f"recipe (SGD lr 0.01, batch 128, dropout 0.5) on the bilinearly upsampled images, scored on "
                f"{fmt(cfg['n_eval'] or 0)} test images; a time-budget run stops after {cfg['budget']:g} s of "
                f"training (its rows are marked truncated). Chance is {1 / rows.n_classes.dropna().iloc[0]:.2g}.{scope} **Answer:** "
                f"{self.answer(exp)}.")


# The chapter's exercises (d2l 8.1), shortened; each is answered by the experiments that list it in ``exercises``
# (2b by the ``cnn28`` pipeline's rows, in the report's exercises table).
EXERCISES = {
    "1": "Increase the number of epochs. Compared with LeNet, how are the results different? Why?",
    "2a": "AlexNet may be too complex for Fashion-MNIST: simplify it to train faster without losing much accuracy.",
    "2b": "Design a better model that works directly on 28×28 images.",
    "3": "Modify the batch size, and observe the changes in accuracy and GPU memory.",
    "4a": "What is the dominant part of AlexNet's memory footprint?",
    "4b": "What is the dominant part of its computation?",
    "4c": "How about memory bandwidth when computing the results?",
    "5": "Apply dropout and ReLU to LeNet-5. Does it improve? How about preprocessing?",
}

EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (DataCurve(), Features(), Activation(), Dropout(),
                                                           Augmentation(), Anatomy(), Roofline(), LeNetLadder(),
                                                           Epochs(), SimplerAlexNet(), BatchSize())}


def experiment_tunings() -> list[Tuning]:
    return [t for e in EXPERIMENTS.values() for t in e.tunings()]


def size_name(preset: str) -> str:
    """The pipelines' preset an experiment's runs start from: ``smoke`` for tiny runs, else ``cpu``."""
    return "smoke" if preset == "smoke" else "cpu"


def size_key(exp: Experiment, preset: str) -> str:
    """Which of an experiment's sizes a preset runs: its ``paper`` size where it has one (for a GPU), else
    ``size_name``."""
    return preset if preset == "paper" and preset in exp.sizes else size_name(preset)


@dataclass
class ExperimentPlan:
    """One experiment at one size: its rows in order (measured while planning, reused by ``--resume``, or arms
    still to run), filled in as the grid's tasks finish, then written (``finish``)."""
    name: str
    size: str
    ctx: RunContext  # its ``dataset`` is the data's
    view: tuple[Dataset, int]
    items: list
    started_at: str
    plan_seconds: float = 0.0  # what planning measured (exact counts, memory, peaks)
    failed: list[dict] = dataclasses.field(default_factory=list)
    resumed: int = 0
    seconds: float = 0.0

    @property
    def dataset(self) -> str:
        return self.ctx.dataset

    @property
    def folder(self) -> Path:
        return dataset_dir(self.ctx.results_dir, self.dataset) / "experiments"

    @property
    def partial(self) -> Path:
        """Arm rows as they finish, so a crash loses none (``--resume`` reads them); removed by ``finish``."""
        return self.folder / f"{self.name}.partial.jsonl"

    def key(self, task: Arm) -> str:
        """What identifies an arm's run (``--resume`` reuses a stored row only with the same key): the size and
        its settings, the data, the device and how it trains, and the arm itself."""
        exp = EXPERIMENTS[self.name]
        return json.dumps([self.size, dataclasses.asdict(exp.sizes[self.size]), self.dataset, self.ctx.device.kind,
                           self.ctx.compile, self.ctx.time_budget, task.pipeline, task.seed, task.n_train,
                           task.overrides, task.meta], sort_keys=True, default=str)

    def pending(self) -> list[tuple[int, Arm]]:
        return [(i, item) for i, item in enumerate(self.items) if isinstance(item, Arm)]

    def fill(self, i: int, row: dict) -> None:
        self.items[i] = row
        with locked(self.partial), open(self.partial, "a") as fh:
            fh.write(json.dumps(row, default=_json_default) + "\n")

    def fail(self, i: int, error: str) -> None:
        task = self.items[i]
        pool = len(self.view[0].x_train)  # the images it would have trained on, as its row would count them
        self.failed.append({**task.meta, "pipeline": task.pipeline, "seed": task.seed,
                            "n_train": min(task.n_train, pool) if task.n_train else pool, "error": error})
        self.items[i] = None
        print(f"[experiment {self.name}] {task.pipeline} seed {task.seed} {task.meta} failed: {error}",
              file=sys.stderr)

    def finish(self) -> Path:
        """Write ``experiments/<name>.json`` (atomic) from the finished rows; failed arms are listed apart."""
        exp, rows = EXPERIMENTS[self.name], [r for r in self.items if r is not None]
        # its own work, one run after another (on a grid its runs interleave with other experiments' runs)
        self.seconds = self.plan_seconds + sum(r.get("seconds") or 0 for r in rows if "task" in r)
        payload = {"experiment": self.name, "description": exp.description, "size": self.size,
                   "config": dataclasses.asdict(exp.sizes[self.size]), "seeds": sorted({r.get("seed", 0) for r in rows}),
                   "device": self.ctx.device.kind, "device_name": self.ctx.device.name, "dataset": self.dataset,
                   "time_budget": self.ctx.time_budget, "compile": self.ctx.compile,
                   "tunings": {t.name: chosen(t.name) for t in exp.tunings()},
                   "presets": presets_of({r["pipeline"] for r in rows if r.get("pipeline")}),
                   "started_at": self.started_at, "seconds": round(self.seconds, 1), "resumed": self.resumed,
                   "failed": self.failed, **provenance(), "rows": rows}
        path = self.folder / f"{self.name}.json"
        atomic_write_text(path, json.dumps(payload, indent=1, default=_json_default))
        self.partial.unlink(missing_ok=True)
        return path


def stored_rows(plan: ExperimentPlan) -> dict[str, dict]:
    """Finished arm rows by task key: from the experiment's file and from an interrupted run's partial file."""
    found = {}
    try:
        found.update({r["task"]: r for r in json.loads((plan.folder / f"{plan.name}.json").read_text())["rows"]
                      if r.get("task")})
    except (OSError, ValueError, KeyError, TypeError):
        pass
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
    arms to run; with ``--resume``, arms with a stored row are not run again. ``views`` caches evaluation views."""
    ctx = dataclasses.replace(ctx, dataset=data.name)
    exp, key = EXPERIMENTS[name], size_key(EXPERIMENTS[name], ctx.preset)
    size, views = exp.sizes[key], {} if views is None else views
    if size.n_eval not in views:
        views[size.n_eval] = evaluation_view(data, size.n_eval)
    view = views[size.n_eval]
    started_at, start = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.perf_counter()
    with host_slot() as slot:
        items = exp.plan(view, ctx, size, tuple(dict.fromkeys(seeds)) if seeds else None)
    items = [i if isinstance(i, Arm) else {**i, "host": slot.host, "concurrency": slot.concurrency} for i in items]
    plan = ExperimentPlan(name, key, ctx, view, items, started_at, time.perf_counter() - start)
    stored = stored_rows(plan) if ctx.resume else {}
    for i, task in plan.pending():
        if plan.key(task) in stored:
            plan.items[i], plan.resumed = stored[plan.key(task)], plan.resumed + 1
    return plan


def run_plans(plans: list[ExperimentPlan], ex) -> Iterator[tuple[ExperimentPlan, Path | Exception]]:
    """Run every plan's arms as one grid on the executor ``ex``; yield each plan with its written file (or the
    exception that stopped writing it) as soon as its last arm is done."""
    tasks, owners = [], []
    for plan in plans:
        data, n_val = plan.view
        for i, task in plan.pending():
            tasks.append(Task(f"{plan.name} {task.pipeline} seed {task.seed}", run_arm_task,
                              (ex.scatter(data), n_val, plan.ctx, task, plan.key(task)),
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


def stale(exp: dict) -> list[tuple[str, str]]:
    """(kind, reason) for each way an experiment file may not describe today's pipelines (``tuning.drift``):
    a pipeline it trained, or a tuning file whose learning rate it used. Empty if it does."""
    used = {r.get("pipeline") for r in exp.get("rows", []) if r.get("pipeline")}
    found = [drift(exp, used)]
    for name in exp.get("tunings") or {}:
        try:
            tuning = json.loads((TUNING_DIR / f"{name}.json").read_text())
        except (OSError, ValueError):
            found.append((STALE, f"its tuning {name} cannot be read"))
            continue
        kind, why = drift(tuning, [tuning.get("pipeline", "")])
        found.append((kind, f"its tuning {name} was {why}"))
    return [(kind, why) for kind, why in found if kind]


def _json_default(value):
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return float(value)


# --- shared pieces of the sections ----------------------------------------------------------------------

def bar_section(inp, exp: dict, keys: list[str], label, title: str, with_train=False, hue=None) -> str:
    rows = pd.DataFrame(exp["rows"])
    agg = aggregate(rows, keys)
    agg["label"] = [label(r) for r in agg.itertuples()]
    bar_plot(agg, inp.figures / f"exp_{exp['experiment']}.png", title, with_train, hue)
    header = ["arm", "test acc (mean ± 95% CI)", "train acc (eval mode)", "gap (train − test)", "seeds"]
    table = md_table(header, [[a.label, pm(a.test_accuracy_mean, a.test_accuracy_half),
                               pm(getattr(a, "train_accuracy_mean", np.nan), getattr(a, "train_accuracy_half", np.nan)),
                               pm(getattr(a, "gap_mean", np.nan), getattr(a, "gap_half", np.nan)), a.n]
                              for a in agg.itertuples()])
    diverged, cut = failed_runs(rows)
    note = f"\n\n{diverged} run(s) diverged (NaN loss) and count as chance." if diverged else ""
    if cut:
        note += f"\n\n{cut} run(s) were stopped by the time budget (truncated): shown, left out of the verdict."
    return f"![{exp['experiment']}](figures/exp_{exp['experiment']}.png)\n\n{table}{note}"


def failed_runs(rows: pd.DataFrame) -> tuple[int, int]:
    """How many runs diverged (scored as chance) and how many a time budget stopped (truncated)."""
    return int(flag(rows, "diverged").eq(True).sum()), int(flag(rows, "truncated").eq(True).sum())


def tuning_table(names: list[str]) -> str:
    """The validation scores behind an experiment's choices (from results/tuning/)."""
    rows = []
    for name in names:
        try:
            payload = json.loads((TUNING_DIR / f"{name}.json").read_text())
        except (OSError, ValueError):
            rows.append([name, "not tuned yet", "–"])
            continue
        scores = ", ".join(f"{p['lr']}: {p['validation_accuracy']:.4f}" for p in payload["points"])
        rows.append([name, scores, payload["choice"]["lr"]])
    return ("Learning rates chosen on the validation split (`python bench/tune.py`):\n\n"
            + md_table(["arm", "validation accuracy by learning rate", "chosen"], rows))


def full_data_points(inp, exp: dict, agg: pd.DataFrame) -> pd.DataFrame:
    """summary.csv's full-data rows past the experiment's largest size (mean and CI over seeds): its arms' rows,
    and any learned pipeline's ``paper`` row (AlexNet's full recipe, where one exists)."""
    from .claims import comparable
    ok = comparable(inp.ok[inp.ok.dataset == exp["dataset"]]) if len(inp.ok) else inp.ok
    if len(ok):
        paper = (ok.preset == "paper") & (ok.pipeline.map(side_of) == "learned")
        ok = ok[(ok.pipeline.isin(agg.arm.unique()) | paper) & (ok.n_train > agg.n_train.max())]
    rows = ok
    if rows.empty:
        return pd.DataFrame(columns=["arm", "n_train", "test_accuracy_mean", "test_accuracy_half", "n", "preset"])
    out = aggregate(rows.rename(columns={"pipeline": "arm"}), ["arm", "preset", "n_train"], values=("test_accuracy",))
    return out.assign(n_train=out.n_train.astype(int)) if "test_accuracy_half" in out else out.assign(
        test_accuracy_half=np.nan)


def crossover(agg: pd.DataFrame) -> str:
    agg = agg.assign(side=[side_of(a) for a in agg.arm])
    best = agg.pivot_table(index="n_train", columns="side", values="test_accuracy_mean", aggfunc="max").dropna()
    if best.empty or "learned" not in best:
        return "no size where both sides were measured."
    ahead = [int(n) for n in best.index[best.learned > best.hand]]
    if not ahead:
        return "none in this range: at every size the best hand-crafted pipeline's mean leads the best learned one."
    return (f"the best learned mean leads the best hand-crafted mean at {', '.join(f'{n:,}' for n in ahead)} "
            "training images (means only; the claim above applies the rule).")
