"""``hog_svm`` and ``hog_kernel_svm``: OpenCV HOG descriptors of the whole 28x28 image into an SVM.

The HOG cell size, orientation bins and C of ``hog_svm``, and the PCA size and C of ``hog_kernel_svm``, are
chosen on the validation split, never on the test set (``python bench/tune.py --only hog_svm hog_kernel_svm``;
stored in ``results/tuning/``). Both share one HOG. Run: ``python runner.py --only hog_svm hog_kernel_svm``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .common import HandcraftedConfig, HandcraftedPipeline
from .features import HOGFeatures, pca_steps
from .rbf import rbf_svm


@dataclass(frozen=True)
class HogConfig(HandcraftedConfig):
    cell: int = 4
    block: int = 2
    stride: int = 1
    nbins: int = 9
    signed: bool = True


class HogSvm(HandcraftedPipeline):
    Config = HogConfig
    grid = {"cell": (4, 7), "nbins": (9, 12), "C": (0.03, 0.1, 0.3)}
    presets = {
        "smoke": HogConfig(n_train=2000, n_test=1000),
        "cpu": HogConfig(),
        "paper": HogConfig(),
    }

    def extractor(self, cfg: HogConfig, n_jobs: int = -1) -> HOGFeatures:
        return HOGFeatures(cell=cfg.cell, block=cfg.block, stride=cfg.stride, nbins=cfg.nbins,
                           signed=cfg.signed, n_jobs=n_jobs)

    def draw(self, cfg: HogConfig, ctx, data, x, y, descriptors, encoders) -> None:
        from .figures import hog_glyphs
        hog_glyphs(x, y, data.class_names, ctx.figures_dir / "hog_glyphs.png", cell=cfg.cell)


@dataclass(frozen=True)
class HogKernelConfig(HogConfig):
    C: float = 10.0
    gamma: str | float = "scale"
    pca_dim: int | None = 256  # None: the exact kernel on the full HOG vector


class HogKernelSvm(HogSvm):
    """HOG into an exact RBF ``SVC`` (libsvm, one-vs-one). In the ``cpu`` preset the HOG vector is first
    projected to PCA dimensions (size chosen on validation), which makes each kernel evaluation several times
    cheaper; ``paper`` uses the full HOG vector."""
    Config = HogKernelConfig
    draw = HandcraftedPipeline.draw  # hog_svm already draws the glyphs
    grid = {"pca_dim": (128, 256), "C": (3.0, 10.0, 30.0)}  # gamma: scikit-learn's "scale", fixed in advance
    presets = {
        "smoke": HogKernelConfig(n_train=2000, n_test=1000, pca_dim=64),
        "cpu": HogKernelConfig(),
        "paper": HogKernelConfig(pca_dim=None),
    }

    def encoders(self, cfg: HogKernelConfig, seed: int, side: int = 28):
        return pca_steps(cfg.pca_dim, seed)

    def classifier(self, cfg: HogKernelConfig, seed: int, n_jobs: int = -1):
        return rbf_svm(cfg.C, cfg.gamma, seed)

    def describe(self, cfg: HogKernelConfig) -> dict:
        on = f"PCA-{cfg.pca_dim} HOG" if cfg.pca_dim else "full HOG"
        return {"classifier": f"exact RBF SVC(C={cfg.C}, gamma={cfg.gamma}) on {on}"}
