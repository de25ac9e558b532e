"""Pictures shared by the pipelines and the report (matplotlib, Agg backend, written atomically)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _figure_module():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: Path, dpi: int = 120) -> Path:
    """Save through a temp file and a rename, then close the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)
    _figure_module().close(fig)
    return path


def filter_grid(weights: np.ndarray, path: Path, title: str, cols: int | None = None) -> Path:
    """Draw first-layer filters, shape (n, 1, k, k), each normalised on its own to [0, 1]."""
    plt = _figure_module()
    w = weights[:, 0] if weights.ndim == 4 else weights
    lo = w.min(axis=(1, 2), keepdims=True)
    span = np.maximum(w.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
    w = (w - lo) / span
    n = len(w)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 0.4, rows * 0.9 + 0.8), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, f in zip(axes.ravel(), w):
        ax.imshow(f, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
