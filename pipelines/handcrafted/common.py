"""The shared engine of the hand-crafted pipelines: cached extraction, then encoder(s) and a classifier.

A hand-crafted pipeline only says which extractor, encoders and classifier it uses; ``run`` here does
the subsetting, the disk cache (``joblib.Memory`` keyed by the images and the extractor's parameters),
and times the four stages separately: extract (``feature_seconds``), encode (fitting PCA / k-means / GMM
and encoding train and test: ``encode_seconds``), classifier fit (``fit_seconds``) and predict.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from joblib import Memory
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.svm import LinearSVC

from ..base import TRAIN_SCORE_MAX, Outcome, Pipeline, RunContext, Stopwatch
from ..datasets import Dataset, split
from .features import grey

FIGURE_IMAGES = 2_000  # images the pictures draw from


@dataclass(frozen=True)
class HandcraftedConfig:
    n_train: int | None = None  # None: all 60k
    n_test: int | None = None   # None: all 10k
    C: float = 0.1              # linear SVM regularisation


def linear_svm(C: float, seed: int, n_jobs: int = -1):
    """The one linear SVM every linear pipeline shares: liblinear, one-vs-rest, classes fitted in parallel."""
    return OneVsRestClassifier(LinearSVC(C=C, dual=False, random_state=seed), n_jobs=n_jobs)


def _extract(module: str, cls: str, params: dict, images: np.ndarray, n_jobs: int | None) -> np.ndarray:
    transformer = getattr(importlib.import_module(module), cls)(**params, n_jobs=n_jobs)
    return transformer.fit(images).transform(images)


class CachedExtractor:
    """Runs a stateless extractor through ``joblib.Memory``, keyed by images and parameters (not ``n_jobs``).
    A ``FeatureUnion`` (of plain transformers, unweighted) is cached part by part and its parts put side by side, as
    the union would: a part two pipelines share (``scattering_svm``'s scattering in ``hog_scattering_svm``) is
    computed once, and the row says ``partial``."""

    def __init__(self, transformer, cache_dir: Path):
        self.parts = ([t for _, t in transformer.transformer_list] if isinstance(transformer, FeatureUnion)
                      else [transformer])
        self._fn = Memory(cache_dir, verbose=0).cache(_extract, ignore=["n_jobs"])

    @staticmethod
    def _args(transformer, images: np.ndarray) -> tuple:
        """``_extract``'s arguments for one part: the cache key, and ``n_jobs`` (ignored by the key)."""
        params = transformer.get_params()
        n_jobs = params.pop("n_jobs", None)
        t = type(transformer)
        return t.__module__, t.__name__, params, np.ascontiguousarray(images), n_jobs

    def _one(self, transformer, images: np.ndarray) -> tuple[np.ndarray, bool]:
        args = self._args(transformer, images)
        hit = self._fn.check_call_in_cache(*args)
        return self._fn(*args), hit

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, str]:
        """Return the features and where they came from: ``hit`` (all from the cache), ``partial`` or ``miss``."""
        images = np.ascontiguousarray(images)
        parts = [self._one(t, images) for t in self.parts]
        features = parts[0][0] if len(parts) == 1 else np.hstack([f for f, _ in parts])
        hits = [hit for _, hit in parts]
        return features, "hit" if all(hits) else "partial" if any(hits) else "miss"


@dataclass
class Features:
    """What a hand-crafted pipeline's classifier sees, and where the features came from."""
    train: np.ndarray
    test: np.ndarray
    raw_train: np.ndarray  # the training features before the encoders (the pictures draw from them)
    encoders: dict
    cache: str  # CachedExtractor's answer: hit, partial or miss


class HandcraftedPipeline(Pipeline):
    """Subclasses implement ``extractor``; override ``encoders`` and ``classifier`` where they differ."""

    def extractor(self, cfg, n_jobs: int = -1):
        raise NotImplementedError

    def encoders(self, cfg, seed: int, side: int = 28) -> list[tuple[str, object]]:
        """The learned encoding steps between the features and the classifier (``side``: the images' side)."""
        return []

    def classifier(self, cfg, seed: int, n_jobs: int = -1):
        return linear_svm(cfg.C, seed, n_jobs)

    def describe(self, cfg) -> dict:
        """Extra row fields (``classifier``, ``codebook_size``, ...)."""
        return {"classifier": f"LinearSVC(C={cfg.C}, one-vs-rest)"}

    def draw(self, cfg, ctx: RunContext, data: Dataset, x, y, descriptors, encoders: dict) -> None:
        """Pictures of what the features see (untimed); most pipelines draw nothing."""

    def build(self, cfg, seed: int = 0, side: int = 28) -> SkPipeline:
        """The whole pipeline as one scikit-learn estimator (images in, labels out), for use outside the runner."""
        return SkPipeline([("features", self.extractor(cfg)), *self.encoders(cfg, seed, side),
                           ("clf", self.classifier(cfg, seed))])

    def features(self, cfg, ctx: RunContext, x_tr, y_tr, x_te, sw: Stopwatch) -> Features:
        """What the classifier sees: extraction (cached) and the encoders fitted on the training images, timed in
        ``sw``'s ``feature`` and ``encode`` sections."""
        extract = CachedExtractor(self.extractor(cfg, ctx.n_jobs), ctx.cache_dir)
        encoders = self.encoders(cfg, ctx.seed, int(x_tr.shape[1]))
        with sw.section("feature"):
            (f_tr, cache_tr), (f_te, cache_te) = extract(x_tr), extract(x_te)
        raw_tr = f_tr
        with sw.section("encode"):
            if encoders:
                enc = SkPipeline(encoders)
                f_tr, f_te = enc.fit_transform(f_tr, y_tr), enc.transform(f_te)
        return Features(f_tr, f_te, raw_tr, dict(encoders), cache_tr if cache_tr == cache_te else "partial")

    def run(self, data: Dataset, cfg, ctx: RunContext) -> Outcome:
        x_tr, y_tr, x_te, y_te = split(data, cfg.n_train, cfg.n_test, ctx.seed)
        clf = self.classifier(cfg, ctx.seed, ctx.n_jobs)
        sw = Stopwatch()
        feats = self.features(cfg, ctx, x_tr, y_tr, x_te, sw)
        f_tr, f_te = feats.train, feats.test
        with sw.section("fit"):
            clf.fit(f_tr, y_tr)
        with sw.section("predict"):
            y_pred = clf.predict(f_te)
        train_acc = float(clf.score(f_tr[:TRAIN_SCORE_MAX], y_tr[:TRAIN_SCORE_MAX]))
        if ctx.figures:
            self.draw(cfg, ctx, data, grey(x_tr[:FIGURE_IMAGES]), y_tr[:FIGURE_IMAGES],
                      feats.raw_train[:FIGURE_IMAGES], feats.encoders)  # SIFT's pictures show the grey image
        values = {"test_accuracy": float(np.mean(y_pred == y_te)), "train_accuracy": train_acc, "n_train": len(x_tr),
                  "n_test": len(x_te), "image_size": int(x_tr.shape[1]), "feature_dim": int(f_tr.shape[1]),
                  "feature_seconds": sw.seconds["feature"], "encode_seconds": sw.seconds["encode"],
                  "fit_seconds": sw.seconds["fit"], "predict_seconds": sw.seconds["predict"],
                  "feature_cache": feats.cache, **self.describe(cfg)}
        return Outcome(values, y_true=y_te, y_pred=y_pred)
