"""The one owner of the results folder: every path in it, the row schema, ``config_hash``, and the reading and
writing of ``summary.csv``, ``runs.jsonl``, experiment and tuning files, predictions and filters.

Provenance is written with each result, never reconstructed: a row, a run line, a checkpoint, an experiment arm
and a tuning point each carry the ``config_hash`` of the configuration that made it and the ``data_fingerprint``
of the data it ran on, so "resume", "set aside" and "stale" are each one comparison of hashes.

``summary.csv`` is rewritten atomically (temp file in the same folder, then ``os.replace``), so a kill at any
moment leaves a parseable file holding every earlier row; ``runs.jsonl`` is append-only; every other file is
written through a temp file and a rename. Writers of a shared file hold its lock (``locked``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from . import DEFAULT_DATASET, PRESETS, PROJECT_ROOT

KEY = ["dataset", "pipeline", "preset", "device", "seed"]  # one row of summary.csv, one set of artifacts


def col(doc: str, default=None, required: bool = False):
    """A ``ResultRow`` column: its one-line meaning (docs/results.md is checked against it) and its default."""
    return field(metadata={"doc": doc}) if required else field(default=default, metadata={"doc": doc})


@dataclass
class ResultRow:
    """One run of one pipeline: the schema of ``summary.csv`` (field order is column order) and of the ``row`` of
    a ``runs.jsonl`` line. Declared once, here; ``column_docs`` gives each column's meaning."""
    pipeline: str = col("registry name (`python runner.py --list`)", required=True)
    family: str = col("`handcrafted` or `learned`, from the registry", required=True)
    preset: str = col("`smoke`, `cpu` or `paper`", required=True)
    dataset: str = col("the data's name (`--dataset`, the folder's name, or `--dataset-name`)", required=True)
    seed: int = col("the one seed given to numpy, torch and every `random_state`", required=True)
    device: str = col("`cpu` or `cuda`: where it ran (hand-crafted pipelines always on the CPU)", required=True)
    device_name: str = col("the CPU model with its cores, or the GPU's name", "")
    status: str = col("`ok`, `diverged` (NaN loss: scored as chance) or `failed`", "ok")
    error: str = col("one line, for a failed or diverged run", "")
    n_train: int | None = col("training images used")
    n_test: int | None = col("test images scored")
    image_size: int | None = col("side of the images the model saw (224 for AlexNet)")
    epochs: float | None = col("passes over the training images (learned; fractional when a budget stopped it)")
    test_accuracy: float | None = col("accuracy on the test images scored")
    train_accuracy: float | None = col("accuracy in eval mode on at most 10,000 training images")
    feature_seconds: float | None = col("hand-crafted: feature extraction, training and test images")
    fit_seconds: float | None = col("classifier fit, or network training (checkpoints and scoring left out)")
    predict_seconds: float | None = col("predicting the test images")
    total_seconds: float | None = col("wall time of the whole run, bookkeeping included")
    train_images_per_second: float | None = col("learned: training throughput after the first epoch")
    params: int | None = col("learned: parameters of the network")
    precision: str = col("learned: `fp32` or `bf16-autocast`", "")
    compiled: bool | None = col("learned: whether `torch.compile` ran")
    compile_seconds: float | None = col("learned: torch.compile's compilation, outside fit_seconds")
    precision_probe_seconds: float | None = col("learned: timing fp32 against bf16 before training (`--precision "
                                                "auto` on a CPU), outside fit_seconds")
    images_seen: int | None = col("learned: training images seen in all")
    time_budget_seconds: float | None = col("learned: the training-time budget it ran under, if any")
    truncated: bool | None = col("learned: a time budget stopped training before its planned epochs")
    full_data: bool | None = col("trained on every training image and scored on every test image")
    encode_seconds: float | None = col("hand-crafted: fitting PCA / k-means / GMM and encoding")
    feature_dim: int | None = col("hand-crafted: length of the vector the classifier sees")
    codebook_size: int | None = col("SIFT pipelines: visual words or GMM components")
    classifier: str = col("hand-crafted: the classifier and its settings", "")
    feature_cache: str = col("hand-crafted: `hit` when the features came from the cache (extraction not timed), "
                             "`partial` when some of them did (a fused vector's shared part), `miss` otherwise", "")
    notes: str = col("learned: epochs complete, budget, the full recipe's estimated time", "")
    host: str = col("the machine it ran on")
    concurrency: int | None = col("the most tasks of this suite running on the host at once while it ran (1: alone)")
    config_hash: str = col("hash of its effective configuration (`store.config_hash`); its record is in runs.jsonl", "")
    data_fingerprint: str = col("hash of the data's images and labels (`Dataset.fingerprint`)", "")
    started_at: str = col("UTC start time", "")
    git_commit: str = col("the code's commit", "")
    git_dirty: bool | None = col("the code (anything outside results/) differed from that commit")
    python_version: str = col("Python", "")
    torch_version: str = col("PyTorch", "")
    sklearn_version: str = col("scikit-learn", "")
    opencv_version: str = col("OpenCV", "")


