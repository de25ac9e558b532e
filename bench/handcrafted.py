"""Per-stage wall times of the hand-crafted pipelines (extract, encode, fit, predict), and the HOG speed
of OpenCV against scikit-image, side by side, in one run.

    python bench/handcrafted.py                      # cpu presets, full 60k / 10k
    python bench/handcrafted.py --n-train 10000 --pipelines hog_svm sift_fisher

No feature cache is used here: extraction is always timed for real. Figures measured on the 2-core dev
machine are in docs/pipelines.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import PIPELINES, family, get  # noqa: E402
from pipelines.base import cpu_name  # noqa: E402
from pipelines.datasets import open_dataset, split  # noqa: E402
from pipelines.handcrafted.features import HOGFeatures  # noqa: E402

HANDCRAFTED = [n for n in PIPELINES if family(n) == "handcrafted"]


def stage_times(name: str, data, n_train: int | None, n_test: int | None) -> dict:
    from sklearn.pipeline import Pipeline as SkPipeline
    pipeline = get(name)
    cfg = dataclasses.replace(pipeline.config("cpu"), n_train=n_train, n_test=n_test)
    x_tr, y_tr, x_te, y_te = split(data, cfg.n_train, cfg.n_test, 0)
    extractor, encoders, clf = pipeline.extractor(cfg), pipeline.encoders(cfg, 0), pipeline.classifier(cfg, 0)
    t = {}
    start = time.perf_counter()
    f_tr, f_te = extractor.fit(x_tr).transform(x_tr), extractor.transform(x_te)
    t["extract"] = time.perf_counter() - start
    start = time.perf_counter()
    if encoders:
        enc = SkPipeline(encoders)
        f_tr, f_te = enc.fit_transform(f_tr, y_tr), enc.transform(f_te)
    t["encode"] = time.perf_counter() - start
    start = time.perf_counter()
    clf.fit(f_tr, y_tr)
    t["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    acc = float(np.mean(clf.predict(f_te) == y_te))
    t["predict"] = time.perf_counter() - start
    return {"pipeline": name, "n_train": len(x_tr), "n_test": len(x_te), "dim": f_tr.shape[1], "accuracy": acc, **t}


def hog_speed(images: np.ndarray) -> list[tuple[str, float]]:
    """Images per second: OpenCV HOGDescriptor (1 thread, all cores) and skimage.feature.hog (one image at a
    time, the same cell/block/bin layout: 4x4 cells, 2x2 blocks, 9 bins, L2-Hys)."""
    from skimage.feature import hog
    out = []
    for label, jobs in (("OpenCV HOGDescriptor, 1 thread", 1), ("OpenCV HOGDescriptor, all cores", -1)):
        ext = HOGFeatures(nbins=9, signed=False, n_jobs=jobs).fit(images)
        start = time.perf_counter()
        ext.transform(images)
        out.append((label, len(images) / (time.perf_counter() - start)))
    sub = images[: max(1, len(images) // 10)]
    start = time.perf_counter()
    for img in sub:
        hog(img, orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2), block_norm="L2-Hys")
    out.append(("scikit-image feature.hog, 1 thread", len(sub) / (time.perf_counter() - start)))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipelines", nargs="+", default=HANDCRAFTED, choices=HANDCRAFTED)
    p.add_argument("--n-train", type=int, help="default: all 60k")
    p.add_argument("--n-test", type=int, help="default: all 10k")
    p.add_argument("--hog-images", type=int, default=20_000)
    args = p.parse_args()
    data = open_dataset()
    print(f"machine: {cpu_name()}")
    speeds = hog_speed(data.x_train[: args.hog_images])
    for label, ips in speeds:
        print(f"HOG speed  {label:38s} {ips:10,.0f} img/s")
    print(f"HOG speed  ratio OpenCV (1 thread) / scikit-image: {speeds[0][1] / speeds[2][1]:.1f}x")
    print(f"{'pipeline':16s} {'train':>7s} {'test':>6s} {'dim':>6s} {'extract s':>10s} {'encode s':>9s} "
          f"{'fit s':>8s} {'predict s':>10s} {'total s':>8s} {'test acc':>9s}")
    for name in args.pipelines:
        r = stage_times(name, data, args.n_train, args.n_test)
        total = r["extract"] + r["encode"] + r["fit"] + r["predict"]
        print(f"{name:16s} {r['n_train']:7d} {r['n_test']:6d} {r['dim']:6d} {r['extract']:10.1f} "
              f"{r['encode']:9.1f} {r['fit']:8.1f} {r['predict']:10.1f} {total:8.1f} {r['accuracy']:9.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
