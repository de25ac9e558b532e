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
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .. import REGISTRY
from ..base import RunContext
from ..data import Dataset, validation_split
from ..results import atomic_write_text, provenance
from ..tuning import STALE, TUNING_DIR, Tuning, chosen, divergence_errors, drift, presets_of
from .claims import (ALL_OF_RULE, FAST_SEEDS, INCONCLUSIVE, MIN_SEEDS, NOT_RUN, NOT_SUPPORTED, SUPPORTED,
                     TWO_ARM_RULE, Verdict, all_of, decide, family)
from .plots import bar_plot, curve_plot, roofline
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


def evaluation_view(data: Dataset) -> tuple[Dataset, int]:
    """What experiment arms see: the validation split's training pool to train on, and as "test" images the
    validation images followed by the real test images (so one prediction pass scores both); and how many
    of those are validation images. Arms are chosen on the first part and scored on the second."""
    val = validation_split(data)
    view = Dataset(val.x_train, val.y_train, np.concatenate([val.x_test, data.x_test]),
                   np.concatenate([val.y_test, data.y_test]), name=data.name, source=val.source,
                   class_names=data.class_names)
    return view, len(val.x_test)


def run_arm(view: tuple[Dataset, int], ctx: RunContext, pipeline: str, seed: int, n_train: int, **overrides) -> dict:
    """One pipeline run on a seeded subset of the pool, as the runner would run it, scored on the validation
    and the test images; a diverged network scores chance on both."""
    data, n_val = view
    p = REGISTRY[pipeline].load()
    base = p.config(size_name(ctx.preset))  # the smoke preset's small codebooks and PCA for tiny runs
    cfg = dataclasses.replace(base, n_train=n_train, n_test=None, **overrides)
    sctx = dataclasses.replace(ctx, seed=seed, figures=False, checkpoints=False, curves=False, resume=False)
    start = time.perf_counter()
    row = {"pipeline": pipeline, "seed": seed, "n_train": n_train, "diverged": False, "truncated": False}
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
            "images_seen": out.extra.get("images_seen"), "truncated": bool(out.extra.get("truncated", False))}