COLUMNS = [f.name for f in dataclasses.fields(ResultRow)]


def column_docs() -> list[tuple[str, str]]:
    """(column, meaning) of every ``summary.csv`` column, in order."""
    return [(f.name, f.metadata["doc"]) for f in dataclasses.fields(ResultRow)]


def as_json(value):
    """``value`` as it reads back from a JSON file (tuples become lists, other objects their ``str``)."""
    return json.loads(json.dumps(value, default=str))


def config_hash(record: dict) -> str:
    """The hash of a configuration record (JSON data: a pipeline's effective configuration, its network's
    fingerprint where it trains one): equal records, equal hashes, whatever the key order."""
    text = json.dumps(record, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def key_of(row) -> dict:
    """The ``KEY`` fields of a row (a ``ResultRow``, a mapping or a named tuple)."""
    get = row.get if hasattr(row, "get") else lambda k: getattr(row, k)
    return {k: get(k) for k in KEY}


def _dist_version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return ""


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def provenance() -> dict:
    """Versions, the git commit and whether the code differed from it (``git_dirty``; changes under
    ``results/``, which runs themselves write, do not count), read without importing the heavy libraries."""
    commit = (_git("rev-parse", "--short", "HEAD") or "").strip()
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results")
    return {
        "git_commit": commit,
        "git_dirty": None if status is None or not commit else bool(status.strip()),
        "python_version": sys.version.split()[0],
        "torch_version": _dist_version("torch"),
        "sklearn_version": _dist_version("scikit-learn"),
        "opencv_version": _dist_version("opencv-contrib-python-headless", "opencv-contrib-python",
                                        "opencv-python-headless", "opencv-python"),
    }


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual mode of a new file
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload) -> None:
    """``atomic_write_text`` of ``payload`` as indented JSON (numpy numbers as numbers)."""
    atomic_write_text(path, json.dumps(payload, indent=1, default=_json_default))


def _json_default(value):
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.floating):
        return float(value)
    return str(value)


# --- paths: every file under the results folder ----------------------------------------------------------------

TUNING_DIR = PROJECT_ROOT / "results" / "tuning"  # committed with the code: the suite's chosen settings


def dataset_dir(results_dir: Path, dataset: str) -> Path:
    """Where one dataset's files live (its report, figures, experiments, predictions, filters, checkpoints):
    the results folder itself for the default dataset, ``datasets/<name>/`` inside it for every other."""
    return Path(results_dir) if dataset == DEFAULT_DATASET else Path(results_dir) / "datasets" / str(dataset)


def summary_path(results_dir: Path) -> Path:
    return Path(results_dir) / "summary.csv"


def runs_path(results_dir: Path) -> Path:
    return Path(results_dir) / "runs.jsonl"


def cache_dir(results_dir: Path) -> Path:
    """The hand-crafted features' cache (joblib pickles: trusted local state, never shared or committed)."""
    return Path(results_dir) / "cache"


def report_path(results_dir: Path, dataset: str) -> Path:
    return dataset_dir(results_dir, dataset) / "report.md"


def figures_dir(results_dir: Path, dataset: str) -> Path:
    return dataset_dir(results_dir, dataset) / "figures"


def filters_figure(results_dir: Path, dataset: str, pipeline: str) -> Path:
    """A learned pipeline's drawing of its first-layer filters."""
    return figures_dir(results_dir, dataset) / f"{pipeline}_conv1.png"


def checkpoint_path(results_dir: Path, key: dict) -> Path:
    """A learned run's checkpoint, one per row key."""
    return (dataset_dir(results_dir, key["dataset"]) / "checkpoints" / key["pipeline"]
            / f"{key['preset']}-{key['device']}-seed{int(key['seed'])}.pt")


