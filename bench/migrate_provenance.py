"""One-off: give the committed results the provenance today's code writes with every result, from the judgments
the code before it made (run once, then deleted; its commit says what it did).

    python bench/migrate_provenance.py /tmp/old_judgments.json

The judgments file came from the code at commit 9ea2c89 (``report.inputs.superseded``, ``experiments.stale``,
``tuning.drift``): no summary row set aside, no experiment file stale, one tuning file stale
(``cnn28-regularisation``). Where that code found a file current, its results get today's hashes; where it found
one stale, a hash of what its record says ran (so it stays stale).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pipelines import DATASETS, DEFAULT_DATASET, EXPERIMENTS, experiment, get  # noqa: E402
from pipelines.base import DeviceInfo, RunContext  # noqa: E402
from pipelines.datasets import open_dataset, open_folder  # noqa: E402
from pipelines.experiments import experiment_tunings  # noqa: E402
from pipelines.experiments.engine import ExperimentPlan, recipe_name  # noqa: E402
from pipelines.run import current_hash  # noqa: E402
from pipelines.store import (KEY, artifact_path, atomic_write_json, atomic_write_text, config_hash, experiment_path,
                             experiments_dir, read_summary, save_curve, summary_path, runs_path)  # noqa: E402
from pipelines.tuning import pipeline_tunings  # noqa: E402

RESULTS = ROOT / "results"
SPEED = ("eval_batch_size", "n_jobs")  # the two speed-only fields configs held until this change


def fingerprints() -> dict[str, str]:
    """Each dataset of the committed rows: its content's fingerprint, from today's loaders."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("colour_folder", ROOT / "bench" / "colour_folder.py")
    colour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(colour)
    out = {DEFAULT_DATASET: DATASETS[DEFAULT_DATASET].fingerprint,
           "digits": open_dataset(dataset="digits").fingerprint}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "colour-bars"
        colour.write(folder / "train", 2000, 1, 48)
        colour.write(folder / "test", 500, 2, 48)
        out["colour-bars"] = open_folder(folder).fingerprint
    assert open_dataset().fingerprint == out[DEFAULT_DATASET]
    return out


def migrate_rows(prints: dict[str, str]) -> None:
    frame = read_summary(summary_path(RESULTS))
    runs = [json.loads(line) for line in runs_path(RESULTS).read_text().splitlines() if line.strip()]
    writer = {}
    for i, r in enumerate(runs):
        row = r["row"]
        writer[(*(str(row.get(k) or DEFAULT_DATASET if k == "dataset" else row.get(k)) for k in KEY),
                row.get("started_at"))] = i
    for index, row in frame.iterrows():
        want = current_hash(row.pipeline, row.preset)
        budget = get(row.pipeline).config(row.preset)
        assert getattr(budget, "time_budget", None) in (None, row.time_budget_seconds), (row.pipeline, row.preset)
        frame.loc[index, ["config_hash", "data_fingerprint"]] = [want, prints[row.dataset]]
        i = writer[(*(str(row[k]) for k in KEY), row.started_at)]
        line = runs[i]
        source = str(line["config"].get("data_source", ""))
        assert row.dataset != DEFAULT_DATASET or "fashion-mnist" in source, source
        line["row"].update(config_hash=want, data_fingerprint=prints[row.dataset])
        pipeline = get(row.pipeline)
        line["config"]["pipeline_recorded"] = line["config"]["pipeline"]
        line["config"]["pipeline"] = pipeline.record(pipeline.config(row.preset))
        if line.get("curve"):
            save_curve(RESULTS, dataclasses.replace(_row(row), config_hash=want), line["curve"])
    atomic_write_text(summary_path(RESULTS), frame.to_csv(index=False))
    atomic_write_text(runs_path(RESULTS), "".join(json.dumps(r, default=str) + "\n" for r in runs))


def _row(row):
    from pipelines.store import ResultRow
    return ResultRow(**{k: row[k] for k in ("pipeline", "family", "preset", "dataset", "seed", "device")},
                     started_at=row.started_at)


