"""What one dataset's report reads: its rows of ``summary.csv``, ``runs.jsonl`` (malformed lines skipped and
counted), its experiment files (the largest size of each; a file that cannot be read is noted and costs only its
own section), the rows' curves, and the stored validation scores. A row whose recorded ``config_hash`` is not
today's hash of its pipeline's preset is set aside (``set_aside``): no table, figure or verdict mixes it with the
preset's other seeds. The report only reads: it never trains and never runs a pipeline."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import DEFAULT_DATASET, PIPELINES, PROJECT_ROOT, get
from ..run import SCORED, current_hash
from ..store import (dataset_dir, experiments_dir, figures_dir, read_curves, read_experiments, read_runs, read_summary,
                     recorded_configs, runs_path, summary_path)
from ..tuning import validation_scores


@dataclass
class Inputs:
    results_dir: Path
    summary: pd.DataFrame
    runs: list[dict]
    experiments: dict[str, dict]
    problems: list[str] = field(default_factory=list)  # one line per input that could not be read
    dataset: str = DEFAULT_DATASET
    set_aside: dict = field(default_factory=dict)  # summary index -> why (``set_aside``)
    validation: dict = field(default_factory=dict)  # pipeline -> stored validation accuracy at its chosen setting

    @property
    def ok(self) -> pd.DataFrame:
        """The rows that ran to the end with today's configuration of their preset."""
        return self.summary[(self.summary.status == "ok") & ~self.summary.index.isin(list(self.set_aside))]

    @property
    def scored(self) -> pd.DataFrame:
        """``ok`` and the diverged rows (scored as chance, PROTOCOL.md section 3): what verdicts read."""
        return self.summary[self.summary.status.isin(SCORED) & ~self.summary.index.isin(list(self.set_aside))]

    def curves(self) -> pd.DataFrame:
        """Time-to-accuracy points of the ok rows (``store.read_curves``: each row's own curve)."""
        return read_curves(self.results_dir, self.ok)

    @property
    def folder(self) -> Path:
        """Where this dataset's report and figures go (``store.dataset_dir``)."""
        return dataset_dir(self.results_dir, self.dataset)

    @property
    def figures(self) -> Path:
        return figures_dir(self.results_dir, self.dataset)

    @property
    def protocol_link(self) -> str:
        """PROTOCOL.md as a link from this dataset's report."""
        return relative(PROJECT_ROOT / "PROTOCOL.md", self.folder)


def set_aside(summary: pd.DataFrame, runs: list[dict]) -> dict:
    """summary index -> why, for each scored row whose ``config_hash`` is not today's hash of its pipeline's preset
    (the one comparison), naming the fields that differ from the record its run line stored under that hash."""
    records, out = recorded_configs(runs), {}
    for index, row in summary[summary.status.isin(SCORED)].iterrows():
        if row.pipeline not in PIPELINES:
            continue
        want = current_hash(row.pipeline, str(row.preset))
        have = "" if pd.isna(row.config_hash) else str(row.config_hash)
        if want is None:
            out[index] = f"preset {row.preset} no longer exists"
        elif have != want:
            out[index] = differs(row, records.get(have)) if have else "no configuration recorded with it"
    return out


def differs(row, stored: dict | None) -> str:
    """What changed between a row's recorded configuration and today's preset of its name."""
    pipeline = get(row.pipeline)
    now = pipeline.record(pipeline.config(str(row.preset)))
    if stored is None:
        return "another configuration (its record is not in runs.jsonl)"
    changed = sorted(k for k in {*stored, *now} if stored.get(k) != now.get(k))
    return ", ".join(f"{k} {short(stored, k)} → {short(now, k)}" for k in changed) or "another configuration"


def short(record: dict, name: str) -> str:
    """A recorded setting as the report prints it ("absent" where the record lacks it)."""
    if name not in record:
        return "absent"
    value = record[name]
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


def relative(target: Path, start: Path) -> str:
    """``target`` as a relative link from the folder ``start``."""
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())


def load_inputs(results_dir: Path, dataset: str = DEFAULT_DATASET) -> Inputs:
    """The inputs of ``dataset``'s report (runs written before rows named their dataset count as the default)."""
    problems: list[str] = []
    runs = [r for r in read_runs(runs_path(results_dir), problems) if run_dataset(r) in (dataset, None)]
    experiments = {name: exp for name, exp in read_experiments(experiments_dir(results_dir, dataset), problems).items()
                   if exp.get("dataset", dataset) == dataset}
    summary = read_summary(summary_path(results_dir))
    summary = summary[summary.dataset == dataset]
    return Inputs(results_dir, summary, runs, experiments, problems, dataset, set_aside(summary, runs),
                  validation_scores())


def run_dataset(run) -> str | None:
    """The dataset a ``runs.jsonl`` record names (the default where its row names none); None if malformed."""
    row = run.get("row") if isinstance(run, dict) else None
    return (row.get("dataset") or DEFAULT_DATASET) if isinstance(row, dict) else None


def datasets_in(results_dir: Path) -> list[str]:
    """The default dataset, then every other that has rows in ``summary.csv`` or a folder of its own."""
    names = set(read_summary(summary_path(results_dir)).dataset.astype(str))
    names |= {p.name for p in (Path(results_dir) / "datasets").glob("*") if p.is_dir()}
    return [DEFAULT_DATASET, *sorted(names - {DEFAULT_DATASET})]
