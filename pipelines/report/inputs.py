"""What one dataset's report reads: its rows of ``summary.csv`` and ``runs.jsonl`` (malformed lines skipped and
counted) and its experiment files (a file that cannot be read is noted, and costs only its own section). A row
whose run recorded another configuration than today's preset of its name is set aside (``Inputs.superseded``):
no table, figure or verdict mixes it with the preset's other seeds."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..curves import CURVE_FIELDS
from ..data import DEFAULT_DATASET, PROJECT_ROOT
from .. import REGISTRY
from ..grid import DIVERGED
from ..results import KEY, dataset_dir, read_summary


SCORED = ("ok", DIVERGED)  # the statuses of rows that carry a test accuracy (a diverged run: chance)


@dataclass
class Inputs:
    results_dir: Path
    summary: pd.DataFrame
    runs: list[dict]
    experiments: dict[str, dict]
    problems: list[str] = field(default_factory=list)  # one line per input that could not be read
    dataset: str = DEFAULT_DATASET
    superseded: dict = field(default_factory=dict)  # summary index -> what changed (``superseded``)

    validation: dict = field(default_factory=dict)  # pipeline -> stored validation accuracy at its chosen setting

    @property
    def ok(self) -> pd.DataFrame:
        """The rows that ran to the end with today's configuration of their preset (or one no run recorded)."""
        return self.summary[(self.summary.status == "ok") & ~self.summary.index.isin(list(self.superseded))]

    @property
    def scored(self) -> pd.DataFrame:
        """``ok`` and the diverged rows (scored as chance, PROTOCOL.md section 3): what verdicts read."""
        return self.summary[self.summary.status.isin(SCORED) & ~self.summary.index.isin(list(self.superseded))]

    def curves(self) -> pd.DataFrame:
        """Time-to-accuracy points of the runs behind the ok rows of ``summary.csv`` (``writers``): the key, then
        ``CURVE_FIELDS``, one line per epoch."""
        out, written_by = [], writers(self.ok, self.runs)
        for r in self.ok.itertuples():
            curve = written_by.get(r.Index, {}).get("curve")
            if curve:
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


def writers(summary: pd.DataFrame, runs: list[dict]) -> dict:
    """summary index -> the ``runs.jsonl`` record that wrote the row: the run of its key that started when it
    did (a run line that names no dataset ran on the default one)."""
    by_start = {}
    for run in runs:
        row = run.get("row") if isinstance(run, dict) else None
        if isinstance(row, dict):
            key = {**row, "dataset": row.get("dataset") or DEFAULT_DATASET}
            by_start[(*(key.get(k) for k in KEY), row.get("started_at"))] = run
    out = {}
    for r in summary.itertuples():
        run = by_start.get((*(getattr(r, k) for k in KEY), r.started_at))
        if run is not None:
            out[r.Index] = run
    return out


def superseded(summary: pd.DataFrame, runs: list[dict]) -> dict:
    """summary index -> what changed, for each row whose run recorded a configuration other than today's of
    its pipeline's preset (``tuning.changed_fields``, with the time budget it really ran under; the network's
    fingerprint only where the run recorded one), or a preset that no longer exists. Rows no run recorded a
    configuration for, and pipelines not registered or that cannot be loaded here, are kept as they are."""
    from ..tuning import changed_fields, config_record
    out = {}
    for index, run in writers(summary, runs).items():
        config = run.get("config") if isinstance(run.get("config"), dict) else {}
        stored, name, preset = config.get("pipeline"), run["row"].get("pipeline"), run["row"].get("preset")
        if not isinstance(stored, dict) or name not in REGISTRY:
            continue
        try:
            pipeline = REGISTRY[name].load()
        except Exception:  # a library missing here: the row cannot be checked, and is kept
            continue
        if preset not in pipeline.presets:
            out[index] = f"preset {preset} no longer exists"
            continue
        now = config_record(pipeline.config(preset))
        if config.get("time_budget") is not None and "time_budget" in stored:  # --time-budget overrides the preset's
            stored = {**stored, "time_budget": config["time_budget"]}
        changed = changed_fields(name, stored, now, () if "model_source" in stored else ("model_source",))
        if changed:
            out[index] = ", ".join(f"{k} {short(stored, k)} → {short(now, k)}" for k in changed)
    return out


def ok_rows(results_dir: Path, pipelines, dataset: str, preset: str) -> dict[tuple, str]:
    """For each ok row of ``summary.csv`` of these pipelines, dataset and preset: its ``KEY`` values as strings
    -> "" if it was made with today's configuration of its preset, else what changed (``superseded``): what
    ``--resume`` may keep."""
    summary = read_summary(results_dir / "summary.csv")
    ok = summary[summary.status.isin(SCORED) & summary.pipeline.isin(list(pipelines)) & (summary.dataset == dataset)
                 & (summary.preset.astype(str) == preset)]
    changed = superseded(ok, read_runs(results_dir / "runs.jsonl", [])) if len(ok) else {}
    return {tuple(str(getattr(r, k)) for k in KEY): changed.get(r.Index, "") for r in ok.itertuples()}


def validation_scores() -> dict[str, float]:
    """pipeline -> the validation accuracy its stored main grid (``results/tuning/<pipeline>.json``) gave its chosen
    setting; pipelines without one (the chapter's recipes) are absent."""
    from ..tuning import stored_choice_score
    return {name: score for name in REGISTRY if (score := stored_choice_score(name)) is not None}


def short(record: dict, name: str) -> str:
    """A recorded setting as the report prints it ("absent" where the record lacks it)."""
    if name not in record:
        return "absent"
    value = record[name]
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


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
    summary = summary[summary.dataset == dataset]
    return Inputs(results_dir, summary, runs, experiments, problems, dataset,
                  superseded(summary[summary.status.isin(SCORED)], runs), validation_scores())


def run_dataset(run) -> str | None:
    """The dataset a ``runs.jsonl`` record names (the default where its row names none); None if malformed."""
    row = run.get("row") if isinstance(run, dict) else None
    return (row.get("dataset") or DEFAULT_DATASET) if isinstance(row, dict) else None


def datasets_in(results_dir: Path) -> list[str]:
    """The default dataset, then every other that has rows in ``summary.csv`` or a folder of its own."""
    names = set(read_summary(results_dir / "summary.csv").dataset.astype(str))
    names |= {p.name for p in (results_dir / "datasets").glob("*") if p.is_dir()}
    return [DEFAULT_DATASET, *sorted(names - {DEFAULT_DATASET})]
