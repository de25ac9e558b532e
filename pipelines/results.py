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

import pandas as pd

KEY = ["pipeline", "preset", "device", "seed"]


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
    images_seen: int | None = None
    time_budget_seconds: float | None = None
    encode_seconds: float | None = None
    feature_dim: int | None = None
    codebook_size: int | None = None
    classifier: str = ""
    feature_cache: str = ""
    notes: str = ""
    # Provenance.
    started_at: str = ""
    git_commit: str = ""
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


def provenance() -> dict[str, str]:
    """Versions and git commit, read without importing the heavy libraries."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "git_commit": commit,
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


def read_summary(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path, dtype={"seed": int}, keep_default_na=False, na_values=[""])


def upsert(path: Path, row: ResultRow) -> pd.DataFrame:
    """Replace the row with the same key (or add it) and rewrite ``path`` atomically."""
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


def append_run(path: Path, row: ResultRow, config: dict) -> None:
    """Append one JSON line with the row and the full effective configuration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"row": dataclasses.asdict(row), "config": config}
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def has_ok_row(path: Path, pipeline: str, preset: str, device: str, seed: int) -> bool:
    frame = read_summary(path)
    if not len(frame):
        return False
    hit = ((frame.pipeline == pipeline) & (frame.preset == preset) & (frame.device == device)
           & (frame.seed.astype(int) == seed) & (frame.status == "ok"))
    return bool(hit.any())


def save_predictions(results_dir: Path, row: ResultRow, y_true, y_pred) -> Path:
    """Keep test labels and predictions (for confusion matrices), atomically, one file per row key."""
    import numpy as np
    path = results_dir / "predictions" / f"{row.pipeline}-{row.preset}-{row.device}-seed{row.seed}.npz"
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
