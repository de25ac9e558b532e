"""LeNet modernised step by step (the chapter's exercise 5): ReLU, max-pooling, dropout and standardised input,
each alone and added in turn, every arm at its own validation-chosen learning rate."""
from __future__ import annotations

import pandas as pd

from ..analysis.stats import difference
from ..analysis.claims import TWO_ARM_RULE, decide
from ..analysis.tables import md_table, seeds_of
from ..tuning import Tuning, chosen
from .base import FAST, LR_GRID, Experiment, bar_section, mean_of, tuning_table
from .engine import ExpSize, arm


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

    def ladder(self) -> dict[str, tuple[str, ...]]:
        """Label -> the steps it takes: the recipe, each step alone, then the ladder (steps added in turn)."""
        names = list(self.steps)
        return {"d2l LeNet": (), **{f"{n} alone": (n,) for n in names},
                **{" + ".join(names[:i]): tuple(names[:i]) for i in range(2, len(names) + 1)}}

    def rung_below(self, label: str) -> str | None:
        """The ladder arm one step shorter (the recipe below the first step), or None for the 'alone' arms."""
        arms = self.ladder()
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
                for taken in self.ladder().values()]

    def arms(self, size, seeds, recipe):
        rows = []
        for s in seeds or size.seeds:
            for (label, taken), t in zip(self.ladder().items(), self.tunings()):
                lr = chosen(t.name)["lr"]
                rows.append(arm({"arm": label, "steps": len(taken), "lr": lr}, "lenet", s, size.n_train,
                                epochs=size.epochs, lr=lr, **self.overrides(taken)))
        return rows

    def judge(self, rows, exp):
        labels = list(self.ladder())
        base, full = seeds_of(rows, "arm", labels[0]), seeds_of(rows, "arm", labels[-1])
        alone = {a: difference(seeds_of(rows, "arm", a), base) for a in labels if a.endswith(" alone")}
        top = max(alone, key=lambda a: alone[a].mean)
        effect = difference(full, base)
        return (f"d2l LeNet {mean_of(base):.4f} → all four steps {mean_of(full):.4f} ({effect.text()}); the step that "
                f"helps most alone: {top.removesuffix(' alone')} ({alone[top].text()})", *decide(effect))

    def body(self, inp, exp):
        rows = pd.DataFrame(exp["rows"])
        labels = list(self.ladder())
        base = seeds_of(rows, "arm", labels[0])
        text = bar_section(inp, exp, ["arm", "lr"], lambda a: f"{a.arm} (lr {a.lr})", "LeNet modernised: "
                           "the recipe, each step alone, the steps added in turn")
        steps = [[a, difference(seeds_of(rows, "arm", a), base).text(),
                  f"{difference(seeds_of(rows, 'arm', a), seeds_of(rows, 'arm', below)).text()} (vs {below})"
                  if (below := self.rung_below(a)) else "–"] for a in labels[1:]]
        table = md_table(["arm", "test accuracy − d2l LeNet (mean, 95% CI)", "− the rung below"], steps)
        return f"{text}\n\n{table}\n\n{tuning_table([t.name for t in self.tunings()])}"
