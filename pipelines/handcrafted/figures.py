"""What the hand-crafted features see: HOG glyphs, the dense-SIFT grid, and codebook words.

Drawn by ``hog_svm`` and ``sift_bovw`` after they run, into ``results/figures/``; the report shows them
beside the learned first-layer filters.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..figures import _figure_module, save_figure


def one_per_class(x: np.ndarray, y: np.ndarray, n_classes: int) -> list[int]:
    return [int(np.flatnonzero(y == c)[0]) for c in range(n_classes) if np.any(y == c)]


def hog_glyphs(x: np.ndarray, y: np.ndarray, class_names, path: Path, cell: int = 4) -> Path:
    """One sample per class with scikit-image's HOG visualisation beneath it."""
    from skimage.feature import hog
    plt = _figure_module()
    idx = one_per_class(x, y, len(class_names))
    fig, axes = plt.subplots(2, len(idx), figsize=(1.35 * len(idx), 3.2), squeeze=False)
    for col, i in enumerate(idx):
        _, glyph = hog(x[i], orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                       visualize=True)
        axes[0, col].imshow(x[i], cmap="gray")
        axes[0, col].set_title(class_names[y[i]], fontsize=8)
        axes[1, col].imshow(glyph, cmap="magma")
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"HOG glyphs ({cell}x{cell}-pixel cells, 9 orientations; skimage.feature.hog)", fontsize=10)
    return save_figure(fig, path)


def sift_grid(image: np.ndarray, scale: int, step: int, patch: int, path: Path) -> Path:
    """The upsampled image with every dense-SIFT centre, and one descriptor's 4x4 cells outlined."""
    import cv2
    from matplotlib.patches import Rectangle

    from .features import grid_positions
    plt = _figure_module()
    side = image.shape[0] * scale
    big = cv2.resize(image, (side, side), interpolation=cv2.INTER_LINEAR)
    pos = grid_positions(side, step, patch)
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    ax.imshow(big, cmap="gray")
    ax.scatter(pos[:, 0] - 0.5, pos[:, 1] - 0.5, s=8, c="tab:orange", label=f"{len(pos)} descriptor centres")
    cx, cy = pos[len(pos) // 2]
    cell = patch / 4
    for i in range(4):
        for j in range(4):
            ax.add_patch(Rectangle((cx - patch / 2 + i * cell - 0.5, cy - patch / 2 + j * cell - 0.5), cell, cell,
                                   fill=False, ec="tab:cyan", lw=1))
    ax.set_title(f"Dense SIFT: {side}x{side} (x{scale}), step {step} px,\n"
                 f"one descriptor = 4x4 cells over {patch}x{patch} px (cyan)", fontsize=9)
    ax.legend(loc="lower center", fontsize=8, bbox_to_anchor=(0.5, -0.12))
    ax.axis("off")
    return save_figure(fig, path)


def codebook_words(x: np.ndarray, desc: np.ndarray, encoder, scale: int, step: int, patch: int, path: Path,
                   n_words: int = 8, n_patches: int = 6) -> Path:
    """The most frequent visual words, each shown by the image patches whose descriptors lie nearest it."""
    import cv2

    from .features import grid_positions
    plt = _figure_module()
    n, k, d = desc.shape
    flat = encoder._prep(desc).reshape(n * k, d)
    words = encoder.codebook_.predict(flat)
    dist = np.linalg.norm(flat - encoder.codebook_.cluster_centers_[words], axis=1)
    top = np.argsort(np.bincount(words, minlength=encoder.n_words))[::-1][:n_words]
    side, pos = x.shape[1] * scale, grid_positions(x.shape[1] * scale, step, patch)
    fig, axes = plt.subplots(n_words, n_patches, figsize=(n_patches * 0.9, n_words * 0.95), squeeze=False)
    for row, word in enumerate(top):
        members = np.flatnonzero(words == word)
        for col, m in enumerate(members[np.argsort(dist[members])][:n_patches]):
            img, kp = divmod(int(m), k)
            big = cv2.resize(x[img], (side, side), interpolation=cv2.INTER_LINEAR)
            cx, cy = pos[kp].astype(int)
            half = patch // 2
            crop = np.pad(big, half)[cy:cy + patch, cx:cx + patch]
            axes[row, col].imshow(crop, cmap="gray", vmin=0, vmax=255)
        axes[row, 0].set_ylabel(f"word {word}", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{n_words} most frequent of {encoder.n_words} visual words:\n"
                 f"the {n_patches} nearest {patch}x{patch} patches each", fontsize=9)
    return save_figure(fig, path)