class Experiment:
    """Subclasses set the class attributes and implement ``run``, ``judge`` and ``body``."""
    name: str
    description: str
    title: str
    claim: str | None = None
    rule: str = TWO_ARM_RULE
    sizes: dict[str, ExpSize]

    def tunings(self) -> list[Tuning]:
        return []

    def run(self, view: tuple[Dataset, int], ctx: RunContext, size: ExpSize,
            seeds: tuple[int, ...] | None) -> list[dict]:
        """The rows of every arm and seed (``seeds``: given on the command line, else None for the size's own);
        ``view`` is ``evaluation_view(data)``."""
        raise NotImplementedError

    def judge(self, rows: pd.DataFrame, exp: dict) -> tuple[str, str, str]:
        """(measured, verdict, why) from the untruncated rows."""
        raise NotImplementedError

    def body(self, inp, exp: dict) -> str:
        raise NotImplementedError

    def verdict(self, exp: dict | None) -> Verdict | None:
        if self.claim is None:
            return None
        if not exp:
            return Verdict(self.claim, self.name, "–", INCONCLUSIVE,
                           f"{NOT_RUN}: `python runner.py --experiment {self.name}`", self.rule)
        rows = pd.DataFrame(exp["rows"])
        cut = flag(rows, "truncated").eq(True)
        point = [c for c in ("seed", "n_train") if c in rows]
        hit = rows[point].apply(tuple, axis=1).isin(set(rows.loc[cut, point].apply(tuple, axis=1))) if cut.any() \
            else cut
        measured, verdict, why = self.judge(rows[~hit], exp)
        if cut.any():
            why += (f"; {int(cut.sum())} budget-truncated run(s) left out, with every arm's run of the same seed "
                    f"({int(hit.sum())} runs in all), so arms stay paired")
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

    def run(self, view, ctx, size, seeds):
        return [{"arm": n, **run_arm(view, ctx, n, s, size.n_train)} for s in seeds or size.seeds
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

    def run(self, view, ctx, size, seeds):
        rows = []
        for n in size.sizes:
            for s in self.seeds_at(n, size, seeds):
                rows += [{"arm": a, **run_arm(view, ctx, a, s, n)} for a in arms_of("handcrafted")]
                for a in arms_of("learned"):
                    batch = REGISTRY[a].load().config("cpu").batch_size
                    rows.append({"arm": a, **run_arm(view, ctx, a, s, n, epochs=self.epochs_for(n, size, batch))})
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
                       {"n_train": size.n_train, "epochs": size.epochs, "model_kwargs": (("activation", a),)})
                for m in arms_of("learned") for a in self.activations]

    def run(self, view, ctx, size, seeds):
        rows = []
        for s in seeds or size.seeds:
            for t in self.tunings():
                model, act = t.pipeline, dict(t.fixed["model_kwargs"])["activation"]
                lr = chosen(t.name)["lr"]
                rows.append({"arm": f"{model} {act}", "model": model, "activation": act, "lr": lr,
                             **run_arm(view, ctx, model, s, size.n_train, epochs=size.epochs, lr=lr,
                                       model_kwargs=t.fixed["model_kwargs"])})
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

    def run(self, view, ctx, size, seeds):
        rows = []
        for s in seeds or size.seeds:
            for (label, taken), t in zip(self.arms().items(), self.tunings()):
                lr = chosen(t.name)["lr"]
                rows.append({"arm": label, "steps": len(taken), "lr": lr,
                             **run_arm(view, ctx, "lenet", s, size.n_train, epochs=size.epochs, lr=lr,
                                       **self.overrides(taken))})
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
    """One network with one switch on and off; every other setting is its tuned ``cpu`` preset's."""
    model = "cnn28"
    arms: dict[str, dict]  # label -> the switch's overrides; the first arm is the switch on
    sizes = {"smoke": ExpSize(600, (0, 1), epochs=2), "cpu": ExpSize(10_000, FAST, epochs=16)}
    plot_title: str

    def run(self, view, ctx, size, seeds):
        return [{"arm": label, **run_arm(view, ctx, self.model, s, size.n_train, epochs=size.epochs, **overrides)}
                for s in seeds or size.seeds for label, overrides in self.arms.items()]

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
    name, title = "anatomy", "Compute anatomy of AlexNet-224"
    description = "AlexNet-224 parameters, FLOPs, memory and time per layer"
    claim = ("In AlexNet the fully connected layers hold most parameters while the convolutions do most of the "
             "compute.")
    rule = ("exact counts, no seeds: supported if the fully connected layers hold > 50% of the parameters and the "
            "convolutions > 50% of the forward FLOPs; else not supported")
    sizes = {"smoke": ExpSize(0, (0,)), "cpu": ExpSize(0, (0,))}

    def run(self, view, ctx, size, seeds):
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
    description = ("bytes moved and FLOPs per byte of each AlexNet-224 layer at batch 1 and at the recipe's batch, "
                   "placed under this device's measured peak FLOP/s and memory bandwidth")
    sizes = {"smoke": ExpSize(0, (0,)), "cpu": ExpSize(0, (0,))}
    batches = {"smoke": (1, 4), "cpu": (1, 128)}  # 128: the chapter's batch for AlexNet
    peaks = {"smoke": {"matmul_n": 256, "copy_mib": 8, "repeats": 2},
             "cpu": {"matmul_n": 2048, "copy_mib": 256, "repeats": 5}}

    def run(self, view, ctx, size, seeds):
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

    def answer(self, frame: pd.DataFrame) -> str:
        """The exercise's answer in one sentence per batch size: which layers the bandwidth limits."""
        parts = []
        for batch, g in frame[frame.flops > 0].groupby("batch"):
            memory = list(g.name[g.bound == "memory"])
            verb = "sits" if len(memory) == 1 else "sit"
            parts.append(f"at batch {batch}, " + (f"{', '.join(memory)} {verb} below the ridge point (bandwidth-bound)"
                                                  if memory else "every layer sits above the ridge point "
                                                                 "(compute-bound)"))
        return "; ".join(parts)

    def body(self, inp, exp):
        frame = pd.DataFrame(exp["rows"])
        frame["name"] = [n for _, g in frame.groupby("batch", sort=False) for n in layer_names(g.layer)]
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
                f"left out. **Answer:** {self.answer(frame)}.")


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (DataCurve(), Features(), Activation(), Dropout(),
                                                           Augmentation(), Anatomy(), Roofline(), LeNetLadder())}


def experiment_tunings() -> list[Tuning]:
    return [t for e in EXPERIMENTS.values() for t in e.tunings()]


def size_name(preset: str) -> str:
    return "smoke" if preset == "smoke" else "cpu"


def run_experiment(name: str, data: Dataset, ctx: RunContext, seeds: tuple[int, ...] | None = None) -> Path:
    """Run one experiment at the context's size (``seeds`` replace the size's own) and write its JSON."""
    exp = EXPERIMENTS[name]
    size = exp.sizes[size_name(ctx.preset)]
    seeds = tuple(dict.fromkeys(seeds)) if seeds else None
    prov, started_at = provenance(), datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    rows = exp.run(evaluation_view(data), ctx, size, seeds)
    payload = {"experiment": name, "description": exp.description, "size": size_name(ctx.preset),
               "config": dataclasses.asdict(size), "seeds": sorted({r.get("seed", 0) for r in rows}),
               "device": ctx.device.kind, "device_name": ctx.device.name, "dataset": data.name,
               "time_budget": ctx.time_budget, "compile": ctx.compile,
               "tunings": {t.name: chosen(t.name) for t in exp.tunings()},
               "presets": presets_of({r["pipeline"] for r in rows if r.get("pipeline")}),
               "started_at": started_at, "seconds": round(time.perf_counter() - start, 1), **prov, "rows": rows}
    path = ctx.results_dir / "experiments" / f"{name}.json"
    atomic_write_text(path, json.dumps(payload, indent=1, default=_json_default))
    return path


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