def experiments_dir(results_dir: Path, dataset: str) -> Path:
    return dataset_dir(results_dir, dataset) / "experiments"


def experiment_path(results_dir: Path, dataset: str, name: str, size: str) -> Path:
    """One experiment at one size: each size its own file, so a smaller run never replaces a larger one."""
    return experiments_dir(results_dir, dataset) / f"{name}.{size}.json"


def partial_path(results_dir: Path, dataset: str, name: str, size: str) -> Path:
    """Arm rows as they finish (``--resume`` reads them); removed once the experiment's file is written."""
    return experiments_dir(results_dir, dataset) / f"{name}.{size}.partial.jsonl"


def tuning_path(name: str) -> Path:
    return TUNING_DIR / f"{name}.json"


ARTIFACT_SUFFIX = {"predictions": ".npz", "filters": ".npy", "filters_start": ".npy", "curves": ".json"}


def artifact_path(results_dir: Path, kind: str, key: dict) -> Path:
    """The one naming of per-row artifacts (``kind``: ``predictions``, a learned run's ``filters`` as they end and
    ``filters_start`` as its seed drew them, or its ``curves``):
    ``<dataset_dir>/<kind>/<pipeline>-<preset>-<device>-seed<seed>``."""
    name = f"{key['pipeline']}-{key['preset']}-{key['device']}-seed{int(key['seed'])}{ARTIFACT_SUFFIX[kind]}"
    return dataset_dir(results_dir, key["dataset"]) / kind / name


# --- summary.csv and runs.jsonl ---------------------------------------------------------------------------------

class ResultsError(Exception):
    """A results file that cannot be used as it is; one-line message naming the file and the fault."""


def read_summary(path: Path) -> pd.DataFrame:
    """``summary.csv`` as a frame, checked: it parses, holds the key columns and ``status``, and every seed is
    an integer. Anything else is a ``ResultsError`` (the file is never rewritten to "repair" it)."""
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise ResultsError(f"{path}: the file is empty (not even a header); move it away to start a new one") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise ResultsError(f"{path}: unreadable ({' '.join(str(exc).split())[:200]})") from None
    if "dataset" not in frame.columns or frame.dataset.isna().any():  # written before the dataset was in the key
        frame["dataset"] = frame.get("dataset", pd.Series(index=frame.index, dtype=object)).fillna(DEFAULT_DATASET)
    missing = [c for c in KEY + ["status"] if c not in frame.columns]
    if missing:
        raise ResultsError(f"{path}: missing column(s) {', '.join(missing)}; restore the file or move it away")
    seeds = pd.to_numeric(frame.seed, errors="coerce")
    if seeds.isna().any() or (seeds % 1 != 0).any():
        line = int(seeds.isna().idxmax() if seeds.isna().any() else (seeds % 1 != 0).idxmax()) + 2
        raise ResultsError(f"{path}: line {line}: the seed is blank or not an integer")
    absent = [c for c in COLUMNS if c not in frame.columns]  # written before a column existed: read as blank
    frame = pd.concat([frame, pd.DataFrame(np.nan, index=frame.index, columns=absent, dtype=object)], axis=1)
    return frame.assign(seed=seeds.astype(int))


