"""Activation: sigmoid against ReLU in LeNet and cnn28, each at its own validation-chosen learning rate."""
from __future__ import annotations

from ..analysis.claims import ALL_OF_RULE, TWO_ARM_RULE, all_of, decide
from ..analysis.stats import difference
from ..analysis.tables import seeds_of
from ..tuning import Tuning, chosen
from .base import FAST, LR_GRID, Experiment, bar_section, mean_of, network_arguments, tuning_table
from .engine import ExpSize, arm


class Activation(Experiment):
    name, title = "activation", "Activation: sigmoid against ReLU"
    description = "sigmoid against ReLU, each at its own validation-chosen learning rate"
    claim = "ReLU makes training easier than sigmoid (same network, same training length)."
    rule = (f"per network: ReLU − sigmoid, each at the learning rate the validation split chose for it, paired by "
            f"seed: {TWO_ARM_RULE}; combined over networks: {ALL_OF_RULE}")
    networks = ("lenet", "cnn28")  # its arms: each network with each activation
    activations = ("sigmoid", "relu")
    lr_grid = LR_GRID
    sizes = {"smoke": ExpSize(600, (0, 1), epochs=2), "cpu": ExpSize(10_000, FAST, epochs=16)}

    def tunings(self):
        size = self.sizes["cpu"]
        return [Tuning(f"activation-{m}-{a}", m, {"lr": self.lr_grid},
                       {"n_train": size.n_train, "epochs": size.epochs,
                        "model_kwargs": network_arguments(m, activation=a)})
                for m in self.networks for a in self.activations]

    def arms(self, size, seeds, recipe):
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
