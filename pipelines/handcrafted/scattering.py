"""``scattering_svm`` and ``hog_scattering_svm``: the wavelet scattering network (Bruna and Mallat, "Invariant
Scattering Convolution Networks", TPAMI 2013), the strongest fixed-feature method of AlexNet's years, into an RBF
SVM, alone and fused with HOG.

Scattering convolves the image with designed Morlet wavelets (``J`` scales, ``L`` orientations), takes moduli and
averages them over 2^J pixels, twice (``max_order``): fixed filters, nothing learned, stable to small
deformations. ``ScatteringFeatures`` computes it with kymatio's torch backend, on the grey image (a colour image
is turned to grey as SIFT's is: the fused vector keeps one size for every dataset, and both fixed-feature
families see the same luminance), optionally compressed by ``log(1 + LOG_GAIN * S)``. Every setting (``J``, the
log, the PCA size, C, the weight between the HOG and scattering blocks) is chosen on the validation split
(``python bench/tune.py --only scattering_svm hog_scattering_svm``; ``results/tuning/``); ``L`` is kymatio's
usual 8 and gamma scikit-learn's ``"scale"``, fixed in advance.

kymatio 0.3.0, its newest release, imports ``scipy.special.sph_harm``, which scipy 1.17 removed (kymatio issue
#1068; fix pending in PR #1069); only its 3-D transform calls it. ``kymatio_torch`` sets the documented alias to
``sph_harm_y`` (arguments reordered) before the import, in this one place, rather than pin an older scipy for
every user; a test checks the alias against ``sph_harm_y``.

Run: ``python runner.py --only scattering_svm hog_scattering_svm``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import FeatureUnion
from tqdm.auto import tqdm

from .common import HandcraftedPipeline
from .features import as_images, grey, pca_steps
from .hog import HogConfig, HogSvm
from .rbf import rbf_svm

LOG_GAIN = 10.0  # log(1 + LOG_GAIN * S): the gain fixed in advance; whether to take the log is chosen on validation


def kymatio_torch():
    """kymatio's torch frontend, importable beside scipy 1.17 (see the module's docstring)."""
    import scipy.special as special
    if not hasattr(special, "sph_harm") and hasattr(special, "sph_harm_y"):
        special.sph_harm = lambda m, n, theta, phi: special.sph_harm_y(n, m, phi, theta)
    import kymatio.torch
    return kymatio.torch


def wavelets(J: int, L: int, k: int = 11, shape: tuple[int, int] = (28, 28)) -> list[tuple[int, int, np.ndarray]]:
    """The Morlet wavelets kymatio's transform convolves with (first order, every scale j < J and angle), as
    ``(j, theta, real part)`` on a centred ``k`` x ``k`` window: its Fourier-domain filters brought back to space."""
    bank = kymatio_torch().Scattering2D(J=J, shape=shape, L=L, max_order=1).psi
    out = []
    for psi in bank:
        space = np.fft.fftshift(np.fft.ifft2(np.asarray(psi["levels"][0]))).real
        c0, c1 = space.shape[0] // 2, space.shape[1] // 2
        out.append((psi["j"], psi["theta"], space[c0 - k // 2:c0 + k // 2 + 1, c1 - k // 2:c1 + k // 2 + 1]))
    return out


class ScatteringFeatures(TransformerMixin, BaseEstimator):
    """Second-order 2-D wavelet scattering of grey images, flattened: ``(1 + J L + L^2 J (J - 1) / 2)`` channels on
    a grid 2^J times coarser than the image; optionally ``log(1 + LOG_GAIN * S)``. Computed in batches with
    kymatio's torch backend on the CPU, with a progress bar."""

    def __init__(self, J=2, L=8, max_order=2, log=True, batch_size=512, n_jobs=None):
        self.J = J
        self.L = L
        self.max_order = max_order
        self.log = log
        self.batch_size = batch_size
        self.n_jobs = n_jobs  # accepted for a uniform interface: torch's own threads do the work

    def _transform_fn(self, side: tuple[int, int]):
        return kymatio_torch().Scattering2D(J=self.J, shape=side, L=self.L, max_order=self.max_order)

    def fit(self, X, y=None):
        import torch
        X = grey(as_images(X, fit=True))
        out = self._transform_fn(X.shape[1:])(torch.zeros(1, *X.shape[1:]))
        self.n_features_out_ = int(np.prod(out.shape[1:]))
        return self

    def transform(self, X):
        import torch
        X = grey(as_images(X))
        scattering = self._transform_fn(X.shape[1:])
        width = getattr(self, "n_features_out_", None)
        if len(X) == 0:
            return np.zeros((0, width or 0), np.float32)
        out = []
        quiet = os.environ.get("TQDM_DISABLE") == "1"
        with torch.inference_mode(), tqdm(total=len(X), desc="scattering", unit="img", leave=False,
                                          disable=quiet, mininterval=0.5) as bar:
            for i in range(0, len(X), self.batch_size):
                batch = torch.from_numpy(X[i:i + self.batch_size].astype(np.float32) / 255.0)
                coefficients = scattering(batch).flatten(1)
                out.append(torch.log1p(LOG_GAIN * coefficients) if self.log else coefficients)
                bar.update(len(batch))
        return torch.cat(out).numpy().astype(np.float32)