def locked(path: Path) -> FileLock:
    """The lock every writer of ``path`` holds while it reads and rewrites (or appends to) it, so that processes
    writing at once lose no row: a hidden ``.<name>.lock`` beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path.with_name(f".{path.name}.lock"))


def upsert(path: Path, row: ResultRow) -> pd.DataFrame:
    """Replace the row with the same key (or add it) and rewrite ``path`` atomically, under ``locked(path)``."""
    with locked(path):
        return _upsert(path, row)


def _upsert(path: Path, row: ResultRow) -> pd.DataFrame:
    frame = read_summary(path)
    new = pd.DataFrame([dataclasses.asdict(row)], columns=COLUMNS)
    if len(frame):
        same = (frame[KEY].astype(str) == new[KEY].astype(str).iloc[0]).all(axis=1)
        frame = frame[~same]
    extra = [c for c in frame.columns if c not in COLUMNS]
    frame = pd.concat([frame.astype(object), new.astype(object)], ignore_index=True)
    frame = frame[COLUMNS + extra]
    atomic_write_text(path, frame.to_csv(index=False))
    return frame


def append_run(path: Path, row: ResultRow, config: dict, curve: list[dict] | None = None) -> None:
    """Append one JSON line with the row, the full effective configuration and, for a learned pipeline, its
    time-to-accuracy curve (``Outcome.curve``), under ``locked(path)``."""
    record = {"row": dataclasses.asdict(row), "config": config, **({"curve": curve} if curve else {})}
    with locked(path), open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell():  # a kill during an earlier append can leave a partial last line: never glue onto it
            fh.seek(-1, os.SEEK_END)
            lead = b"" if fh.read(1) == b"\n" else b"\n"
        else:
            lead = b""
        fh.write(lead + (json.dumps(record, default=str) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())


def read_runs(path: Path, problems: list[str]) -> list[dict]:
    """Every line of ``runs.jsonl`` that parses; malformed ones are skipped and counted in ``problems``."""
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


def recorded_configs(runs: list[dict]) -> dict[str, dict]:
    """config_hash -> the configuration record a run line wrote with it (what "set aside" names the fields of)."""
    return {r["row"]["config_hash"]: r["config"]["pipeline"] for r in runs
            if isinstance(r.get("row"), dict) and r["row"].get("config_hash") and isinstance(r.get("config"), dict)
            and isinstance(r["config"].get("pipeline"), dict)}


# --- experiment files ---------------------------------------------------------------------------------------------

def size_rank(size: str) -> int:
    """Smoke < cpu < paper; an unknown size ranks below them all."""
    return PRESETS.index(size) if size in PRESETS else -1


def read_experiments(folder: Path, problems: list[str]) -> dict[str, dict]:
    """experiment name -> its file at the largest size present in ``folder`` (a file that cannot be read is noted in
    ``problems`` and costs only itself)."""
    found: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            payload = json.loads(path.read_text())
            name, size = payload["experiment"], payload.get("size", "")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: unreadable ({type(exc).__name__})")
            continue
        if name not in found or size_rank(size) > size_rank(found[name].get("size", "")):
            found[name] = payload
    return found


def read_json(path: Path) -> dict | None:
    """A JSON file's object, or None when it is missing or unreadable."""
    try:
        payload = json.loads(Path(path).read_text())
        return payload if isinstance(payload, dict) else None
    except (OSError, ValueError):
        return None


# --- per-row artifacts --------------------------------------------------------------------------------------------

def save_predictions(results_dir: Path, row: ResultRow, y_true, y_pred) -> Path:
    """Keep test labels and predictions (for confusion matrices), atomically, one file per row key."""
    import numpy as np
    path = artifact_path(results_dir, "predictions", key_of(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, y_true=np.asarray(y_true), y_pred=np.asarray(y_pred))
    os.replace(tmp, path)
    return path


def save_curve(results_dir: Path, row: ResultRow, curve: list[dict]) -> Path:
    """Keep a learned row's time-to-accuracy curve (``curves.CURVE_FIELDS`` per epoch) beside it, atomically."""
    path = artifact_path(results_dir, "curves", key_of(row))
    atomic_write_json(path, {"config_hash": row.config_hash, "started_at": row.started_at, "curve": curve})
    return path


# A learned run's curve, one point per complete epoch: the training seconds so far (scoring left out), the test
# accuracy, and MLPerf's clock (from the first touch of the data to the end of that evaluation, all of it in).
CURVE_FIELDS = ("epoch", "train_seconds", "test_accuracy", "clock_seconds")


def read_curves(results_dir: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The stored curves of ``rows`` (each row's own: its artifact records the row's ``started_at``): the key, the
    device name, then ``CURVE_FIELDS``, one line per epoch."""
    out = []
    for _, r in rows.iterrows():
        stored = read_json(artifact_path(results_dir, "curves", key_of(r)))
        if stored and stored.get("started_at") == r.started_at:
            out += [{**{k: r[k] for k in KEY}, "device_name": r.device_name, **{f: p.get(f) for f in CURVE_FIELDS}}
                    for p in stored.get("curve", [])]
    return pd.DataFrame(out, columns=[*KEY, "device_name", *CURVE_FIELDS])


def save_array(path: Path, array) -> Path:
    """``np.save`` through a temp file and a rename."""
    import numpy as np
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return path