def reconstructed(record: dict, settings: dict) -> dict:
    """What a stale file's record says ran: its preset record without the speed fields, ``settings`` replaced over
    it as the code of its day did (network arguments replaced, not merged)."""
    out = {k: v for k, v in record.items() if k not in SPEED}
    return {**out, **json.loads(json.dumps(settings, default=list))}


def migrate_tunings(judged: dict) -> None:
    for t in pipeline_tunings() + experiment_tunings():
        payload = json.loads(t.path.read_text())
        pipeline, configs = get(t.pipeline), {}
        for point, want in zip(payload["points"], t.hashes()):
            settings = {k: point[k] for k in t.grid}
            if judged[t.name][0]:  # stale then: a hash of what it recorded
                record = reconstructed(payload["presets"][t.pipeline], {**t.fixed, **settings, "n_test": None})
                point["config_hash"] = config_hash(record)
                configs[point["config_hash"]] = record
            else:
                cfg = t.config({k: _tuple(v) for k, v in settings.items()})
                assert pipeline.hash(cfg) == want
                point["config_hash"], configs[want] = want, pipeline.record(cfg)
        payload["configs"] = configs
        payload["validation"]["data_fingerprint"] = DATASETS[DEFAULT_DATASET].fingerprint
        payload["presets_recorded"] = payload.pop("presets")
        atomic_write_json(t.path, payload)


def _tuple(value):
    """A grid value read back from JSON (lists) as the code gives it (tuples of pairs)."""
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    return value


def migrate_experiments(judged: dict, prints: dict[str, str]) -> None:
    folder = experiments_dir(RESULTS, DEFAULT_DATASET)
    for old in sorted(folder.glob("*.json")):
        if old.stem.count("."):
            continue
        exp = json.loads(old.read_text())
        assert not judged[f"{DEFAULT_DATASET}/{exp['experiment']}"]  # none was stale
        e, size = experiment(exp["experiment"]), exp["size"]
        ctx = RunContext(preset=size, seed=0, device=DeviceInfo(exp["device"], exp["device_name"]),
                         results_dir=RESULTS, compile=bool(exp.get("compile")), time_budget=exp.get("time_budget"))
        plan = ExperimentPlan(e.name, size, ctx, (None, 0), [], exp["started_at"], prints[DEFAULT_DATASET])
        arms = e.arms(e.sizes[size], tuple(exp["seeds"]), recipe_name(size))
        configs = {}
        for row in (r for r in exp["rows"] if r.get("task")):
            task = match(row, arms)
            cfg = task.config(recipe_name(size), exp.get("time_budget"))
            h = get(task.pipeline).hash(cfg)
            configs[h] = get(task.pipeline).record(cfg)
            row.update(config_hash=h, arm_identity=task.identity(), task=plan.key(task))
        exp.update(data_fingerprint=prints[DEFAULT_DATASET], configs=configs, kept=0)
        exp["presets_recorded"] = exp.pop("presets", None)
        exp.pop("tunings", None)
        atomic_write_json(experiment_path(RESULTS, DEFAULT_DATASET, e.name, size), exp)
        old.unlink()


def match(row: dict, arms: list):
    """Today's arm a stored row ran: the same pipeline, seed, labels and training size."""
    found = [a for a in arms if a.pipeline == row["pipeline"] and a.seed == row["seed"]
             and all(row.get(k) == v for k, v in a.meta.items())
             and (a.n_train is None or min(a.n_train, 50_000) == row["n_train"])]
    assert len(found) == 1, (row.get("arm"), row.get("pipeline"), row.get("seed"), len(found))
    return found[0]


def main() -> int:
    judged = json.loads(Path(sys.argv[1]).read_text())
    prints = fingerprints()
    print("fingerprints:", prints)
    migrate_rows(prints)
    migrate_tunings(judged["tuning_drift"])
    migrate_experiments(judged["stale_experiments"], prints)
    return 0


if __name__ == "__main__":
    sys.exit(main())
