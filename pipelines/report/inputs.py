"""What the report reads: ``summary.csv``, ``runs.jsonl`` (malformed lines skipped and counted) and the
experiment files (a file that cannot be read is noted, and costs only its own section)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..curves import CURVE_FIELDS
from ..results import KEY, read_summary


@dataclass
class Inputs:
    results_dir: Path
    summary: pd.DataFrame
    runs: list[dict]
    experiments: dict[str, dict]
    problems: list[str] = field(default_factory=list)  # one line per input that could not be read

    @property
    def ok(self) -> pd.DataFrame:
        return self.summary[self.summary.status == "ok"]

    def curves(self) -> pd.DataFrame:
        """Time-to-accuracy points of the runs behind the ok rows of ``summary.csv`` (the latest run of each key,
        kept only if it is the run that wrote the row): the key, then ``CURVE_FIELDS``, one line per epoch."""
        latest = {}
        for run in self.runs:
            row = run.get("row") if isinstance(run, dict) else None
            if isinstance(row, dict) and run.get("curve"):
                latest[tuple(row.get(k) for k in KEY)] = (row.get("started_at"), run["curve"])
        out = []
        for r in self.ok.itertuples():
            started, curve = latest.get(tuple(getattr(r, k) for k in KEY), (None, None))
            if curve and started == r.started_at:
                out += [{**{k: getattr(r, k) for k in KEY}, "device_name": r.device_name,
                         **{f: p.get(f) for f in CURVE_FIELDS}} for p in curve]
        return pd.DataFrame(out, columns=[*KEY, "device_name", *CURVE_FIELDS])

    @property
    def figures(self) -> Path:
        return self.results_dir / "figures"


def read_runs(path: Path, problems: list[str]) -> list[dict]:
    runs, bad = [], 0
    if not path.exists():
        return runs
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            runs.append(json.loads(line))
        except ValueError:
            bad += 1
    if bad:
        problems.append(f"{path}: {bad} malformed line(s) skipped")
    return runs


def read_experiments(folder: Path, problems: list[str]) -> dict[str, dict]:
    out = {}
    for path in sorted(folder.glob("*.json")):
        try:
            payload = json.loads(path.read_text())
            out[payload["experiment"]] = payload
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: unreadable ({type(exc).__name__})")
    return out


def load_inputs(results_dir: Path) -> Inputs:
    problems: list[str] = []
    runs = read_runs(results_dir / "runs.jsonl", problems)
    experiments = read_experiments(results_dir / "experiments", problems)
    return Inputs(results_dir, read_summary(results_dir / "summary.csv"), runs, experiments, problems)
