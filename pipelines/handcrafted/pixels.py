"""``pixels_svm``: raw pixels scaled to [0, 1] into the same linear SVM as ``hog_svm``.

The "features matter" control: only the features differ. Run: ``python runner.py --only pixels_svm``.
"""
from __future__ import annotations

from .common import HandcraftedConfig, HandcraftedPipeline
from .features import PixelFeatures


# C chosen on 10k held-out training images (bench/tune_handcrafted.py --what pixels --n-fit 50000 --n-val 10000).
PIXELS = HandcraftedConfig(C=0.03)


class PixelsSvm(HandcraftedPipeline):
    Config = HandcraftedConfig
    presets = {
        "smoke": HandcraftedConfig(n_train=2000, n_test=1000, C=0.03),
        "cpu": PIXELS,
        "paper": PIXELS,
    }

    def extractor(self, cfg: HandcraftedConfig) -> PixelFeatures:
        return PixelFeatures(n_jobs=cfg.n_jobs)
