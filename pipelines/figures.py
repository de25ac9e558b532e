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
    """Draw first-layer filters, shape (n, 1, k, k) in grey or (n, 3, k, k) in colour (as the AlexNet paper's
    figure does), each normalised on its own to [0, 1]."""
    plt = _figure_module()
    colour = weights.ndim == 4 and weights.shape[1] == 3
    w = weights.transpose(0, 2, 3, 1) if colour else weights[:, 0] if weights.ndim == 4 else weights
    axes_of_one = tuple(range(1, w.ndim))
    lo = w.min(axis=axes_of_one, keepdims=True)
    span = np.maximum(w.max(axis=axes_of_one, keepdims=True) - lo, 1e-12)
    w = (w - lo) / span
    n = len(w)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 0.4, rows * 0.9 + 0.8), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, f in zip(axes.ravel(), w):
        ax.imshow(f, interpolation="nearest", **({} if colour else {"cmap": "gray", "vmin": 0, "vmax": 1}))
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
