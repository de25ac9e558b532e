"""What every experiment is: the ``Experiment`` base (its sizes, arms, measurements, claim, rule and report
section) and the pieces of the report's sections that several experiments share. Each experiment is one module
here and one line in ``pipelines.EXPERIMENTS``; it names its own arms, so a new pipeline joins none silently.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..analysis.claims import FAST_SEEDS, INCONCLUSIVE, MIN_SEEDS, NOT_RUN, TWO_ARM_RULE, Verdict
from ..analysis.plots import bar_plot
from ..analysis.tables import aggregate, flag, md_table, pm
from .. import get
from ..base import RunContext
from ..store import read_json, tuning_path
from ..tuning import Tuning
from .engine import Arm, ExpSize, stale

LR_GRID = (0.03, 0.1, 0.3, 0.9)  # the learning rates an experiment arm chooses from on validation (constant SGD)
CPU_SEEDS, FAST = tuple(range(MIN_SEEDS)), tuple(range(FAST_SEEDS))
SMOKE_DECIDES_NOTHING = "the smoke size decides nothing"


class Experiment:
    """Subclasses set the class attributes and implement ``arms`` (and/or ``measure``), ``judge`` and ``body``."""
    name: str
    description: str
    title: str
    claim: str | None = None
    rule: str = TWO_ARM_RULE
    sizes: dict[str, ExpSize]
    exercises: tuple[str, ...] = ()  # the chapter's exercises it answers (keys of ``report.exercises.EXERCISES``)
    needs_seeds: bool = True  # its claim reads an interval over seeds (an exact count does not)

    def tunings(self) -> list[Tuning]:
        return []

    def arms(self, size: ExpSize, seeds: tuple[int, ...] | None, recipe: str) -> list[Arm]:
        """Every arm and seed to run, in the order of the stored rows (configuration only: nothing is measured).
        ``seeds``: given on the command line, else None for the size's own; ``recipe``: the pipelines' preset the
        arms start from (``smoke`` or ``cpu``)."""
        return []

    def measure(self, ctx: RunContext, size: ExpSize, recipe: str) -> list[dict]:
        """Rows measured while planning, before any arm runs (exact counts, memory, peaks: measured alone)."""
        return []

    def judge(self, rows: pd.DataFrame, exp: dict) -> tuple[str, str, str]:
        """(measured, verdict, why) from the untruncated rows."""
        raise NotImplementedError

    def body(self, inp, exp: dict) -> str:
        raise NotImplementedError

    def answer(self, exp: dict, exercise: str = "") -> str:
        """An exercise's answer in one sentence, from the stored rows (experiments with ``exercises``)."""
        return self.judge(pd.DataFrame(exp["rows"]), exp)[0]

    def verdict(self, exp: dict | None) -> Verdict | None:
        if self.claim is None:
            return None
        if not exp:
            return Verdict(self.claim, self.name, "–", INCONCLUSIVE,
                           f"{NOT_RUN}: `python runner.py --experiment {self.name}`", self.rule)
        rows, failed = pd.DataFrame(exp["rows"]), pd.DataFrame(exp.get("failed") or [])
        cut = flag(rows, "truncated").eq(True)
        point = [c for c in ("seed",) if c in rows]  # by seed: a seed's arms at every size leave together
        dropped = set(rows.loc[cut, point].apply(tuple, axis=1)) if cut.any() else set()
        if len(failed) and set(point) <= set(failed.columns):
            dropped |= set(failed[point].apply(tuple, axis=1))
        hit = rows[point].apply(tuple, axis=1).isin(dropped) if dropped else cut & False
        measured, verdict, why = self.judge(rows[~hit], exp)
        lost = [f"{n} {what} run(s)" for n, what in ((int(cut.sum()), "budget-truncated"), (len(failed), "failed"))
                if n]
        if lost:
            why += (f"; {' and '.join(lost)} left out, with every arm's run of the same seed ({int(hit.sum())} stored "
                    "runs in all), so arms stay paired")
        verdict, why = self.may_decide(exp, verdict, why, rows[~hit])
        return Verdict(self.claim, self.name, measured, verdict, why, self.rule)

    def judged(self, exp: dict | None) -> Verdict | None:
        """The report's verdict: ``verdict``, inconclusive while the file is stale (evidence about another
        configuration); a file it cannot read (e.g. written by older code) costs that verdict only."""
        try:
            verdict = self.verdict(exp)
            reasons = stale(exp) if exp and verdict else []
            if reasons:
                return dataclasses.replace(verdict, verdict=INCONCLUSIVE, why="stale: " + "; ".join(reasons)
                                           + f"; rerun `python runner.py --experiment {self.name}`")
            return verdict
        except Exception as exc:  # the other claims are still judged
            return Verdict(self.claim, self.name, "–", INCONCLUSIVE, f"its file cannot be judged "
                           f"({type(exc).__name__}): rerun `python runner.py --experiment {self.name}`", self.rule)

    def may_decide(self, exp: dict, verdict: str, why: str, rows: pd.DataFrame) -> tuple[str, str]:
        """Only a size that may decide gives a verdict: never smoke, and at least ``MIN_SEEDS`` seeds where the
        claim reads an interval over seeds."""
        if exp.get("size") == "smoke":
            return INCONCLUSIVE, (f"{SMOKE_DECIDES_NOTHING} (`python runner.py --experiment {self.name}`); it would "
                                  f"say {verdict}: {why}")
        seeds = rows.seed.nunique() if "seed" in rows else 0
        if self.needs_seeds and seeds < MIN_SEEDS:
            return INCONCLUSIVE, f"too few seeds: {seeds}, at least {MIN_SEEDS} decide; it would say {verdict}: {why}"
        return verdict, why


