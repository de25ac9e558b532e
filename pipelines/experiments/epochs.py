"""Epochs (the chapter's exercise 1): LeNet and cnn28 trained for 1x, 2x and 3x their recipe's epochs."""
from __future__ import annotations

import pandas as pd

from .. import get
from ..analysis.claims import TWO_ARM_RULE, decide
from ..analysis.plots import epochs_plot
from ..analysis.stats import difference, mean_ci
from ..analysis.tables import aggregate, fmt, md_table, pm, seeds_of
from .base import CPU_SEEDS, Experiment, failed_runs
from .engine import ExpSize, arm


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

    def arms(self, size, seeds, recipe):
        rows = []
        for s in seeds or size.seeds:
            for net in self.networks:
                epochs = get(net).config(recipe).epochs
                rows += [arm({"arm": f"{net} {m}×", "model": net, "multiple": m}, net, s, size.n_for(net),
                             epochs=m * epochs) for m in self.multiples]
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
