"""libsvm's prediction against ``RbfSVC``'s (the same one-vs-one vote as matrix products), on one fitted model.

    python bench/rbf_predict.py                          # hog_kernel_svm's cpu preset, seed 0
    python bench/rbf_predict.py --pipeline scattering_svm

Fits the pipeline's kernel SVM once, on its cpu preset's features (the pipeline's own extraction and encoders), then
predicts the test images both ways on this machine, in this run, and prints each time, whether the predictions are
equal, and the machine. libsvm predicts on one thread; the matrix products use every core BLAS has (both, on the
2-core machines). Output of record, ``results/bench/rbf_predict.txt``: on the 2-core AMD EPYC (``avx512_bf16``, no
AMX), ``hog_kernel_svm``'s model with 15,929 support vectors, libsvm 25.1 s and ``RbfSVC`` 1.7 s for the 10k test
images, the same predictions.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.svm import SVC  # noqa: E402

from pipelines import PIPELINES, family, get  # noqa: E402
from pipelines.base import RunContext, Stopwatch, cpu_name, select_device  # noqa: E402
from pipelines.datasets import open_dataset, split  # noqa: E402
from pipelines.handcrafted.rbf import RbfSVC  # noqa: E402
from pipelines.store import provenance  # noqa: E402

KERNEL = [n for n in PIPELINES if family(n) == "handcrafted"
          and isinstance(get(n).classifier(get(n).config("cpu"), 0), RbfSVC)]  # the pipelines that use RbfSVC


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="hog_kernel_svm", choices=KERNEL)
    args = p.parse_args()
    pipeline = get(args.pipeline)
    cfg, data = pipeline.config("cpu"), open_dataset()
    print(f"$ python bench/rbf_predict.py --pipeline {args.pipeline}   (commit {provenance()['git_commit']})")
    print(f"machine: {cpu_name()}")
    x_tr, y_tr, x_te, y_te = split(data, cfg.n_train, cfg.n_test, 0)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(preset="cpu", seed=0, device=select_device(False), results_dir=Path(tmp), figures=False)
        feats = pipeline.features(cfg, ctx, x_tr, y_tr, x_te, Stopwatch())
    f_tr, f_te = feats.train, feats.test
    clf = pipeline.classifier(cfg, 0)
    assert isinstance(clf, RbfSVC)
    start = time.perf_counter()
    clf.fit(f_tr, y_tr)
    print(f"fit (libsvm) {time.perf_counter() - start:.1f} s on {len(f_tr):,} x {f_tr.shape[1]}; "
          f"{int(clf.n_support_.sum()):,} support vectors")
    times, predictions = {}, {}
    for name, predict in (("libsvm", lambda x: SVC.predict(clf, x)), ("RbfSVC (BLAS)", clf.predict)):
        start = time.perf_counter()
        predictions[name] = predict(f_te)
        times[name] = time.perf_counter() - start
        print(f"predict {len(f_te):,} test images, {name:14s} {times[name]:7.2f} s "
              f"(accuracy {(predictions[name] == y_te).mean():.4f})")
    same = (predictions["libsvm"] == predictions["RbfSVC (BLAS)"]).all()
    print(f"predictions equal: {bool(same)}; speed-up {times['libsvm'] / times['RbfSVC (BLAS)']:.1f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
