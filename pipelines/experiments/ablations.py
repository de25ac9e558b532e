"""Controlled ablations of cnn28: one switch on and off (dropout; augmentation), every other setting its tuned
``cpu`` preset's."""
from __future__ import annotations

import pandas as pd

from ..analysis.claims import TWO_ARM_RULE, decide
from ..analysis.stats import difference
from ..analysis.tables import seeds_of
from .base import FAST, Experiment, bar_section, mean_of
from .engine import ExpSize, arm


class Ablation(Experiment):
    """One network with one switch on and off; every other setting is its tuned ``cpu`` preset's (tuned with
    the preset's own switches: ``cnn28``'s without dropout, with augmentation)."""
    model = "cnn28"
    switch: dict[str, dict]  # label -> the switch's overrides; the first arm is the switch on
    sizes = {"smoke": ExpSize(600, (0, 1), epochs=2), "cpu": ExpSize(10_000, FAST, epochs=16)}
    plot_title: str

    def arms(self, size, seeds, recipe):
        """Each switch's arm over the preset (a network switch merges into the preset's network: the rest of it,
        ``cnn28``'s width of the 28x28 block, is kept)."""
        return [arm({"arm": label}, self.model, s, size.n_train, epochs=size.epochs, **self.switch[label])
                for s in seeds or size.seeds for label in self.switch]

    def per_arm(self, rows: pd.DataFrame, value: str = "test_accuracy") -> tuple[dict, dict]:
        on, off = self.switch
        return seeds_of(rows, "arm", on, value), seeds_of(rows, "arm", off, value)

    def body(self, inp, exp):
        return bar_section(inp, exp, ["arm"], lambda a: a.arm, f"{self.model} {self.plot_title}", with_train=True)


class Dropout(Ablation):
    name, title = "dropout", "Dropout"
    description = "dropout 0.5 before the classifier of cnn28, on and off: the train/test gap"
    claim = "Dropout reduces overfitting (a smaller train/test gap)."
    rule = (f"effect = gap without dropout − gap with it (gap = eval-mode train accuracy − test accuracy), paired "
            f"by seed: {TWO_ARM_RULE}")
    switch = {"dropout 0.5": {"model_kwargs": (("dropout", 0.5),)}, "dropout 0.0": {"model_kwargs": (("dropout", 0.0),)}}
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
    switch = {"augmented": {"augment": True, "flip_test": True}, "plain": {"augment": False, "flip_test": False}}
    plot_title = "with and without flips and crops"

    def judge(self, rows, exp):
        a, p = self.per_arm(rows)
        effect = difference(a, p)
        return (f"augmented {mean_of(a):.4f}; plain {mean_of(p):.4f}; effect {effect.text()} at "
                f"{exp['config']['epochs']} epochs of {exp['config']['n_train']:,} images", *decide(effect))