class BlockScaler(TransformerMixin, BaseEstimator):
    """Standardises every column (training statistics), then multiplies the columns from ``split`` on by
    ``weight``: the weight of the second block (scattering) against the first (HOG), before PCA."""

    def __init__(self, split=0, weight=1.0):
        self.split = split
        self.weight = weight

    def fit(self, X, y=None):
        from sklearn.preprocessing import StandardScaler
        self.scaler_ = StandardScaler().fit(X)
        return self

    def transform(self, X):
        Z = self.scaler_.transform(X)
        Z[:, self.split:] *= self.weight
        return Z.astype(np.float32)


@dataclass(frozen=True)
class ScatteringConfig(HogConfig):
    C: float = 10.0
    gamma: str | float = "scale"
    J: int = 2
    L: int = 8
    log: bool = True
    pca_dim: int | None = 256  # None: the exact kernel on the full vectors
    weight: float = 1.0        # hog_scattering_svm: the scattering block's weight against HOG's


class ScatteringSvm(HandcraftedPipeline):
    """Scattering, standardised, PCA, an exact RBF ``SVC`` (libsvm, one-vs-one)."""
    Config = ScatteringConfig
    grid = {"J": (2, 3), "log": (False, True), "pca_dim": (256, 512), "C": (3.0, 10.0, 30.0)}
    presets = {  # cpu: the grid's choice (results/tuning/scattering_svm.json)
        "smoke": ScatteringConfig(n_train=2000, n_test=1000, pca_dim=64),
        "cpu": ScatteringConfig(J=2, log=True, pca_dim=512, C=10.0),
        "paper": ScatteringConfig(J=2, log=True, pca_dim=None, C=10.0),
    }

    def extractor(self, cfg: ScatteringConfig, n_jobs: int = -1):
        return ScatteringFeatures(J=cfg.J, L=cfg.L, log=cfg.log, n_jobs=n_jobs)

    def encoders(self, cfg: ScatteringConfig, seed: int, side: int = 28):
        from sklearn.preprocessing import StandardScaler
        return [("scale", StandardScaler()), *pca_steps(cfg.pca_dim, seed)]

    def classifier(self, cfg: ScatteringConfig, seed: int, n_jobs: int = -1):
        return rbf_svm(cfg.C, cfg.gamma, seed)

    def describe(self, cfg: ScatteringConfig) -> dict:
        on = f"PCA-{cfg.pca_dim}" if cfg.pca_dim else "full"
        return {"classifier": f"exact RBF SVC(C={cfg.C}, gamma={cfg.gamma}) on {on} standardised features"}


class HogScatteringSvm(ScatteringSvm):
    """HOG and scattering, each block standardised and the scattering block weighted, then PCA and the RBF SVC."""
    grid = {"weight": (0.5, 1.0, 2.0), "pca_dim": (256, 512), "C": (3.0, 10.0, 30.0)}
    presets = {  # its scattering is scattering_svm's choice (J 2, log), its HOG hog_svm's; cpu: the grid's choice
        "smoke": ScatteringConfig(n_train=2000, n_test=1000, pca_dim=64),  # (results/tuning/hog_scattering_svm.json)
        "cpu": ScatteringConfig(J=2, log=True, weight=0.5, pca_dim=512, C=30.0),
        "paper": ScatteringConfig(J=2, log=True, weight=0.5, pca_dim=None, C=30.0),
    }

    def extractor(self, cfg: ScatteringConfig, n_jobs: int = -1):
        return FeatureUnion([  # [HOG | scattering], each hog_svm's and scattering_svm's own extractor; the runner
            ("hog", HogSvm.extractor(self, cfg, n_jobs)),  # caches each part, so scattering_svm's is reused
            ("scattering", super().extractor(cfg, n_jobs))])

    def encoders(self, cfg: ScatteringConfig, seed: int, side: int = 28):
        split = HogSvm.extractor(self, cfg, 1).fit(np.zeros((1, side, side), np.uint8)).n_features_out_
        return [("scale", BlockScaler(split=split, weight=cfg.weight)), *pca_steps(cfg.pca_dim, seed)]
