"""Verdicts under the protocol's pre-declared rules (PROTOCOL.md, "Decision rules").

Every two-arm claim has one shape: an effect (a difference of test accuracies, or of train/test gaps) with
its 95% interval over seeds, and a minimum effect ``DELTA`` declared here before any run.

- *supported*: the interval lies above 0 and the mean effect is at least ``DELTA``;
- *not supported*: the interval lies below ``DELTA`` (reliably smaller than what matters, or reversed);
- *inconclusive* otherwise, with the reason named (too few seeds, interval too wide, needs a GPU row, ...).

A claim made of several comparisons (every feature against pixels, every model's ReLU against sigmoid)
holds when every part is supported and fails when any part is not supported (``all_of``). The claims that
read the results table (learned against hand-crafted, GPU speed, filters) live here too; each experiment's
own claim lives with the experiment (``pipelines/experiments/``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import PIPELINES, family, get
from .stats import Estimate, difference
from .tables import alone, flag

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
DELTA = 0.005            # minimum effect that matters: half a point of test accuracy (or of a gap)
GPU_SPEEDUP_MIN = 10.0   # "GPUs made AlexNet practical": at least this many times the CPU's training img/s
FILTER_MARGIN = 0.20     # "filters look like Gabors": share fitting a Gabor at least this far above random
MIN_SEEDS = 3            # experiment arms run at least this many seeds at every point
FAST_SEEDS = 5           # ... and this many where an arm takes under FAST_ARM_SECONDS
FAST_ARM_SECONDS = 60     # documents the schedule fixed in each experiment's sizes; not measured at run time

# Inconclusive, and why: each reason named once.
TOO_FEW_SEEDS = "too few seeds for an interval"
NO_SPREAD = "no spread over the seeds, so no interval"
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
        return INCONCLUSIVE, f"{NO_SPREAD if effect.no_spread else TOO_FEW_SEEDS} (n = {effect.n})"
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


LEARNED_WINS = "Features learned end to end beat the best hand-crafted features (the 2012 turn)."
CHOSEN_ON_VALIDATION = ("each family's representative is its pipeline with the highest stored validation accuracy "
                        "at its chosen setting (`results/tuning/<pipeline>.json`; a pipeline without one is no "
                        "candidate), never the test set")
LEARNED_RULE = (f"like with like: same dataset and preset, full training and test sets, no budget-truncated "
                f"run, a diverged run scored as chance; {CHOSEN_ON_VALIDATION}; then {TWO_ARM_RULE} (Welch t)")
EQUAL_TIME_RULE = (f"the learned representative's rows against the hand-crafted side given no more time: hand-crafted "
                   f"rows of any preset, same dataset and same CPU, timed alone, whose mean total time is at most "
                   f"the learned rows' mean total time; the hand-crafted representative chosen as above among "
                   f"those, at its costliest such preset (more compute, chosen without the test set); then "
                   f"{TWO_ARM_RULE} (Welch t)")


def by_validation(names, validation: dict[str, float]) -> list[str]:
    """The pipelines of ``names`` that have a stored validation accuracy, highest first (ties: by name)."""
    return sorted({p for p in names if p in validation}, key=lambda p: (-validation[p], p))


def representative(rows: pd.DataFrame, validation: dict[str, float]) -> str | None:
    """The pipeline of ``rows`` with the highest stored validation accuracy (ties: the first name); None if no
    pipeline there has one."""
    ranked = by_validation(rows.pipeline.unique(), validation)
    return ranked[0] if ranked else None


def runner_up(rows: pd.DataFrame, validation: dict[str, float]) -> str:
    """The next pipeline of ``rows`` by stored validation accuracy after the representative (what it would be
    without the winner: the text says what a new pipeline displaced), or "" if there is none."""
    ranked = by_validation(rows.pipeline.unique(), validation)
    return f"; next by validation: `{ranked[1]}` ({validation[ranked[1]]:.4f})" if len(ranked) > 1 else ""


def side_text(name: str, rows: pd.DataFrame, validation: dict[str, float]) -> str:
    """``name``'s mean test accuracy, seeds, mean wall time per run and the validation score that chose it."""
    per = per_seed(rows[rows.pipeline == name])[name]
    seconds = pd.to_numeric(rows[rows.pipeline == name].total_seconds, errors="coerce").mean()
    return (f"`{name}` {np.mean(list(per.values())):.4f} ({seeds_text(per)}, {seconds:,.0f} s per run; validation "
            f"{validation[name]:.4f})")