def network_arguments(pipeline: str, **kwargs) -> tuple:
    """The network arguments of ``pipeline``'s ``cpu`` preset with ``kwargs`` merged over them (sorted pairs)."""
    p = get(pipeline)
    return p.with_settings(p.config("cpu"), model_kwargs=tuple(kwargs.items())).model_kwargs


def mean_of(values: dict) -> float:
    return float(np.mean(list(values.values()))) if values else float("nan")


# --- shared pieces of the report's sections ----------------------------------------------------------------------

def bar_section(inp, exp: dict, keys: list[str], label, title: str, with_train=False, hue=None) -> str:
    rows = pd.DataFrame(exp["rows"])
    agg = aggregate(rows, keys)
    agg["label"] = [label(r) for r in agg.itertuples()]
    bar_plot(agg, inp.figures / f"exp_{exp['experiment']}.png", title, with_train, hue)
    header = ["arm", "test acc (mean ± 95% CI)", "train acc (eval mode)", "gap (train − test)", "seeds"]
    table = md_table(header, [[a.label, pm(a.test_accuracy_mean, a.test_accuracy_half),
                               pm(getattr(a, "train_accuracy_mean", np.nan), getattr(a, "train_accuracy_half", np.nan)),
                               pm(getattr(a, "gap_mean", np.nan), getattr(a, "gap_half", np.nan)), a.n]
                              for a in agg.itertuples()])
    diverged, cut = failed_runs(rows)
    note = f"\n\n{diverged} run(s) diverged (NaN loss) and count as chance." if diverged else ""
    if cut:
        note += f"\n\n{cut} run(s) were stopped by the time budget (truncated): shown, left out of the verdict."
    return f"![{exp['experiment']}](figures/exp_{exp['experiment']}.png)\n\n{table}{note}"


def failed_runs(rows: pd.DataFrame) -> tuple[int, int]:
    """How many runs diverged (scored as chance) and how many a time budget stopped (truncated)."""
    return int(flag(rows, "diverged").eq(True).sum()), int(flag(rows, "truncated").eq(True).sum())


def tuning_table(names: list[str]) -> str:
    """The validation scores behind an experiment's choices (from results/tuning/)."""
    rows = []
    for name in names:
        payload = read_json(tuning_path(name))
        if not payload:
            rows.append([name, "not tuned yet", "–"])
            continue
        scores = ", ".join(f"{p['lr']}: {p['validation_accuracy']:.4f}" for p in payload["points"])
        rows.append([name, scores, payload["choice"]["lr"]])
    return ("Learning rates chosen on the validation split (`python bench/tune.py`):\n\n"
            + md_table(["arm", "validation accuracy by learning rate", "chosen"], rows))
