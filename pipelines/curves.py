"""Time to accuracy: the curve a learned run records (after each complete epoch, the training seconds so far
and the test accuracy; scoring is not training time) and when a curve first reaches a target accuracy.
Read by the report's time section and by ``bench/time_to_accuracy.py``."""
from __future__ import annotations

CURVE_FIELDS = ("epoch", "train_seconds", "test_accuracy")


def curve_of(history: list[dict]) -> list[dict]:
    """The scored epochs of a trainer's history, each reduced to ``CURVE_FIELDS``."""
    return [{k: h[k] for k in CURVE_FIELDS} for h in history if "test_accuracy" in h]


def time_to_reach(curve: list[dict], target: float) -> dict | None:
    """The first point of ``curve`` whose test accuracy is at least ``target``, or None if none is."""
    return next((p for p in curve if p["test_accuracy"] >= target), None)
