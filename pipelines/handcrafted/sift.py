"""``sift_bovw`` and ``sift_fisher``: dense SIFT from OpenCV, encoded as a bag of visual words or as
improved Fisher vectors, into the shared linear SVM.

Both use the same dense grid (image upsampled x2 to 56x56, a descriptor every 4 pixels covering 16x16
pixels: 121 per image), so the second pipeline finds the descriptors in the disk cache. The codebook size
and C of each are chosen on the validation split (``python bench/tune.py``; ``results/tuning/``). Run: ``python runner.py --only sift_bovw sift_fisher``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .common import HandcraftedConfig, HandcraftedPipeline
from .features import BagOfVisualWords, DenseSIFT, FisherVectors


@dataclass(frozen=True)
class SiftConfig(HandcraftedConfig):
    C: float = 1.0
    scale: int = 2
    step: int = 4
    patch: int = 16
    n_words: int = 256          # BoVW codebook size / GMM components for Fisher vectors
    pyramid: tuple = (1, 2)     # spatial pyramid levels (1x1, 2x2)
    pca_dim: int = 64           # Fisher vectors: PCA of RootSIFT
    spatial_xy: bool = False    # Fisher vectors: append keypoint (x, y) to each descriptor
    n_sample: int = 200_000     # descriptors sampled to fit k-means / PCA + GMM


class SiftPipeline(HandcraftedPipeline):
    def extractor(self, cfg: SiftConfig, n_jobs: int = -1) -> DenseSIFT:
        return DenseSIFT(scale=cfg.scale, step=cfg.step, patch=cfg.patch, n_jobs=n_jobs)


class SiftBovw(SiftPipeline):
    Config = SiftConfig
    grid = {"n_words": (128, 256), "C": (0.3, 1.0, 3.0)}
    presets = {
        "smoke": SiftConfig(n_train=2000, n_test=1000, n_words=64, n_sample=50_000),
        "cpu": SiftConfig(),
        "paper": SiftConfig(),
    }

    def encoders(self, cfg: SiftConfig, seed: int, side: int = 28):
        return [("bovw", BagOfVisualWords(n_words=cfg.n_words, pyramid=cfg.pyramid, n_sample=cfg.n_sample,
                                          random_state=seed))]

    def describe(self, cfg: SiftConfig) -> dict:
        return {"codebook_size": cfg.n_words, "classifier": f"LinearSVC(C={cfg.C}, one-vs-rest)"}

    def draw(self, cfg: SiftConfig, ctx, data, x, y, descriptors, encoders) -> None:
        from .figures import codebook_words, sift_grid
        sift_grid(x[0], cfg.scale, cfg.step, cfg.patch, ctx.figures_dir / "sift_grid.png")
        codebook_words(x, descriptors, encoders["bovw"], cfg.scale, cfg.step, cfg.patch,
                       ctx.figures_dir / "codebook_words.png")


FISHER = SiftConfig(n_words=32, pyramid=(1,), spatial_xy=True)


class SiftFisher(SiftPipeline):
    Config = SiftConfig
    grid = {"n_words": (16, 32), "C": (0.3, 1.0, 3.0)}
    presets = {
        "smoke": SiftConfig(n_train=2000, n_test=1000, n_words=8, pyramid=(1,), pca_dim=32, spatial_xy=True,
                            n_sample=50_000),
        "cpu": FISHER,
        "paper": FISHER,
    }

    def encoders(self, cfg: SiftConfig, seed: int, side: int = 28):
        return [("fisher", FisherVectors(n_components=cfg.n_words, pca_dim=cfg.pca_dim, pyramid=cfg.pyramid,
                                         spatial_xy=cfg.spatial_xy, n_sample=cfg.n_sample, random_state=seed))]

    def describe(self, cfg: SiftConfig) -> dict:
        return {"codebook_size": cfg.n_words,
                "classifier": f"LinearSVC(C={cfg.C}, one-vs-rest) on PCA-{cfg.pca_dim} RootSIFT Fisher vectors"}
