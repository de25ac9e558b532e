"""Time to accuracy: the curve a learned run records (after each complete epoch, the training seconds so far, the
test accuracy, and MLPerf's clock with everything in), when a curve reaches a target accuracy (MLPerf's first
evaluation at or above it, ``first_reach``, and the stricter "for good", ``time_to_reach``), and what a
hand-crafted row's time to a scored model is. Read by the report's time section and by
``bench/time_to_accuracy.py``."""
from __future__ import annotations

import math

from .store import CURVE_FIELDS

# A hand-crafted row's time from images to test predictions: features (train and test), encoding, fit,
# prediction. Left out, as on the learned side: scoring the training images, figures, bookkeeping.
HAND_SECONDS = ("feature_seconds", "encode_seconds", "fit_seconds", "predict_seconds")


def curve_of(history: list[dict]) -> list[dict]:
    """The scored epochs of a trainer's history, each reduced to ``CURVE_FIELDS``."""
    return [{k: h.get(k) for k in CURVE_FIELDS} for h in history if "test_accuracy" in h]


def time_to_reach(curve: list[dict], target: float) -> dict | None:
    """The first point of ``curve`` from which the test accuracy stays at or above ``target`` to the end, or
    None. "Stays" keeps a noisy early crossing that falls back from counting as reached."""
    hit = None
    for point in curve:
        if point["test_accuracy"] >= target:
            hit = hit or point
        else:
            hit = None
    return hit


def first_reach(curve: list[dict], target: float) -> dict | None:
    """MLPerf's rule: the first point of ``curve`` whose test accuracy is at or above ``target`` (its
    ``clock_seconds`` is the time to accuracy), or None when the run never reaches it."""
    return next((p for p in curve if p["test_accuracy"] >= target), None)


def hand_seconds(row) -> float:
    """The sum of ``HAND_SECONDS`` of a results row (a mapping or a named tuple); missing parts count 0."""
    get = row.get if hasattr(row, "get") else lambda k, d=None: getattr(row, k, d)
    values = [get(k, None) for k in HAND_SECONDS]
    return float(sum(v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))))
