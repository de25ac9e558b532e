"""Time to accuracy on the results table: which learned curves meet which hand-crafted rows (same preset, and on
a CPU the same CPU, timed alone, full data, not truncated), and when each learned run reaches the best
hand-crafted mean accuracy for good. Pure functions over rows and curves; read by the report and by
``bench/time_to_accuracy.py``."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..curves import hand_seconds, time_to_reach
from ..store import KEY
from .claims import comparable
from .plots import time_to_accuracy
from .tables import alone


def pairings(ok: pd.DataFrame, curves: pd.DataFrame) -> list[dict]:
    """What the time-to-accuracy comparison may pair: per preset, device and machine, the curves of the learned
    rows that may enter a verdict (full data, not truncated) and the hand-crafted rows of the same preset that
    may (for a CPU run, of the same CPU only, so that the times compare). ``cached`` marks hand-crafted rows that
    read their features from the cache: their time leaves out extraction, so it can only favour that side."""
    ok = alone(ok)  # times taken under concurrency are never ranked
    learned = comparable(ok[ok.family == "learned"])
    hand = comparable(ok[ok.family == "handcrafted"])
    hand = hand.assign(cached=hand.feature_cache.astype(object).where(hand.feature_cache.notna(), "").astype(str)
                       == "hit")
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
            out.append({"learned": pipeline, "preset": pair["preset"], "device": pair["device"],
                        "machine": pair["machine"], "seed": int(seed), "handcrafted": top,
                        "handcrafted_accuracy": round(target, 4), "handcrafted_seconds": round(target_seconds, 1),
                        "handcrafted_cached": bool(best.cached[top]),
                        "learned_best_accuracy": float(run.test_accuracy.max()),
                        "reached": hit is not None,
                        "reached_after_seconds": hit["train_seconds"] if hit else None,
                        "reached_at_epoch": hit["epoch"] if hit else None,
                        "ratio": round(target_seconds / hit["train_seconds"], 2) if hit else None})
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