def claim_learned_wins(scored: pd.DataFrame, validation: dict[str, float]) -> list[Verdict]:
    """One verdict per (dataset, preset, device) where learned rows exist, each beside its equal-time verdict (on a
    CPU), plus the GPU recipe's if absent. ``scored``: ok and diverged rows; ``validation``: pipeline -> stored
    validation accuracy at its chosen setting."""
    rows = comparable(scored)
    rows = rows.assign(family=rows.pipeline.map(lambda p: family(p) if p in PIPELINES else "unknown"))
    out = []
    for (dataset, preset), group in rows.groupby(["dataset", "preset"]):
        hand = group[group.family == "handcrafted"]
        for device, learned in group[group.family == "learned"].groupby("device"):
            claim = f"{LEARNED_WINS} ({dataset}, preset {preset}, learned on {device})"
            out.append(_learned_vs_hand(claim, learned, hand, validation, LEARNED_RULE))
            if device == "cpu":
                out.append(equal_time(dataset, preset, learned, rows[(rows.dataset == dataset)
                                                                     & (rows.family == "handcrafted")], validation))
    if not ((rows.preset == "paper") & (rows.family == "learned")).any():
        out.append(Verdict(f"{LEARNED_WINS} (paper preset: the chapter's recipes)", "results table",
                           "no full-data learned row in the paper preset", INCONCLUSIVE,
                           f"{NEEDS_GPU}: `python runner.py --all --gpu --seeds 0 1 2`", LEARNED_RULE))
    return out


def _learned_vs_hand(claim: str, learned: pd.DataFrame, hand: pd.DataFrame, validation: dict, rule: str) -> Verdict:
    l, h = representative(learned, validation), representative(hand, validation)
    if l is None or h is None:
        if hand.empty:
            return Verdict(claim, "results table", "no comparable hand-crafted row", INCONCLUSIVE, NOT_RUN, rule)
        none = f"no {'learned' if l is None else 'hand-crafted'} pipeline here has a stored validation score"
        present = ", ".join(f"`{p}`" for p in sorted((learned if l is None else hand).pipeline.unique()))
        return Verdict(claim, "results table", f"{none} (rows here: {present})", INCONCLUSIVE, none, rule)
    effect = difference(per_seed(learned[learned.pipeline == l])[l], per_seed(hand[hand.pipeline == h])[h],
                        paired=False)  # across pipelines a seed shares nothing: never paired
    verdict, why = decide(effect)
    measured = (f"learned {side_text(l, learned, validation)} vs hand-crafted {side_text(h, hand, validation)}"
                f"{runner_up(hand, validation)}")
    return Verdict(claim, "results table", measured, verdict, why, rule)


def equal_time(dataset: str, preset: str, learned: pd.DataFrame, hand: pd.DataFrame, validation: dict) -> Verdict:
    """The learned representative against the hand-crafted side given no more time (``EQUAL_TIME_RULE``)."""
    claim = (f"{LEARNED_WINS} ({dataset}, preset {preset}, learned on cpu, against hand-crafted rows of any preset "
             "given no more time)")
    l = representative(learned, validation)
    machines = set(learned.device_name[learned.pipeline == l]) if l else set()
    hand = alone(hand[hand.device_name.isin(machines)])
    if l is None or hand.empty:
        return Verdict(claim, "results table", "no hand-crafted row timed alone on the same CPU", INCONCLUSIVE,
                       NOT_RUN, EQUAL_TIME_RULE)
    budget = pd.to_numeric(learned[learned.pipeline == l].total_seconds, errors="coerce").mean()
    seconds = hand.groupby(["pipeline", "preset"]).total_seconds.mean()
    within = seconds[seconds <= budget]
    h = representative(within.reset_index(), validation)
    if h is None:
        return Verdict(claim, "results table", f"no hand-crafted row with a validation score within {budget:,.0f} s",
                       INCONCLUSIVE, NOT_RUN, EQUAL_TIME_RULE)
    at = within[h].idxmax()  # its costliest preset within the time
    rows = hand[(hand.pipeline == h) & (hand.preset == at)]
    verdict, why = decide(difference(per_seed(learned[learned.pipeline == l])[l], per_seed(rows)[h], paired=False))
    return Verdict(claim, "results table", f"learned {side_text(l, learned, validation)} vs hand-crafted "
                   f"{side_text(h, rows, validation)} at preset {at}", verdict, why, EQUAL_TIME_RULE)


GPU_CLAIM = "GPUs made training AlexNet practical."
GPU_RULE = (f"AlexNet's training img/s on CUDA against the CPU's, at the chapter's network and batch (the paper "
            f"preset's; smoke rows left out), in one precision on both devices where both ran one, else each "
            f"device's own precision, named; supported if CUDA is ≥ {GPU_SPEEDUP_MIN:g}× the CPU; not supported if "
            f"below; inconclusive without both rows")


