"""The claims table: each claim of the chapter, the experiment that tests it, the measured figures and a
verdict (supported / not supported / inconclusive on this hardware) with its reason.

A difference counts when it exceeds both 0.01 and twice the larger standard deviation over seeds.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .report import aggregate, best_per_size, md_table

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive on this hardware"
CHANCE = 0.11  # ten classes; a mean at or below this did not train


def clear(diff: float, *stds: float) -> bool:
    spread = max([s for s in stds if s is not None and not np.isnan(s)] or [0.0])
    return abs(diff) > max(0.01, 2 * spread)


def compare(diff: float, *stds: float) -> str:
    """Supported if clearly positive, not supported if clearly negative, else inconclusive."""
    if not clear(diff, *stds):
        return INCONCLUSIVE
    return SUPPORTED if diff > 0 else NOT_SUPPORTED


def stat(agg: pd.DataFrame, **where) -> tuple[float, float]:
    row = agg
    for k, v in where.items():
        row = row[row[k] == v]
    return float(row.test_accuracy_mean.iloc[0]), float(row.test_accuracy_std.fillna(0).iloc[0])


def from_experiment(name: str, claim: str):
    """Decorate a claim that one experiment tests: until its results exist the row says "not run"; the
    decorated function gets the experiment's payload and returns [measured, verdict, why]."""
    def wrap(fn):
        @functools.wraps(fn)
        def row(inp, _) -> list[str]:
            exp = inp.experiments.get(name)
            if not exp:
                return [claim, name, "not run", INCONCLUSIVE, f"run `--experiment {name}`"]
            return [claim, name, *fn(exp)]
        return row
    return wrap


def claim_learned_wins(inp, _) -> list[str]:
    claim = "Features learned end to end beat the best hand-crafted features (the 2012 turn)."
    ok = inp.ok
    hand, learned = ok[ok.family == "handcrafted"], ok[ok.family == "learned"]
    if hand.empty or learned.empty:
        return [claim, "results table", "missing rows", INCONCLUSIVE, "run `python runner.py --all` first"]
    h, l = hand.loc[hand.test_accuracy.idxmax()], learned.loc[learned.test_accuracy.idxmax()]
    figures = (f"best learned `{l.pipeline}` {l.test_accuracy:.4f} (preset {l.preset}, {l.device}); best hand-crafted "
               f"`{h.pipeline}` {h.test_accuracy:.4f} (preset {h.preset})")
    alex_full = ok[(ok.pipeline == "alexnet") & (ok.preset == "paper")]
    if l.test_accuracy > h.test_accuracy + 0.005:
        return [claim, "results table", figures, SUPPORTED, "the best learned row leads"]
    if alex_full.empty:
        alex = ok[ok.pipeline == "alexnet"]
        seen = f"{int(alex.images_seen.max()):,} training images" if len(alex) else "no run"
        return [claim, "results table", figures, INCONCLUSIVE,
                f"AlexNet's full recipe has not run here (CPU budget: {seen} of 600,000); LeNet alone trails"]
    return [claim, "results table", figures, NOT_SUPPORTED, "even the full AlexNet recipe trails"]


@from_experiment("features",
                 "With the same linear classifier, better features (HOG, SIFT encodings) beat raw pixels.")
def claim_features_matter(exp: dict) -> list[str]:
    agg = aggregate(exp["rows"], ["arm"])
    px = stat(agg, arm="pixels_svm")
    best = agg.loc[agg.test_accuracy_mean.idxmax()]
    diff = best.test_accuracy_mean - px[0]
    figures = "; ".join(f"{a.arm} {a.test_accuracy_mean:.4f}" for a in agg.itertuples())
    return [figures, compare(diff, px[1], best.test_accuracy_std),
            f"best ({best.arm}) leads pixels by {diff:+.4f}"]


@from_experiment("data",
                 "CNNs need much data: with few images hand-crafted features win, and the gap closes as data grows.")
def claim_data(exp: dict) -> list[str]:
    best = best_per_size(aggregate(exp["rows"], ["arm", "n_train"]))
    gaps = best.hand - best.cnn
    figures = "; ".join(f"{int(n):,}: hand {b.hand:.3f} vs CNN {b.cnn:.3f}" for n, b in best.iterrows())
    if gaps.iloc[0] > 0.01 and gaps.iloc[-1] < gaps.iloc[0]:
        return [figures, SUPPORTED, "hand-crafted leads at the smallest size; the gap shrinks"]
    if gaps.iloc[0] <= 0:
        return [figures, NOT_SUPPORTED, "a CNN already leads at the smallest size"]
    return [figures, INCONCLUSIVE, "the gap does not shrink in this range"]


@from_experiment("activation", "ReLU makes training easier than sigmoid (same init, same learning rate).")
def claim_relu(exp: dict) -> list[str]:
    agg = aggregate(exp["rows"], ["model", "lr", "activation"])
    better = worse = n = 0
    parts = []
    for (model, lr), g in agg.groupby(["model", "lr"]):
        s, r = stat(g, activation="sigmoid"), stat(g, activation="relu")
        parts.append(f"{model} lr {lr}: sigmoid {s[0]:.3f}, ReLU {r[0]:.3f}")
        if max(s[0], r[0]) <= CHANCE:  # neither trained: this setting says nothing about the claim
            continue
        n += 1
        if clear(r[0] - s[0], s[1], r[1]):
            better, worse = better + (r[0] > s[0]), worse + (r[0] < s[0])
    verdict = SUPPORTED if better > n / 2 and worse == 0 else NOT_SUPPORTED if worse > n / 2 else INCONCLUSIVE
    rows = pd.DataFrame(exp["rows"])
    stuck = {act: int((rows[rows.activation == act].test_accuracy <= CHANCE).sum()) for act in ("relu", "sigmoid")}
    return ["; ".join(parts), verdict,
            f"ReLU clearly better in {better} of the {n} settings where either trained, clearly worse in {worse}; "
            f"runs left at chance: ReLU {stuck['relu']}, sigmoid {stuck['sigmoid']} of {len(rows) // 2} each"]


