"""Verdicts under the protocol's pre-declared rules (PROTOCOL.md, "Decision rules").

Every two-arm claim has one shape: an effect (a difference of test accuracies, or of train/test gaps) with
its 95% interval over seeds, and a minimum effect ``DELTA`` declared here before any run.

- *supported*: the interval lies above 0 and the mean effect is at least ``DELTA``;
- *not supported*: the interval lies below ``DELTA`` (reliably smaller than what matters, or reversed);
- *inconclusive* otherwise, with the reason named (too few seeds, interval too wide, needs a GPU row, ...).

A claim made of several comparisons (every feature against pixels, every model's ReLU against sigmoid)
holds when every part is supported and fails when any part is not supported (``all_of``). The claims that
read the results table (learned against hand-crafted, GPU speed, filters) live here too; each experiment's
own claim lives with the experiment (``experiments.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import REGISTRY
from .stats import Estimate, difference
from .tables import flag

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
DELTA = 0.005            # minimum effect that matters: half a point of test accuracy (or of a gap)
GPU_SPEEDUP_MIN = 10.0   # "GPUs made AlexNet practical": at least this many times the CPU's training img/s
FILTER_MARGIN = 0.20     # "filters look like Gabors": share fitting a Gabor at least this far above random
MIN_SEEDS = 3            # experiment arms run at least this many seeds at every point
FAST_SEEDS = 5           # ... and this many where an arm takes under FAST_ARM_SECONDS
FAST_ARM_SECONDS = 60     # documents the schedule fixed in each experiment's sizes; not measured at run time

# Inconclusive, and why: each reason named once.
TOO_FEW_SEEDS = "too few seeds for an interval"
TOO_WIDE = "the interval is too wide to decide"
NEEDS_GPU = "needs a GPU row"
NOT_RUN = "not run yet"

TWO_ARM_RULE = (f"supported if the 95% CI of the difference lies above 0 and its mean is ≥ δ = {DELTA}; "
                f"not supported if the CI lies below δ; else inconclusive")


@dataclass(frozen=True)
class Verdict:
    claim: str
    evidence: str   # the experiment or table it reads
    measured: str
    verdict: str
    why: str
    rule: str

    def cells(self) -> list[str]:
        return [self.claim, self.evidence, self.measured, f"**{self.verdict}**", self.why, self.rule]


def decide(effect: Estimate, delta: float = DELTA) -> tuple[str, str]:
    """The two-arm rule on one effect; returns (verdict, reason)."""
    if math.isnan(effect.mean):
        return INCONCLUSIVE, NOT_RUN
    if not effect.has_interval:
        return INCONCLUSIVE, f"{TOO_FEW_SEEDS} (n = {effect.n})"
    if effect.lo > 0 and effect.mean >= delta:
        return SUPPORTED, f"effect {effect.text()} ({effect.method}, n = {effect.n}): above 0, mean ≥ δ"
    if effect.hi < delta:
        return NOT_SUPPORTED, f"effect {effect.text()} ({effect.method}, n = {effect.n}): CI below δ"
    return INCONCLUSIVE, f"{TOO_WIDE}: effect {effect.text()} ({effect.method}, n = {effect.n})"


def all_of(parts: list[tuple[str, str, str]]) -> tuple[str, str]:
    """Combine (label, verdict, reason) parts: supported if all are, not supported if any is not."""
    verdicts = [v for _, v, _ in parts]
    why = "; ".join(f"{label}: {v} ({r})" for label, v, r in parts)
    if not parts:
        return INCONCLUSIVE, NOT_RUN
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED, why
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED, why
    return INCONCLUSIVE, why


ALL_OF_RULE = "every part supported → supported; any part not supported → not supported; else inconclusive"


def family(name: str) -> str:
    """A pipeline's family, from the registry (the one home of that fact)."""
    return REGISTRY[name].family


# --- claims on the results table -------------------------------------------------------------------------

