"""Time to accuracy on the results table: which learned curves meet which hand-crafted rows (same preset, and on
a CPU the same CPU, timed alone, full data, not truncated), and when each learned run reaches the best
hand-crafted mean accuracy for good. Pure functions over rows and curves; read by the report and by
``bench/time_to_accuracy.py``."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..curves import first_reach, hand_seconds, time_to_reach
from ..store import KEY
from .claims import comparable
from .plots import time_to_accuracy
from .tables import alone


def pairings(ok: pd.DataFrame, curves: pd.DataFrame) -> list[dict]:
    """What the time-to-accuracy comparison may pair: per preset, device and machine, the curves of the learned
    rows that may enter a verdict (full data, not truncated) and the hand-crafted rows of the same preset that
    may (for a CPU run, of the same CPU only, so that the times compare). ``cached`` marks hand-crafted rows that
    read their features, or part of them, from the cache: their time leaves out that extraction, so it can only
    favour that side."""
    ok = alone(ok)  # times taken under concurrency are never ranked
    learned = comparable(ok[ok.family == "learned"])
    hand = comparable(ok[ok.family == "handcrafted"])
    hand = hand.assign(cached=hand.feature_cache.astype(object).where(hand.feature_cache.notna(), "").astype(str)
                       .isin(["hit", "partial"]))
    keep = set(learned[KEY].itertuples(index=False, name=None))
    curves = curves.loc[pd.Series([tuple(k) in keep for k in curves[KEY].itertuples(index=False, name=None)],
                                  index=curves.index, dtype=bool)]
    out = []
    for (preset, device, machine), group in curves.groupby(["preset", "device", "device_name"]):
        same = hand[(hand.preset == preset) & ((hand.device_name == machine) if device == "cpu" else True)]
        if not same.empty:
            out.append({"preset": preset, "device": device, "machine": machine, "curves": group,
                        "hand": same.assign(seconds=[hand_seconds(r) for r in same.itertuples()])})
    return out


def reach_rows(pairs: list[dict]) -> list[dict]:
    """For each paired learned run (``pairs``: ``pairings``): the best
    hand-crafted pipeline (highest mean test accuracy), its mean time to test predictions, and when the run's
    curve reaches that mean accuracy for good."""
    out = []
    for pair in pairs:
        best = pair["hand"].groupby("pipeline").agg(acc=("test_accuracy", "mean"), seconds=("seconds", "mean"),
                                                    cached=("cached", "any"))
        top = best.acc.idxmax()
        target, target_seconds = float(best.acc[top]), float(best.seconds[top])
        for (pipeline, seed), run in pair["curves"].groupby(["pipeline", "seed"]):
            hit = time_to_reach(run.to_dict("records"), target)
            first = first_reach(run.to_dict("records"), target)
            clock = first.get("clock_seconds") if first else None
            clock = None if clock is None or pd.isna(clock) else float(clock)
            out.append({"learned": pipeline, "preset": pair["preset"], "device": pair["device"],
                        "machine": pair["machine"], "seed": int(seed), "handcrafted": top,
                        "handcrafted_accuracy": round(target, 4), "handcrafted_seconds": round(target_seconds, 1),
                        "handcrafted_cached": bool(best.cached[top]),
                        "learned_best_accuracy": float(run.test_accuracy.max()),
                        "reached": hit is not None,
                        "reached_after_seconds": hit["train_seconds"] if hit else None,
                        "reached_at_epoch": hit["epoch"] if hit else None,
                        "ratio": round(target_seconds / hit["train_seconds"], 2) if hit else None,
                        "first_reach_clock_seconds": clock,
                        "clock_ratio": round(target_seconds / clock, 2) if clock else None})
    return out


def time_to_accuracy_figures(pairs: list[dict], folder: Path) -> list[Path]:
    """One figure per pairing (``pairs`` as for ``reach_rows``) in ``folder``: its learned curves over its
    hand-crafted points."""
    paths = []
    for pair in pairs:
        slug = re.sub(r"[^a-z0-9]+", "-", str(pair["machine"]).lower()).strip("-")[:40]
        paths.append(time_to_accuracy(pair["curves"], pair["hand"], folder /
                                      f"time_to_accuracy_{pair['preset']}_{pair['device']}_{slug}.png",
                                      f"preset {pair['preset']}, {pair['machine']}"))
    return paths


def mlperf_summary(times: list[float | None]) -> dict:
    """MLPerf's way with seeds: from at least five runs, the fastest and the slowest are dropped and the rest
    averaged; a run that never reached the target is counted as such (and, as the slowest, dropped first)."""
    reached = sorted(t for t in times if t is not None)
    missed = len(times) - len(reached)
    out = {"runs": len(times), "reached": len(reached), "missed": missed, "mean": None, "kept": []}
    if len(times) < 5 or missed > 1:
        return out  # too few runs, or a miss beyond the one that would be dropped: no MLPerf figure
    kept = reached[1:] if missed else reached[1:-1]
    return {**out, "kept": kept, "mean": float(sum(kept) / len(kept)), "min": kept[0], "max": kept[-1]}
