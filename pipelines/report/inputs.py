"""What one dataset's report reads: its rows of ``summary.csv`` and ``runs.jsonl`` (malformed lines skipped and
counted) and its experiment files (a file that cannot be read is noted, and costs only its own section)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..curves import CURVE_FIELDS
from ..data import DEFAULT_DATASET, PROJECT_ROOT
from ..results import KEY, dataset_dir, read_summary


@dataclass
class Inputs:
    results_dir: Path
    summary: pd.DataFrame
    runs: list[dict]
    experiments: dict[str, dict]
    problems: list[str] = field(default_factory=list)  # one line per input that could not be read
    dataset: str = DEFAULT_DATASET

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
    def folder(self) -> Path:
        """Where this dataset's report and figures go (``results.dataset_dir``)."""
        return dataset_dir(self.results_dir, self.dataset)

    @property
    def figures(self) -> Path:
        return self.folder / "figures"

    @property
    def protocol_link(self) -> str:
        """PROTOCOL.md as a link from this dataset's report."""
        return relative(PROJECT_ROOT / "PROTOCOL.md", self.folder)


def relative(target: Path, start: Path) -> str:
    """``target`` as a relative link from the folder ``start``."""
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())


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


def load_inputs(results_dir: Path, dataset: str = DEFAULT_DATASET) -> Inputs:
    """The inputs of ``dataset``'s report (runs written before rows named their dataset count as the default)."""
    problems: list[str] = []
    runs = [r for r in read_runs(results_dir / "runs.jsonl", problems) if run_dataset(r) in (dataset, None)]
    experiments = {name: exp for name, exp in
                   read_experiments(dataset_dir(results_dir, dataset) / "experiments", problems).items()
                   if exp.get("dataset", dataset) == dataset}
    summary = read_summary(results_dir / "summary.csv")
    return Inputs(results_dir, summary[summary.dataset == dataset], runs, experiments, problems, dataset)


def run_dataset(run) -> str | None:
    """The dataset a ``runs.jsonl`` record names (the default where its row names none); None if malformed."""
    row = run.get("row") if isinstance(run, dict) else None
    return (row.get("dataset") or DEFAULT_DATASET) if isinstance(row, dict) else None


def datasets_in(results_dir: Path) -> list[str]:
    """The default dataset, then every other that has rows in ``summary.csv`` or a folder of its own."""
    names = set(read_summary(results_dir / "summary.csv").dataset.astype(str))
    names |= {p.name for p in (results_dir / "datasets").glob("*") if p.is_dir()}
    return [DEFAULT_DATASET, *sorted(names - {DEFAULT_DATASET})]
