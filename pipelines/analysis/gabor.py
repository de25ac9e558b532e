"""The Gabor test of first-layer filters: each filter's best-fitting Gabor (OpenCV's ``getGaborKernel``), against
the same fit for random Xavier-initialised filters of the same shape. The report's filters section and verdict and
``bench/filters_drift.py`` use it.
"""
from __future__ import annotations

import numpy as np

FIT_THRESHOLD = 0.8  # |cosine similarity| with the best Gabor above which a filter "fits well"


def gabor_bank(k: int) -> np.ndarray:
    """Zero-mean, unit-norm Gabor kernels of size k x k over orientations, wavelengths, widths, phases."""
    import cv2
    kernels = []
    for lambd in np.geomspace(2.0, 2.0 * k, 8):
        for sigma in (0.35 * lambd, 0.56 * lambd, 0.8 * lambd):
            for theta in np.linspace(0, np.pi, 12, endpoint=False):
                for psi in (0, np.pi / 2, np.pi, 3 * np.pi / 2):
                    for gamma in (0.5, 1.0):
                        kernels.append(cv2.getGaborKernel((k, k), sigma, theta, lambd, gamma, psi, cv2.CV_64F))
    return unit(np.array(kernels))


def unit(filters: np.ndarray) -> np.ndarray:
    flat = filters.reshape(len(filters), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    return (flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)).reshape(filters.shape)


def best_fit(filters: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """For each filter (n, k, k): the largest |cosine similarity| with any kernel of the bank."""
    a = unit(filters).reshape(len(filters), -1)
    return np.abs(a @ bank.reshape(len(bank), -1).T).max(axis=1)


def random_filters(n: int, k: int, fan_in: int, fan_out: int, seed: int = 0) -> np.ndarray:
    bound = np.sqrt(6 / (fan_in + fan_out))
    return np.random.default_rng(seed).uniform(-bound, bound, (n, k, k))


def grey_filters(weights: np.ndarray) -> np.ndarray:
    """conv1 weights (n, c, k, k) as n grey k x k filters: the mean over the input channels (grey: the one)."""
    return weights.mean(axis=1)


def gabor_stats(weights: np.ndarray) -> dict:
    """Share of filters fitting a Gabor well, against the share for random filters of the same shape."""
    w = grey_filters(weights)
    n, k = len(w), w.shape[-1]
    bank = gabor_bank(k)
    fits = best_fit(w, bank)
    base = best_fit(random_filters(1000, k, k * k, n * k * k), bank)
    return {"n": n, "k": k, "share": float(np.mean(fits >= FIT_THRESHOLD)), "median_fit": float(np.median(fits)),
            "baseline_share": float(np.mean(base >= FIT_THRESHOLD)), "baseline_median": float(np.median(base))}
