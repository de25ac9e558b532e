"""``hog_svm``: OpenCV HOG descriptors of the whole 28x28 image into the shared linear SVM.

Run: ``python runner.py --only hog_svm``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .common import HandcraftedConfig, HandcraftedPipeline
from .features import HOGFeatures


@dataclass(frozen=True)
class HogConfig(HandcraftedConfig):
    cell: int = 4
    block: int = 2
    stride: int = 1
    nbins: int = 9
    signed: bool = False


class HogSvm(HandcraftedPipeline):
    Config = HogConfig
    presets = {
        "smoke": HogConfig(n_train=2000, n_test=1000),
        "cpu": HogConfig(),
        "paper": HogConfig(),
    }

    def extractor(self, cfg: HogConfig) -> HOGFeatures:
        return HOGFeatures(cell=cfg.cell, block=cfg.block, stride=cfg.stride, nbins=cfg.nbins,
                           signed=cfg.signed, n_jobs=cfg.n_jobs)
