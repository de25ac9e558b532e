"""Data: learning curves, test accuracy against training-set size for both sides (CNNs need much data)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from .. import FAMILIES, family, get
from ..analysis.claims import ALL_OF_RULE, INCONCLUSIVE, NOT_RUN, TWO_ARM_RULE, all_of, comparable, decide
from ..analysis.plots import curve_plot
from ..analysis.stats import Estimate, mean_ci, slope
from ..analysis.tables import aggregate, fmt, md_table, pm, seeds_of
from .base import CPU_SEEDS, FAST, Experiment, failed_runs
from .engine import ExpSize, arm


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

    handcrafted = ("pixels_svm", "hog_svm", "hog_kernel_svm", "sift_bovw", "sift_fisher", "scattering_svm",
                   "hog_scattering_svm")  # its arms, by side
    learned = ("lenet", "cnn28")

    def arms(self, size, seeds, recipe):
        rows = []
        for n in size.sizes:
            for s in self.seeds_at(n, size, seeds):
                rows += [arm({"arm": a}, a, s, n) for a in self.handcrafted]
                for a in self.learned:
                    batch = get(a).config("cpu").batch_size
                    rows.append(arm({"arm": a}, a, s, n, epochs=self.epochs_for(n, size, batch)))
        return rows

    @staticmethod
    def gaps(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Per size: each side's best arm, chosen by mean *validation* accuracy (the test set never chooses), and
        the per-seed gap between their test accuracies."""
        agg = aggregate(rows, ["arm", "n_train"], values=("validation_accuracy",))
        agg["side"] = [family(a) for a in agg.arm]
        best = agg.loc[agg.groupby(["n_train", "side"]).validation_accuracy_mean.idxmax()]
        best = best.pivot(index="n_train", columns="side", values="arm").reindex(columns=list(FAMILIES)).dropna()
        per_seed = []
        for n, b in best.iterrows():
            h = seeds_of(rows, "arm", b.handcrafted, n_train=n)
            l = seeds_of(rows, "arm", b.learned, n_train=n)
            per_seed += [{"n_train": n, "seed": s, "gap": h[s] - l[s]} for s in sorted(set(h) & set(l))]
        return best, pd.DataFrame(per_seed, columns=["n_train", "seed", "gap"])

    def judge(self, rows, exp):
        best, gaps = self.gaps(rows)
        if gaps.empty:
            return "no size with both sides", INCONCLUSIVE, NOT_RUN
        means = gaps.groupby("n_train").gap.mean()
        measured = "; ".join(f"{int(n):,}: gap {g:+.3f} ({best.loc[n].handcrafted} vs {best.loc[n].learned})"
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
        learned = {a for a in agg.arm if family(a) == "learned"}
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


def full_data_points(inp, exp: dict, agg: pd.DataFrame) -> pd.DataFrame:
    """summary.csv's full-data rows past the experiment's largest size (mean and CI over seeds): its arms' rows,
    and any learned pipeline's ``paper`` row (AlexNet's full recipe, where one exists)."""
    ok = comparable(inp.ok[inp.ok.dataset == exp["dataset"]]) if len(inp.ok) else inp.ok
    if len(ok):
        paper = (ok.preset == "paper") & (ok.pipeline.map(family) == "learned")
        ok = ok[(ok.pipeline.isin(agg.arm.unique()) | paper) & (ok.n_train > agg.n_train.max())]
    rows = ok
    if rows.empty:
        return pd.DataFrame(columns=["arm", "n_train", "test_accuracy_mean", "test_accuracy_half", "n", "preset"])
    out = aggregate(rows.rename(columns={"pipeline": "arm"}), ["arm", "preset", "n_train"], values=("test_accuracy",))
    return out.assign(n_train=out.n_train.astype(int)) if "test_accuracy_half" in out else out.assign(
        test_accuracy_half=np.nan)


def crossover(agg: pd.DataFrame) -> str:
    agg = agg.assign(side=[family(a) for a in agg.arm])
    best = agg.pivot_table(index="n_train", columns="side", values="test_accuracy_mean", aggfunc="max").dropna()
    if best.empty or "learned" not in best:
        return "no size where both sides were measured."
    ahead = [int(n) for n in best.index[best.learned > best.handcrafted]]
    if not ahead:
        return "none in this range: at every size the best hand-crafted pipeline's mean leads the best learned one."
    return (f"the best learned mean leads the best hand-crafted mean at {', '.join(f'{n:,}' for n in ahead)} "
            "training images (means only; the claim above applies the rule).")
