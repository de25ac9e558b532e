"""The protocol's statistics (PROTOCOL.md, "Statistics"): means with 95% Student-t confidence intervals over
seeds, differences of two arms (paired by seed when both ran the same seeds, Welch otherwise), and the slope
of a trend against log10 of the training-set size. Pure functions over numbers; nothing here reads files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95  # every interval in the report is a 95% interval


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% interval (``lo``/``hi`` are NaN when it has none: fewer than two seeds)."""
    mean: float
    lo: float
    hi: float
    n: int
    method: str = ""

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.lo) or math.isnan(self.hi))

    @property
    def no_spread(self) -> bool:
        """Two or more values and no interval: they did not vary, so there is no interval to decide with."""
        return self.n >= 2 and not self.has_interval

    def text(self, digits: int = 4) -> str:
        if not self.has_interval:
            return f"{self.mean:+.{digits}f} (n={self.n}, no interval)"
        return f"{self.mean:+.{digits}f} [{self.lo:+.{digits}f}, {self.hi:+.{digits}f}]"


def t_quantile(df: float) -> float:
    from scipy import stats as st  # imported here: the runner's start-up (e.g. on a bare GPU box) needs no scipy
    return float(st.t.ppf(0.5 + LEVEL / 2, df))


def mean_ci(values) -> Estimate:
    """Mean and Student-t interval of independent values (one per seed)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, "mean")
    mean = float(x.mean())
    if n < 2 or np.ptp(x) == 0:  # one value, or values that did not vary: no interval (never a zero-width one)
        return Estimate(mean, math.nan, math.nan, n, "mean")
    half = t_quantile(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, "mean")


def difference(a: dict, b: dict, paired: bool = True) -> Estimate:
    """a - b for two arms given as {seed: value}: paired by seed when ``paired`` and both ran the same seeds (the
    same training subset per seed), else Welch's unequal-variance interval."""
    if paired and set(a) == set(b) and len(a) >= 2:
        est = mean_ci([a[s] - b[s] for s in sorted(a)])
        return Estimate(est.mean, est.lo, est.hi, est.n, "paired t")
    xa, xb = np.asarray(list(a.values()), float), np.asarray(list(b.values()), float)
    mean = float(xa.mean() - xb.mean()) if len(xa) and len(xb) else math.nan
    if len(xa) < 2 or len(xb) < 2:
        return Estimate(mean, math.nan, math.nan, min(len(xa), len(xb)), "Welch t")
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    se = math.sqrt(va + vb)
    if se == 0:  # neither arm varied: no interval (never a zero-width one)
        return Estimate(mean, math.nan, math.nan, min(len(xa), len(xb)), "Welch t")
    df = (va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1))
    half = t_quantile(df) * se
    return Estimate(mean, mean - half, mean + half, min(len(xa), len(xb)), "Welch t")


def slope(x, y) -> Estimate:
    """Least-squares slope of y against x, with its Student-t interval (df = points - 2)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or len(set(x)) < 2:
        fit = np.polyfit(x, y, 1)[0] if len(set(x)) >= 2 else math.nan
        return Estimate(float(fit), math.nan, math.nan, len(x), "OLS slope")
    from scipy import stats as st
    fit = st.linregress(x, y)
    half = t_quantile(len(x) - 2) * fit.stderr
    return Estimate(float(fit.slope), fit.slope - half, fit.slope + half, len(x), "OLS slope")