def recipe_rows(alex: pd.DataFrame) -> pd.DataFrame:
    """AlexNet rows whose preset trains the paper recipe's network at its batch (throughput compares)."""
    pipeline = get("alexnet")
    paper = pipeline.config("paper")
    same = {p for p, c in pipeline.presets.items() if (c.batch_size, c.image_size, c.model_kwargs)
            == (paper.batch_size, paper.image_size, paper.model_kwargs)}
    return alex[alex.preset.isin(same)]


def per_precision(rows: pd.DataFrame) -> str:
    """Training img/s of ``rows`` per precision, never averaged across precisions, each with its presets."""
    return "; ".join(f"{p} {g.train_images_per_second.mean():,.1f} img/s ({', '.join(sorted(set(g.preset)))})"
                     for p, g in rows.groupby("precision", sort=True))


def costliest(rows: pd.DataFrame) -> pd.Series:
    """The row whose notes speak for the device: the full recipe's where one ran, else the last row."""
    full = rows[rows.preset == FULL_RECIPE]
    return (full if len(full) else rows).iloc[-1]


def claim_gpu(ok: pd.DataFrame) -> Verdict:
    alex = recipe_rows(ok[(ok.pipeline == "alexnet") & ok.train_images_per_second.notna()])
    alex = alex.assign(precision=alex.precision.astype(object).where(alex.precision.notna(), "fp32").astype(str))
    cpu, gpu = alex[alex.device == "cpu"], alex[alex.device == "cuda"]
    if len(cpu) and len(gpu):
        both = sorted(set(cpu.precision) & set(gpu.precision))
        if both:
            cpu, gpu = cpu[cpu.precision == both[0]], gpu[gpu.precision == both[0]]
        c, g = cpu.train_images_per_second.mean(), gpu.train_images_per_second.mean()
        how = (f"both in {both[0]}" if both else f"precisions differ: CPU {', '.join(sorted(set(cpu.precision)))}, "
               f"GPU {', '.join(sorted(set(gpu.precision)))} (each device's own)")
        return Verdict(GPU_CLAIM, "results table", f"CPU {c:,.1f} img/s; GPU {g:,.0f} img/s ({g / c:,.0f}×); {how}",
                       SUPPORTED if g / c >= GPU_SPEEDUP_MIN else NOT_SUPPORTED,
                       f"measured rows on both devices ({len(cpu)} CPU, {len(gpu)} GPU)", GPU_RULE)
    measured = f"CPU {per_precision(cpu)}; {costliest(cpu).notes}" if len(cpu) else "no rows"
    return Verdict(GPU_CLAIM, "results table", measured, INCONCLUSIVE,
                   f"{NEEDS_GPU}: `python runner.py --only alexnet --gpu`" if len(cpu) else NOT_RUN, GPU_RULE)


FILTER_CLAIM = "AlexNet's first-layer filters resemble hand-made ones (oriented edges, Gabor-like)."
FILTER_RULE = (f"over AlexNet's full-recipe rows (preset paper, full data, not truncated), each read from its own "
               f"saved filters: supported if the mean share of conv1 filters fitting a Gabor (cosine ≥ 0.8) is ≥ "
               f"{FILTER_MARGIN:.0%} above that of random Xavier filters; not supported if below; inconclusive "
               f"without such a row (a cpu-preset or budget-truncated AlexNet decides nothing)")
FULL_RECIPE = "paper"  # the preset whose AlexNet rows are the chapter's full recipe


def full_recipe_rows(scored: pd.DataFrame) -> pd.DataFrame:
    """The AlexNet rows the filters claim may judge: the paper preset, full data, not truncated."""
    alex = scored[(scored.pipeline == "alexnet") & (scored.preset == FULL_RECIPE)]
    return comparable(alex) if len(alex) else alex


def claim_filters(judged: list[dict], shown: str = "") -> Verdict:
    """``judged``: one ``gabor_stats`` dict (``share``, ``baseline_share``) per full-recipe AlexNet row whose filters
    were saved (``full_recipe_rows``); ``shown``: the filters section's figures, for the measured cell."""
    if not judged:
        return Verdict(FILTER_CLAIM, "filters", shown or "no AlexNet filters saved", INCONCLUSIVE,
                       f"needs a full-recipe AlexNet row (preset {FULL_RECIPE}): `python runner.py --only alexnet "
                       f"--preset {FULL_RECIPE}` (a GPU, or a night on a CPU with --resume)", FILTER_RULE)
    share = float(np.mean([j["share"] for j in judged]))
    base = float(np.mean([j["baseline_share"] for j in judged]))
    measured = (f"AlexNet, {len(judged)} full-recipe row(s): {share:.0%} fit a Gabor (random: {base:.0%})"
                + (f"; {shown}" if shown else ""))
    verdict = SUPPORTED if share - base >= FILTER_MARGIN else NOT_SUPPORTED
    return Verdict(FILTER_CLAIM, "filters", measured, verdict, f"share above random: {share - base:+.0%}", FILTER_RULE)
