"""A cheaper AlexNet (the chapter's exercise 2a): fewer dense units, fewer channels, a smaller input."""
from __future__ import annotations

import dataclasses

import pandas as pd

from .. import get
from ..analysis.claims import DELTA, NOT_SUPPORTED, decide
from ..analysis.plots import cost_plot
from ..analysis.stats import difference
from ..analysis.tables import aggregate, fmt, md_table, pm, seeds_of
from .base import CPU_SEEDS, Experiment, mean_of
from .engine import ExpSize, arm


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

    def measure(self, ctx, size, recipe):
        import torch
        from ..learned.anatomy import forward_flops
        from ..learned.trainer import build_model
        base, rows = get("alexnet").config(recipe), []
        for label in self.points:
            model = build_model(dataclasses.replace(base, **self.overrides(label)), torch.device("cpu"))
            rows.append({"kind": "cost", "point": label, "flops": forward_flops(model, self.points[label][0]),
                         "params": sum(p.numel() for p in model.parameters())})
        return rows

    def arms(self, size, seeds, recipe):
        # train accuracy is not asked here: score few training images (at 224 they cost seconds each hundred)
        kinds = [("budget", {"time_budget": size.budget, "epochs": 1000, "train_score_max": 100})] + (
            [("epochs", {"time_budget": None, "epochs": size.epochs, "train_score_max": 100})] if size.epochs else [])
        return [arm({"kind": kind, "point": label}, "alexnet", s, size.n_train or None, **settings,
                    **self.overrides(label))
                for s in seeds or size.seeds for kind, settings in kinds for label in self.points]

    def table(self, rows: pd.DataFrame) -> pd.DataFrame:
        """One row per point: FLOPs, parameters, training img/s, and test accuracy per arm (mean, CI)."""
        cost = rows[rows.kind == "cost"].set_index("point")[["flops", "params"]]
        out = cost.assign(images_per_second=aggregate(rows[rows.kind != "cost"], ["point"],
                          values=("train_images_per_second",)).set_index("point").train_images_per_second_mean)
        for kind in ("budget", "epochs"):
            agg = aggregate(rows[rows.kind == kind], ["point"]) if (rows.kind == kind).any() else None
            if agg is not None:
                agg = agg.set_index("point")
                out[f"{kind}_mean"], out[f"{kind}_half"] = agg.test_accuracy_mean, agg.test_accuracy_half
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
