"""``pixels_svm``: raw pixels scaled to [0, 1] into the same linear SVM as ``hog_svm``.

The "features matter" control: only the features differ. Run: ``python runner.py --only pixels_svm``.
"""
from __future__ import annotations

import dataclasses

from .common import HandcraftedConfig, HandcraftedPipeline
from .features import PixelFeatures


# C chosen on the validation split: python bench/tune.py --only pixels_svm (results/tuning/pixels_svm.json).
PIXELS = HandcraftedConfig(C=0.01)


class PixelsSvm(HandcraftedPipeline):
    Config = HandcraftedConfig
    grid = {"C": (0.003, 0.01, 0.03, 0.1, 0.3)}
    presets = {
        "smoke": dataclasses.replace(PIXELS, n_train=2000, n_test=1000),
        "cpu": PIXELS,
        "paper": PIXELS,
    }

    def extractor(self, cfg: HandcraftedConfig, n_jobs: int = -1) -> PixelFeatures:
        return PixelFeatures(n_jobs=n_jobs)
