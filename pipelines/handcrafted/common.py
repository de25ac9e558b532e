"""The shared engine of the hand-crafted pipelines: cached extraction, then encoder(s) and a classifier.

A hand-crafted pipeline only says which extractor, encoders and classifier it uses; ``run`` here does
the subsetting, the disk cache (``joblib.Memory`` keyed by the images and the extractor's parameters),
and times extraction, fit and predict separately.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from joblib import Memory
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.svm import LinearSVC

from ..base import Outcome, Pipeline, RunContext, Stopwatch
from ..data import Dataset, split

TRAIN_SCORE_MAX = 10_000  # training accuracy is measured on at most this many training images


@dataclass(frozen=True)
class HandcraftedConfig:
    n_train: int | None = None  # None: all 60k
    n_test: int | None = None   # None: all 10k
    C: float = 0.1              # linear SVM regularisation
    n_jobs: int = -1            # cores for extraction and one-vs-rest fitting


def linear_svm(C: float, seed: int, n_jobs: int = -1):
    """The one linear SVM every linear pipeline shares: liblinear, one-vs-rest, classes fitted in parallel."""
    return OneVsRestClassifier(LinearSVC(C=C, dual=False, random_state=seed), n_jobs=n_jobs)


def _extract(module: str, cls: str, params: dict, images: np.ndarray, n_jobs: int | None) -> np.ndarray:
    transformer = getattr(importlib.import_module(module), cls)(**params, n_jobs=n_jobs)
    return transformer.fit(images).transform(images)


class CachedExtractor:
    """Runs a stateless extractor through ``joblib.Memory``, keyed by images and parameters (not ``n_jobs``)."""

    def __init__(self, transformer, cache_dir: Path):
        self.transformer = transformer
        self._fn = Memory(cache_dir, verbose=0).cache(_extract, ignore=["n_jobs"])

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, bool]:
        """Return the features and whether they came from the cache."""
        params = self.transformer.get_params()
        n_jobs = params.pop("n_jobs", None)
        t = type(self.transformer)
        args = (t.__module__, t.__name__, params, np.ascontiguousarray(images), n_jobs)
        hit = self._fn.check_call_in_cache(*args)
        return self._fn(*args), hit


class HandcraftedPipeline(Pipeline):
    """Subclasses implement ``extractor``; override ``encoders`` and ``classifier`` where they differ."""

    def extractor(self, cfg):
        raise NotImplementedError

    def encoders(self, cfg, seed: int) -> list[tuple[str, object]]:
        return []

    def classifier(self, cfg, seed: int):
        return linear_svm(cfg.C, seed, cfg.n_jobs)

    def describe(self, cfg) -> dict:
        """Extra row fields (``classifier``, ``codebook_size``, ...)."""
        return {"classifier": f"LinearSVC(C={cfg.C}, one-vs-rest)"}

    def head(self, cfg, seed: int) -> SkPipeline:
        """Everything after extraction: the learned encoders and the classifier."""
        return SkPipeline(self.encoders(cfg, seed) + [("clf", self.classifier(cfg, seed))])

    def build(self, cfg, seed: int = 0) -> SkPipeline:
        """The whole pipeline as one scikit-learn estimator, for use outside the runner."""
        return SkPipeline([("features", self.extractor(cfg))] + self.head(cfg, seed).steps)

    def run(self, data: Dataset, cfg, ctx: RunContext) -> Outcome:
        x_tr, y_tr, x_te, y_te = split(data, cfg.n_train, cfg.n_test, ctx.seed)
        extract = CachedExtractor(self.extractor(cfg), ctx.cache_dir)
        sw = Stopwatch()
        with sw.section("feature"):
            (f_tr, hit_tr), (f_te, hit_te) = extract(x_tr), extract(x_te)
        model = self.head(cfg, ctx.seed)
        with sw.section("fit"):
            model.fit(f_tr, y_tr)
        with sw.section("predict"):
            y_pred = model.predict(f_te)
        train_acc = float(model.score(f_tr[:TRAIN_SCORE_MAX], y_tr[:TRAIN_SCORE_MAX]))
        extra = {"feature_dim": int(f_tr.shape[1]), "feature_cache": "hit" if hit_tr and hit_te else "miss",
                 **self.describe(cfg)}
        return Outcome(test_accuracy=float(np.mean(y_pred == y_te)), train_accuracy=train_acc,
                       n_train=len(x_tr), n_test=len(x_te), image_size=int(x_tr.shape[1]),
                       feature_seconds=sw.seconds["feature"], fit_seconds=sw.seconds["fit"],
                       predict_seconds=sw.seconds["predict"], extra=extra, y_true=y_te, y_pred=y_pred)
