"""Result rows: one per (pipeline, preset, device, seed) in ``summary.csv``, full history in ``runs.jsonl``.

``summary.csv`` is rewritten atomically (temp file in the same folder, then ``os.replace``), so a kill at
any moment leaves a parseable file holding every earlier row. ``runs.jsonl`` is append-only.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from .data import DEFAULT_DATASET

KEY = ["dataset", "pipeline", "preset", "device", "seed"]  # one row of summary.csv, one set of artifacts


@dataclass
class ResultRow:
    """One run of one pipeline. Field order is the CSV column order (documented in the README)."""
    pipeline: str
    family: str
    preset: str
    dataset: str
    seed: int
    device: str
    device_name: str = ""
    status: str = "ok"
    error: str = ""
    n_train: int | None = None
    n_test: int | None = None
    image_size: int | None = None
    epochs: float | None = None
    test_accuracy: float | None = None
    train_accuracy: float | None = None
    feature_seconds: float | None = None
    fit_seconds: float | None = None
    predict_seconds: float | None = None
    total_seconds: float | None = None
    train_images_per_second: float | None = None
    params: int | None = None
    # What exactly ran (pipeline-specific; empty where it does not apply).
    precision: str = ""
    compiled: bool | None = None
    compile_seconds: float | None = None  # torch.compile's compilation, outside fit_seconds
    images_seen: int | None = None
    time_budget_seconds: float | None = None
    truncated: bool | None = None       # training stopped by a time budget before its planned epochs
    full_data: bool | None = None       # trained on every training image and scored on every test image
    encode_seconds: float | None = None
    feature_dim: int | None = None
    codebook_size: int | None = None
    classifier: str = ""
    feature_cache: str = ""
    notes: str = ""
    # Where it ran and beside what (pipelines/grid.py): times taken under concurrency are not ranked with serial ones.
    host: str = ""
    concurrency: int | None = None      # the most of this suite's tasks running on the host at once (1: alone)
    # Provenance.
    started_at: str = ""
    git_commit: str = ""
    git_dirty: bool | None = None       # the code (anything outside results/) differed from the commit
    python_version: str = ""
    torch_version: str = ""
    sklearn_version: str = ""
    opencv_version: str = ""


COLUMNS = [f.name for f in dataclasses.fields(ResultRow)]


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


def key_of(row) -> dict:
    """The ``KEY`` fields of a row (a ``ResultRow``, a mapping or a named tuple)."""
    get = row.get if hasattr(row, "get") else lambda k: getattr(row, k)
    return {k: get(k) for k in KEY}


ARTIFACT_SUFFIX = {"predictions": ".npz", "filters": ".npy"}


def dataset_dir(results_dir: Path, dataset: str) -> Path:
    """Where one dataset's files live (its report, figures, experiments, predictions, filters, checkpoints):
    the results folder itself for the default dataset (the layout results had before datasets were in the key,
    so nothing written then is lost), ``datasets/<name>/`` inside it for every other."""
    return Path(results_dir) if dataset == DEFAULT_DATASET else Path(results_dir) / "datasets" / str(dataset)


def artifact_path(results_dir: Path, kind: str, key: dict) -> Path:
    """The one naming of per-row artifacts (``kind``: ``predictions`` or ``filters``):
    ``<dataset_dir>/<kind>/<pipeline>-<preset>-<device>-seed<seed>``."""
    name = f"{key['pipeline']}-{key['preset']}-{key['device']}-seed{int(key['seed'])}{ARTIFACT_SUFFIX[kind]}"
    return dataset_dir(results_dir, key["dataset"]) / kind / name


def save_predictions(results_dir: Path, row: ResultRow, y_true, y_pred) -> Path:
    """Keep test labels and predictions (for confusion matrices), atomically, one file per row key."""
    import numpy as np
    path = artifact_path(results_dir, "predictions", key_of(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, y_true=np.asarray(y_true), y_pred=np.asarray(y_pred))
    os.replace(tmp, path)
    return path


def save_array(path: Path, array) -> Path:
    """``np.save`` through a temp file and a rename."""
    import numpy as np
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return path