@from_experiment("dropout", "Dropout reduces overfitting (a smaller train/test gap).")
def claim_dropout(exp: dict) -> list[str]:
    frame = pd.DataFrame(exp["rows"])
    frame["gap"] = frame.train_accuracy - frame.test_accuracy
    g = frame.groupby("dropout").agg(gap=("gap", "mean"), gap_std=("gap", "std"), test=("test_accuracy", "mean"))
    on, off = g.loc[0.5], g.loc[0.0]
    figures = (f"gap with dropout {on.gap:.4f} (test {on.test:.4f}); without {off.gap:.4f} (test {off.test:.4f})")
    diff = off.gap - on.gap
    return [figures, compare(diff, on.gap_std, off.gap_std),
            f"dropout changes the gap by {-diff:+.4f}"]


@from_experiment("augmentation", "Data augmentation (flips, crops) improves test accuracy.")
def claim_augmentation(exp: dict) -> list[str]:
    agg = aggregate(exp["rows"], ["arm"])
    a, p = stat(agg, arm="augmented"), stat(agg, arm="plain")
    diff = a[0] - p[0]
    return [f"augmented {a[0]:.4f} ± {a[1]:.4f}; plain {p[0]:.4f} ± {p[1]:.4f}",
            compare(diff, a[1], p[1]), f"difference {diff:+.4f} at this training length"]


@from_experiment("anatomy", "In AlexNet the fully connected layers hold most parameters while the convolutions "
                            "do most of the compute.")
def claim_anatomy(exp: dict) -> list[str]:
    f = pd.DataFrame(exp["rows"])
    fc_params = f[f.layer == "Linear"].params.sum() / f.params.sum()
    conv_flops = f[f.layer == "Conv2d"].flops.sum() / f.flops.sum()
    conv_time = f[f.layer == "Conv2d"].forward_ms.sum() / f.forward_ms.sum()
    verdict = SUPPORTED if fc_params > 0.5 and conv_flops > 0.5 else NOT_SUPPORTED
    return [f"FC layers: {fc_params:.1%} of parameters; convolutions: {conv_flops:.1%} of FLOPs, "
            f"{conv_time:.1%} of measured forward time", verdict, "analytic counts, checked against torch's counter"]


def claim_gpu(inp, _) -> list[str]:
    claim = "GPUs made training AlexNet practical."
    alex = inp.ok[(inp.ok.pipeline == "alexnet") & inp.ok.train_images_per_second.notna()]
    cpu, gpu = alex[alex.device == "cpu"], alex[alex.device == "cuda"]
    if len(cpu) and len(gpu):
        c, g = cpu.train_images_per_second.max(), gpu.train_images_per_second.max()
        return [claim, "hardware", f"CPU {c:,.1f} img/s; GPU {g:,.0f} img/s ({g / c:,.0f}x)",
                SUPPORTED if g / c > 10 else NOT_SUPPORTED, "measured rows on both devices"]
    if len(cpu):
        c = cpu.iloc[0]
        return [claim, "hardware", f"CPU {c.train_images_per_second:,.1f} img/s; {c.notes}", INCONCLUSIVE,
                "no GPU row yet; the CPU half alone shows the recipe costs hours here"]
    return [claim, "hardware", "no AlexNet rows", INCONCLUSIVE, "run `--only alexnet` (and `--gpu`)"]


def claim_filters(inp, stats: dict) -> list[str]:
    claim = "AlexNet's first-layer filters resemble hand-made ones (oriented edges, Gabor-like)."
    if "alexnet" not in stats:
        return [claim, "filters", "no AlexNet filters saved", INCONCLUSIVE, "run `--only alexnet`"]
    s = stats["alexnet"]
    figures = "; ".join(f"{n}: {v['share']:.0%} fit a Gabor (random: {v['baseline_share']:.0%})"
                        for n, v in stats.items())
    alex = inp.ok[(inp.ok.pipeline == "alexnet")]
    trained = bool(len(alex)) and (alex.preset == "paper").any()
    if s["share"] > s["baseline_share"] + 0.2:
        return [claim, "filters", figures, SUPPORTED, "well above the random-filter chance level"]
    if not trained:
        return [claim, "filters", figures, INCONCLUSIVE,
                "AlexNet trained only briefly under the CPU budget; its filters are still near initialisation"]
    return [claim, "filters", figures, NOT_SUPPORTED, "no more Gabor-like than random filters"]


CLAIMS = [claim_learned_wins, claim_features_matter, claim_data, claim_relu, claim_dropout, claim_augmentation,
          claim_anatomy, claim_gpu, claim_filters]


def verdict_table(inp, filter_stats: dict) -> str:
    rows = [fn(inp, filter_stats) for fn in CLAIMS]
    return md_table(["claim", "experiment", "measured", "verdict", "why"], rows)
