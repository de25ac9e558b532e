"""Pure functions over rows: formatting, markdown tables, and per-arm aggregates (mean, 95% CI, seeds)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import mean_ci


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def aggregate(rows, keys: list[str], values=("test_accuracy", "train_accuracy", "gap", "seconds")) -> pd.DataFrame:
    """Per group of ``keys``: ``<value>_mean``, ``<value>_half`` (95% CI half-width, NaN with one seed) and
    ``n`` (seeds), in first-seen order."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if "train_accuracy" in frame and "gap" not in frame:
        frame = frame.assign(gap=frame.train_accuracy - frame.test_accuracy)
    out = []
    for key, group in frame.groupby(keys, sort=False):
        rec = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        for v in values:
            if v in group and group[v].notna().any():
                est = mean_ci(group[v].dropna())
                rec[f"{v}_mean"], rec[f"{v}_half"] = est.mean, (est.hi - est.mean)
        rec["n"] = len(group)
        out.append(rec)
    return pd.DataFrame(out)


def flag(frame: pd.DataFrame, column: str, default=None) -> pd.Series:
    """A boolean column as True/False/NaN, whether it was read as bools or strings; ``default`` where missing."""
    if column not in frame:
        return pd.Series(default, index=frame.index, dtype=object)
    mapped = frame[column].map(lambda v: {"true": True, "false": False}.get(str(v).strip().lower(), np.nan))
    return mapped.astype(object)


SHARED = "‡"  # marks a time taken while other tasks of the grid ran on the same host (``concurrency`` > 1)
SHARED_WHY = ("timed while other tasks of the grid shared its host (`--jobs` above 1 or `--scheduler`; the rows' "
              "`concurrency` column): not comparable with serial times, and never ranked against them")
SHARED_NOTE = f"{SHARED}: {SHARED_WHY}."


def shared(frame: pd.DataFrame) -> pd.Series:
    """Rows timed beside other tasks on their host (``concurrency`` > 1); rows from before the column: not."""
    if "concurrency" not in frame:
        return pd.Series(False, index=frame.index)
    return pd.to_numeric(frame.concurrency, errors="coerce").fillna(1) > 1


def alone(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose times may be ranked: those not ``shared``."""
    return frame[~shared(frame)]


def timed(value, digits: int, was_shared: bool) -> str:
    """``fmt`` of a time, marked ``SHARED`` when it was taken under concurrency."""
    text = fmt(value, digits)
    return f"{text} {SHARED}" if was_shared and text != "–" else text


def pm(mean, half, digits: int = 4) -> str:
    """``mean ± half`` (the 95% CI), or the mean alone where there is no interval."""
    if half is None or (isinstance(half, float) and np.isnan(half)):
        return fmt(mean, digits)
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def seeds_of(rows: pd.DataFrame, arm_col: str, arm, value: str = "test_accuracy", **where) -> dict[int, float]:
    """{seed: value} of one arm (optionally filtered by ``where`` columns)."""
    sel = rows[rows[arm_col] == arm]
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return dict(zip(sel.seed.astype(int), sel[value].astype(float)))
