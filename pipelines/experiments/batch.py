"""Batch size (the chapter's exercise 3): accuracy, peak training memory and speed from batch 16 to 1024."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import get
from ..analysis.plots import batch_plot
from ..analysis.tables import aggregate, fmt, md_table, pm
from .base import CPU_SEEDS, Experiment, failed_runs
from .engine import ExpSize, arm


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

    def grid(self, net: str, recipe_preset: str) -> list[tuple[int, str, float]]:
        """(batch, rule, lr) of each run of one network; at the recipe's own batch both rules are one run."""
        recipe, out = get(net).config(recipe_preset), []
        for b in sorted(set(self.batches) | {recipe.batch_size}):
            out.append((b, self.rules[0], recipe.lr))
            if b != recipe.batch_size:
                out.append((b, self.rules[1], recipe.lr * b / recipe.batch_size))
        return out

    def measure(self, ctx, size, recipe):
        from ..distributed import torch_device
        from ..learned.anatomy import memory_by_batch
        rows = []
        for net in self.networks:
            batches = sorted({b for b, _, _ in self.grid(net, recipe)})
            memory = memory_by_batch(get(net).config(recipe), batches, torch_device(ctx.device.kind))
            rows += [{"kind": "memory", "model": net, "batch": b, **m} for b, m in memory.items()]
        return rows

    def arms(self, size, seeds, recipe):
        return [arm({"kind": "accuracy", "model": net, "batch": b, "rule": rule, "lr": lr}, net, s, size.n_for(net),
                    batch_size=b, lr=lr)
                for s in seeds or size.seeds for net in self.networks for b, rule, lr in self.grid(net, recipe)]

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