def comparable(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows that may enter a verdict: full training set, full test set, not stopped by a time budget.
    Rows written before those columns existed are judged from ``n_train``/``n_test`` and ``notes``."""
    if ok.empty:
        return ok
    biggest = ok.groupby("dataset")[["n_train", "n_test"]].transform("max")
    inferred = (ok.n_train >= biggest.n_train) & (ok.n_test >= biggest.n_test)
    full = flag(ok, "full_data").where(flag(ok, "full_data").notna(), inferred).astype(bool)
    stopped = ok.notes.astype(object).where(ok.notes.notna(), "").astype(str).str.contains("stopped by")
    cut = flag(ok, "truncated").where(flag(ok, "truncated").notna(), stopped).astype(bool)
    return ok[full & ~cut]


def per_seed(rows: pd.DataFrame) -> dict[str, dict[int, float]]:
    """pipeline -> {seed: test accuracy}."""
    return {p: dict(zip(g.seed.astype(int), g.test_accuracy.astype(float))) for p, g in rows.groupby("pipeline")}


def seeds_text(values: dict) -> str:
    return f"{len(values)} seed{'' if len(values) == 1 else 's'}"


def best(arms: dict[str, dict[int, float]]) -> tuple[str, dict[int, float]]:
    """The arm with the highest mean over its seeds."""
    name = max(arms, key=lambda a: np.mean(list(arms[a].values())))
    return name, arms[name]


LEARNED_WINS = "Features learned end to end beat the best hand-crafted features (the 2012 turn)."
LEARNED_RULE = (f"like with like: same dataset and preset, full training and test sets, no budget-truncated "
                f"run; each family's best by mean over seeds; then {TWO_ARM_RULE} (Welch t)")


def claim_learned_wins(ok: pd.DataFrame) -> list[Verdict]:
    """One verdict per (dataset, preset, device) where learned rows exist, plus the GPU recipe's if absent."""
    rows = comparable(ok)
    rows = rows.assign(family=rows.pipeline.map(lambda p: family(p) if p in REGISTRY else "unknown"))
    out = []
    for (dataset, preset), group in rows.groupby(["dataset", "preset"]):
        hand = group[group.family == "handcrafted"]
        for device, learned in group[group.family == "learned"].groupby("device"):
            out.append(_learned_vs_hand(dataset, preset, device, per_seed(hand), per_seed(learned)))
    if not ((rows.preset == "paper") & (rows.family == "learned")).any():
        out.append(Verdict(f"{LEARNED_WINS} (paper preset: the chapter's recipes)", "results table",
                           "no full-data learned row in the paper preset", INCONCLUSIVE,
                           f"{NEEDS_GPU}: `python runner.py --all --gpu --seeds 0 1 2`", LEARNED_RULE))
    return out


def _learned_vs_hand(dataset, preset, device, hand: dict, learned: dict) -> Verdict:
    claim = f"{LEARNED_WINS} ({dataset}, preset {preset}, learned on {device})"
    if not hand:
        return Verdict(claim, "results table", "no comparable hand-crafted row", INCONCLUSIVE, NOT_RUN, LEARNED_RULE)
    (h, hs), (l, ls) = best(hand), best(learned)
    effect = difference(ls, hs, paired=False)  # across pipelines a seed shares nothing: never paired
    verdict, why = decide(effect)
    measured = (f"best learned `{l}` {np.mean(list(ls.values())):.4f} ({seeds_text(ls)}) vs best hand-crafted "
                f"`{h}` {np.mean(list(hs.values())):.4f} ({seeds_text(hs)})")
    return Verdict(claim, "results table", measured, verdict, why, LEARNED_RULE)


GPU_CLAIM = "GPUs made training AlexNet practical."
GPU_RULE = (f"supported if AlexNet's measured training img/s on CUDA is ≥ {GPU_SPEEDUP_MIN:g}× the CPU's; "
            "not supported if below; inconclusive without both rows")


def claim_gpu(ok: pd.DataFrame) -> Verdict:
    alex = ok[(ok.pipeline == "alexnet") & ok.train_images_per_second.notna()]
    cpu, gpu = alex[alex.device == "cpu"], alex[alex.device == "cuda"]
    if len(cpu) and len(gpu):
        c, g = cpu.train_images_per_second.max(), gpu.train_images_per_second.max()
        return Verdict(GPU_CLAIM, "results table", f"CPU {c:,.1f} img/s; GPU {g:,.0f} img/s ({g / c:,.0f}×)",
                       SUPPORTED if g / c >= GPU_SPEEDUP_MIN else NOT_SUPPORTED, "measured rows on both devices",
                       GPU_RULE)
    measured = f"CPU {cpu.train_images_per_second.max():,.1f} img/s; {cpu.iloc[0].notes}" if len(cpu) else "no rows"
    return Verdict(GPU_CLAIM, "results table", measured, INCONCLUSIVE,
                   f"{NEEDS_GPU}: `python runner.py --only alexnet --gpu`" if len(cpu) else NOT_RUN, GPU_RULE)


FILTER_CLAIM = "AlexNet's first-layer filters resemble hand-made ones (oriented edges, Gabor-like)."
FILTER_RULE = (f"supported if the share of conv1 filters fitting a Gabor (cosine ≥ 0.8) is ≥ {FILTER_MARGIN:.0%} "
               "above that of random Xavier filters, for a network trained on the full recipe; not supported if "
               "below; inconclusive while only a truncated or subset run exists")


def claim_filters(ok: pd.DataFrame, stats: dict) -> Verdict:
    if "alexnet" not in stats:
        return Verdict(FILTER_CLAIM, "filters", "no AlexNet filters saved", INCONCLUSIVE, NOT_RUN, FILTER_RULE)
    figures = "; ".join(f"{n}: {v['share']:.0%} fit a Gabor (random: {v['baseline_share']:.0%})"
                        for n, v in stats.items())
    s = stats["alexnet"]
    margin = s["share"] - s["baseline_share"]
    full = len(comparable(ok[ok.pipeline == "alexnet"])) > 0
    if not full:
        return Verdict(FILTER_CLAIM, "filters", figures, INCONCLUSIVE,
                       f"{NEEDS_GPU}: the AlexNet filters come from a budget-truncated subset run", FILTER_RULE)
    verdict = SUPPORTED if margin >= FILTER_MARGIN else NOT_SUPPORTED
    return Verdict(FILTER_CLAIM, "filters", figures, verdict, f"share above random: {margin:+.0%}", FILTER_RULE)
