"""Shared test helpers: tiny IDX folders written on the fly, separable synthetic images, the CLI."""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def write_idx(path: Path, array: np.ndarray, magic: int, gz: bool = True) -> Path:
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_dataset(folder: Path, x_tr, y_tr, x_te, y_te, gz: bool = True) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "train-images": write_idx(folder / "train-images-idx3-ubyte", x_tr, 2051, gz),
        "train-labels": write_idx(folder / "train-labels-idx1-ubyte", y_tr, 2049, gz),
        "t10k-images": write_idx(folder / "t10k-images-idx3-ubyte", x_te, 2051, gz),
        "t10k-labels": write_idx(folder / "t10k-labels-idx1-ubyte", y_te, 2049, gz),
    }


def bars(n: int, seed: int = 0, size: int = 28, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Separable synthetic images: class k is a bright bar at angle 18k degrees, randomly shifted, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    x = np.empty((n, size, size), np.uint8)
    for i, label in enumerate(y):
        theta = np.pi * label / classes
        dy, dx = rng.uniform(-2, 2, 2)
        dist = np.abs((xx - dx) * np.sin(theta) - (yy - dy) * np.cos(theta))
        img = 220 * (dist < 1.6) * (np.hypot(xx - dx, yy - dy) < size * 0.4) + rng.normal(0, 12, (size, size))
        x[i] = np.clip(img, 0, 255)
    return x, y


PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]])


def colour_bars(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``bars`` in colour, (n, size, size, 3) uint8: each class's bar also has its own colour."""
    x, y = bars(n, seed, size)
    return (x[..., None] * (PALETTE[y][:, None, None, :] / 255)).astype(np.uint8), y


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """A valid MNIST-format folder of synthetic bars: 600 train, 200 test."""
    x_tr, y_tr = bars(600, seed=1)
    x_te, y_te = bars(200, seed=2)
    folder = tmp_path / "bars"
    write_dataset(folder, x_tr, y_tr, x_te, y_te)
    return folder


def run_script(script: str, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a script of the project (a path from its root) as a user would; returns the completed process
    (text mode)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=timeout)


def run_cli(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``runner.py`` as a user would; returns the completed process (text mode)."""
    return run_script("runner.py", *args, env=env, timeout=timeout)


def real_data_available() -> bool:
    from pipelines.datasets.idx import CACHE_DIR, DEBIAN_DIR, find_files
    return any(find_files(p) for p in (CACHE_DIR, DEBIAN_DIR)) or bool(os.environ.get("CVBENCH_DATA_DIR"))


def stored_row(folder: Path, curve: list[dict] | None = None, config: dict | None = None, **fields):
    """Write one result row as a run would (summary.csv, its runs.jsonl line, its curve), with today's
    ``config_hash`` of its pipeline's preset unless ``fields`` give one; returns the row."""
    from pipelines.run import current_hash
    from pipelines.store import ResultRow, append_run, runs_path, save_curve, summary_path, upsert
    fields.setdefault("config_hash", current_hash(fields["pipeline"], fields["preset"]) or "")
    row = ResultRow(**fields)
    upsert(summary_path(folder), row)
    append_run(runs_path(folder), row, config or {}, curve)
    if curve:
        save_curve(folder, row, curve)
    return row
