"""Choose hand-crafted settings by validation on a held-out part of the TRAINING set (never the test set).

    python bench/tune_handcrafted.py [--what hog pixels sift] [--n-fit 10000] [--n-val 5000]

Fits on ``--n-fit`` training images and scores on ``--n-val`` other training images (a seeded split),
for each candidate setting, and prints one line per candidate. The presets in
``pipelines/handcrafted/`` use the winners; the README shows this script's output and the machine.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.base import cpu_name  # noqa: E402
from pipelines.data import load  # noqa: E402
from pipelines.handcrafted.common import linear_svm  # noqa: E402
from pipelines.handcrafted.features import (BagOfVisualWords, DenseSIFT, FisherVectors, HOGFeatures,  # noqa: E402
                                            PixelFeatures)

HOG_GRID = [dict(), dict(nbins=12), dict(nbins=12, signed=True), dict(nbins=18, signed=True),
            dict(cell=7), dict(cell=4, block=3), dict(cell=3), dict(nbins=12, signed=True, block=3)]
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def split(seed: int, n_fit: int, n_val: int):
    data = load()
    perm = np.random.default_rng(seed).permutation(len(data.x_train))
    fit, val = perm[:n_fit], perm[len(perm) - n_val:]
    return data.x_train[fit], data.y_train[fit], data.x_train[val], data.y_train[val]


def score(f_fit, y_fit, f_val, y_val, cs=C_GRID) -> str:
    out = []
    for c in cs:
        start = time.perf_counter()
        acc = np.mean(linear_svm(c, 0).fit(f_fit, y_fit).predict(f_val) == y_val)
        out.append(f"C={c:g}: {acc:.4f} ({time.perf_counter() - start:.0f} s)")
    return "  ".join(out)


def features(transformer, encoder, x_fit, x_val):
    transformer.fit(x_fit)
    a, b = transformer.transform(x_fit), transformer.transform(x_val)
    if encoder is not None:
        a, b = encoder.fit_transform(a), encoder.transform(b)
    return a, b


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", nargs="+", default=["pixels", "hog", "sift"], choices=["pixels", "hog", "sift"])
    p.add_argument("--n-fit", type=int, default=10_000)
    p.add_argument("--n-val", type=int, default=5_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    x_fit, y_fit, x_val, y_val = split(args.seed, args.n_fit, args.n_val)
    print(f"machine: {cpu_name()}; fit on {len(x_fit):,} training images, validate on {len(x_val):,} others")
    candidates = []
    if "pixels" in args.what:
        candidates.append(("pixels", PixelFeatures(), None))
    if "hog" in args.what:
        candidates += [(f"HOG {kw or 'cell 4, block 2, 9 unsigned bins'}", HOGFeatures(**kw, n_jobs=-1), None)
                       for kw in HOG_GRID]
    if "sift" in args.what:
        for step in (8, 4):
            sift = DenseSIFT(scale=2, step=step, patch=16, n_jobs=-1)
            candidates += [(f"SIFT step {step} BoVW-256 pyramid 1+2x2", sift,
                            BagOfVisualWords(256, (1, 2), random_state=0)),
                           (f"SIFT step {step} FV-16 PCA-64 +xy", sift,
                            FisherVectors(16, 64, (1,), spatial_xy=True, random_state=0))]
    for name, transformer, encoder in candidates:
        a, b = features(transformer, encoder, x_fit, x_val)
        print(f"{name:55s} dim {a.shape[1]:6d}  {score(a, y_fit, b, y_val)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
