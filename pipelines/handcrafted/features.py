"""Hand-crafted feature extractors as scikit-learn transformers.

They take a stack of images, grey ``(n, h, w)`` or colour ``(n, h, w, 3)`` uint8 (HOG takes at each pixel
the channel with the largest gradient, as Dalal and Triggs did; SIFT runs on the grey image), and return one
float32 row per image, so
they chain with a classifier in a ``sklearn.pipeline.Pipeline`` and work with ``clone``/``get_params``.
Extraction runs in chunks across cores (joblib threads: OpenCV releases the GIL), with a tqdm bar.

Input is checked as scikit-learn's estimators check theirs: a wrong number of dimensions, a non-numeric
dtype, NaN or infinity, or fitting on an empty batch is a ``ValueError`` that says what was expected; an
empty batch transforms to zero rows of the right width. Speed: ``python bench/handcrafted.py``.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from tqdm.auto import tqdm

CHUNK = 2048


def map_chunks(fn, images: np.ndarray, n_jobs: int | None, desc: str, width: int = 0) -> np.ndarray:
    """Apply ``fn`` to chunks of ``images`` in parallel threads and stack the rows, with a progress bar;
    zero rows of ``width`` columns for an empty batch."""
    if len(images) == 0:
        return np.zeros((0, width), np.float32)
    chunks = [images[i:i + CHUNK] for i in range(0, len(images), CHUNK)]
    jobs = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(delayed(fn)(c) for c in chunks)
    with tqdm(total=len(images), desc=desc, unit="img", leave=False, mininterval=0.5) as bar:
        out = []
        for rows in jobs:
            out.append(rows)
            bar.update(len(rows))
    return np.concatenate(out)


@contextmanager
def opencv_threads(n: int):
    """Set OpenCV's own thread count for a block, then restore it."""
    import cv2
    before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def check_stack(X, what: str, shape: str, fit: bool = False, ndim: int = 3) -> np.ndarray:
    """An ``ndim``-D numeric array without NaN or infinity (and, to fit, not empty), else a ``ValueError``."""
    X = np.asarray(X)
    if X.ndim != ndim:
        raise ValueError(f"expected {what} of shape {shape}, got an array of shape {X.shape}")
    if X.dtype.kind not in "buif":
        raise ValueError(f"expected numeric {what} (uint8, int or float), got dtype {X.dtype}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError(f"{what} contain NaN or infinity")
    if 0 in X.shape[1:]:
        raise ValueError(f"expected {what} of shape {shape} with non-empty sides, got {X.shape}")
    if fit and len(X) == 0:
        raise ValueError(f"cannot fit on 0 {what}: the batch is empty")
    return X


def as_images(X, fit: bool = False) -> np.ndarray:
    """Checked images, grey ``(n, h, w)`` or colour ``(n, h, w, 3)``, as uint8 (other numeric types are clipped
    to 0..255)."""
    X = np.asarray(X)
    colour = X.ndim == 4 and X.shape[-1] == 3
    X = check_stack(X, "images", "(n, h, w) or (n, h, w, 3)", fit, ndim=4 if colour else 3)
    return X if X.dtype == np.uint8 else np.clip(X, 0, 255).astype(np.uint8)


LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, OpenCV's RGB -> grey weights


def grey(X: np.ndarray) -> np.ndarray:
    """Grey images ``(n, h, w)`` uint8: colour ones ``(n, h, w, 3)`` (RGB) weighted by ``LUMA``, grey unchanged."""
    return X if X.ndim == 3 else np.clip(np.rint(X @ LUMA), 0, 255).astype(np.uint8)


class CappedPCA(PCA):
    """PCA to ``n_components``, or to fewer when the fit has fewer images (or features) than that: a learning
    curve's smallest training sets keep their pipeline's setting instead of failing. ``n_components_`` is the
    number kept; the parameter itself is never changed."""

    def _fit(self, X):
        requested = self.n_components
        if isinstance(requested, int):
            self.n_components = min(requested, *X.shape)
        try:
            return super()._fit(X)
        finally:
            self.n_components = requested


def pca_steps(dim: int | None, seed: int) -> list[tuple[str, CappedPCA]]:
    """The encoders' PCA step, or none where ``dim`` is None (the exact kernel on the full vectors)."""
    return [("pca", CappedPCA(dim, random_state=seed))] if dim else []


class PixelFeatures(TransformerMixin, BaseEstimator):
    """Raw pixels, flattened and scaled to [0, 1]: the "no features" control."""

    def __init__(self, n_jobs=None):
        self.n_jobs = n_jobs  # accepted for a uniform interface; scaling is one vectorised step

    def fit(self, X, y=None):
        self.n_features_out_ = int(np.prod(as_images(X, fit=True).shape[1:]))
        return self

    def transform(self, X):
        X = as_images(X)
        return X.reshape(len(X), int(np.prod(X.shape[1:]))).astype(np.float32) / 255.0


class HOGFeatures(TransformerMixin, BaseEstimator):
    """Histograms of oriented gradients with OpenCV's ``HOGDescriptor``.

    ``cell`` is the cell side in pixels, ``block`` the block side in cells, ``stride`` the block stride
    in cells, ``nbins`` the orientation bins, ``signed`` whether gradients use 0-360 degrees.
    The window is the whole image.
    """

    def __init__(self, cell=4, block=2, stride=1, nbins=9, signed=False, n_jobs=None):
        self.cell = cell
        self.block = block
        self.stride = stride
        self.nbins = nbins
        self.signed = signed
        self.n_jobs = n_jobs

    def _descriptor(self, size: tuple[int, int]):
        import cv2
        c = self.cell
        win = (size[1] // c * c, size[0] // c * c)
        return cv2.HOGDescriptor(win, (self.block * c,) * 2, (self.stride * c,) * 2, (c, c), self.nbins,
                                 1, -1.0, cv2.HOGDescriptor_L2Hys, 0.2, False,
                                 cv2.HOGDescriptor_DEFAULT_NLEVELS, bool(self.signed))

    def fit(self, X, y=None):
        X = as_images(X, fit=True)
        self.n_features_out_ = int(self._descriptor(X.shape[1:]).getDescriptorSize())
        return self

    def _compute(self, chunk: np.ndarray) -> np.ndarray:
        hog = self._descriptor(chunk.shape[1:])
        w, h = hog.winSize
        chunk = np.ascontiguousarray(chunk[:, :h, :w])
        return np.stack([hog.compute(img).ravel() for img in chunk]).astype(np.float32)

    def transform(self, X):
        X = as_images(X)
        width = int(self._descriptor(X.shape[1:]).getDescriptorSize())
        return map_chunks(self._compute, X, self.n_jobs, "HOG", width)


def grid_positions(size: int, step: int, patch: int) -> np.ndarray:
    """Centres (x, y) of a square grid of ``patch``-sized keypoints, ``step`` apart, inside a ``size`` image."""
    first = patch / 2
    coords = np.arange(first, size - patch / 2 + 1e-9, step)
    return np.array([(x, y) for y in coords for x in coords], dtype=np.float32)


class DenseSIFT(TransformerMixin, BaseEstimator):
    """Upright SIFT descriptors from OpenCV on a dense square grid, after upsampling by ``scale``.

    ``patch`` is the side in pixels (after upsampling) that one descriptor's 4x4 cells cover, ``step``
    the grid spacing.
    Returns uint8 descriptors of shape ``(n, k, 128)``, k keypoints per image in row-major grid order
    (OpenCV quantises SIFT to bytes anyway; uint8 keeps the disk cache 4x smaller). Keypoint detection is
    useless on 28x28 images: a raw Fashion-MNIST image gives about 4 keypoints, and 11% give none.
    """

    def __init__(self, scale=2, step=8, patch=16, n_jobs=None):
        self.scale = scale
        self.step = step
        self.patch = patch
        self.n_jobs = n_jobs

    def _keypoints(self, side: int):
        import cv2
        # OpenCV's descriptor spans 4 cells of 1.5 * size pixels: size = patch / 6 (VLFeat's magnif 6).
        return [cv2.KeyPoint(float(x), float(y), self.patch / 6.0, 0.0)
                for x, y in grid_positions(side * self.scale, self.step, self.patch)]

    def fit(self, X, y=None):
        side = as_images(X, fit=True).shape[1]  # SIFT reads the grey image (``grey``)
        self.n_keypoints_ = len(self._keypoints(side))
        self.positions_ = grid_positions(side * self.scale, self.step, self.patch) / (side * self.scale)
        return self

    def _compute(self, chunk: np.ndarray) -> np.ndarray:
        import cv2
        sift = cv2.SIFT_create()
        side = chunk.shape[1] * self.scale
        kps = self._keypoints(chunk.shape[1])
        out = np.empty((len(chunk), len(kps), 128), np.uint8)
        for i, img in enumerate(chunk):
            big = cv2.resize(img, (side, side), interpolation=cv2.INTER_LINEAR) if self.scale != 1 else img
            found, desc = sift.compute(big, kps)
            if desc is None or len(found) != len(kps):
                raise RuntimeError(f"OpenCV SIFT returned {0 if desc is None else len(found)} of {len(kps)} "
                                   "grid keypoints; use a smaller patch or a larger scale")
            out[i] = np.clip(np.rint(desc), 0, 255)
        return out

    def transform(self, X):
        X = grey(as_images(X))
        if len(X) == 0:
            return np.zeros((0, len(self._keypoints(X.shape[1])), 128), np.uint8)
        with opencv_threads(1):  # one OpenCV thread per joblib thread: 1.6x faster on 2 cores
            return map_chunks(self._compute, X, self.n_jobs, "dense SIFT")  # 3-D rows; empty handled above


def root_sift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise, then square root; float32."""
    d = desc.astype(np.float32)
    d /= np.maximum(d.sum(axis=-1, keepdims=True), 1e-12)
    return np.sqrt(d, out=d)


def power_l2(v: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Signed power normalisation, then L2 normalisation of each row."""
    v = np.sign(v) * np.abs(v) ** alpha
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def pyramid_cells(n_keypoints: int, levels: tuple[int, ...]) -> list[np.ndarray]:
    """Keypoint index sets of a spatial pyramid over a square row-major grid: 1x1, 2x2, ... cells."""
    side = int(round(np.sqrt(n_keypoints)))
    if side * side != n_keypoints:
        raise ValueError(f"a spatial pyramid needs a square keypoint grid, got {n_keypoints} keypoints")
    rows, cols = np.divmod(np.arange(n_keypoints), side)
    cells = []
    for level in levels:
        r, c = rows * level // side, cols * level // side
        cells += [np.flatnonzero((r == i) & (c == j)) for i in range(level) for j in range(level)]
    return cells


def grid_xy(n_keypoints: int) -> np.ndarray:
    """(x, y) of each keypoint of a square row-major grid, scaled to [-0.5, 0.5]."""
    side = int(round(np.sqrt(n_keypoints)))
    rows, cols = np.divmod(np.arange(n_keypoints), side)
    return np.stack([cols, rows], axis=1) / max(side - 1, 1) - 0.5


def sample_descriptors(desc: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A seeded random sample of ``n`` local descriptors from ``(images, k, d)``."""
    flat = desc.reshape(-1, desc.shape[-1])
    idx = np.random.default_rng(seed).choice(len(flat), size=min(n, len(flat)), replace=False)
    return flat[np.sort(idx)]


class BagOfVisualWords(TransformerMixin, BaseEstimator):
    """Hard-assignment bag of visual words over a ``MiniBatchKMeans`` codebook, with a spatial pyramid.

    Input: local descriptors ``(n, k, d)`` (e.g. from ``DenseSIFT``). Output: one histogram per pyramid
    cell, concatenated, power- and L2-normalised: ``n_words * sum(l*l for l in pyramid)`` columns.
    """

    def __init__(self, n_words=256, pyramid=(1, 2), root=True, alpha=0.5, n_sample=200_000,
                 random_state=None):
        self.n_words = n_words
        self.pyramid = pyramid
        self.root = root
        self.alpha = alpha
        self.n_sample = n_sample
        self.random_state = random_state

    def _prep(self, X) -> np.ndarray:
        X = np.asarray(X)
        return root_sift(X) if self.root else X.astype(np.float32)

    def fit(self, X, y=None):
        from sklearn.cluster import MiniBatchKMeans
        X = check_stack(X, "local descriptors", "(n, keypoints, d)", fit=True)
        seed = 0 if self.random_state is None else self.random_state
        sample = self._prep(sample_descriptors(X, self.n_sample, seed))
        self.codebook_ = MiniBatchKMeans(n_clusters=self.n_words, batch_size=4096, n_init=3,
                                         random_state=self.random_state).fit(sample)
        self.cells_ = pyramid_cells(np.asarray(X).shape[1], tuple(self.pyramid))
        return self

    def _encode(self, chunk: np.ndarray) -> np.ndarray:
        n, k, _ = chunk.shape
        words = self.codebook_.predict(self._prep(chunk).reshape(n * k, -1)).reshape(n, k)
        hists = [np.stack([np.bincount(w[cell], minlength=self.n_words) for w in words]) for cell in self.cells_]
        return np.concatenate(hists, axis=1).astype(np.float32)

    def transform(self, X):
        X = check_stack(X, "local descriptors", "(n, keypoints, d)")
        width = self.n_words * len(self.cells_)
        return power_l2(map_chunks(self._encode, X, 1, "BoVW encode", width), self.alpha).astype(np.float32)


class FisherVectors(TransformerMixin, BaseEstimator):
    """Improved Fisher vectors: RootSIFT, PCA, a diagonal GMM, then power and L2 normalisation.

    Input: local descriptors ``(n, k, d)``. The encoding follows ``skimage.feature.fisher_vector``
    (gradients w.r.t. weights, means and variances: ``K + 2*K*D`` per pyramid cell) but is vectorised
    over images; ``tests/test_handcrafted.py`` checks that the two agree.
    """

    def __init__(self, n_components=32, pca_dim=64, pyramid=(1,), spatial_xy=False, root=True, alpha=0.5,
                 n_sample=200_000, random_state=None):
        self.n_components = n_components
        self.pca_dim = pca_dim
        self.pyramid = pyramid
        self.spatial_xy = spatial_xy
        self.root = root
        self.alpha = alpha
        self.n_sample = n_sample
        self.random_state = random_state

    @property
    def n_features_local_(self) -> int:
        """Dimension of one local descriptor as the GMM sees it."""
        return (self.pca_.n_components_ if self.pca_ is not None else self._d_in) + 2 * bool(self.spatial_xy)

    def _project(self, X: np.ndarray) -> np.ndarray:
        n, k, d = X.shape
        self._d_in = d
        flat = root_sift(X) if self.root else X.astype(np.float32)
        flat = flat.reshape(n * k, d)
        out = self.pca_.transform(flat) if self.pca_ is not None else flat
        out = out.reshape(n, k, -1).astype(np.float64)
        if self.spatial_xy:  # Sanchez et al. 2012: append the keypoint's (x, y) in [-0.5, 0.5]
            out = np.concatenate([out, np.broadcast_to(grid_xy(k), (n, k, 2))], axis=2)
        return out

    def fit(self, X, y=None):
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture
        X = check_stack(X, "local descriptors", "(n, keypoints, d)", fit=True)
        seed = 0 if self.random_state is None else self.random_state
        n_img = max(1, min(len(X), self.n_sample // X.shape[1]))
        sample = X[np.sort(np.random.default_rng(seed).choice(len(X), n_img, replace=False))]
        flat = (root_sift(sample) if self.root else sample.astype(np.float32)).reshape(-1, X.shape[2])
        self.pca_ = PCA(self.pca_dim, random_state=self.random_state).fit(flat) if self.pca_dim else None
        projected = self._project(sample).reshape(-1, self.n_features_local_)
        self.gmm_ = GaussianMixture(self.n_components, covariance_type="diag", max_iter=100,
                                    random_state=self.random_state).fit(projected)
        self.cells_ = pyramid_cells(X.shape[1], tuple(self.pyramid))
        return self

    def _encode(self, chunk: np.ndarray) -> np.ndarray:
        desc = self._project(chunk)
        return np.concatenate([fisher_vectors(desc[:, cell], self.gmm_) for cell in self.cells_], axis=1)

    def transform(self, X):
        X = check_stack(X, "local descriptors", "(n, keypoints, d)")
        k = self.gmm_.n_components
        width = len(self.cells_) * (k + 2 * k * self.n_features_local_)
        fv = map_chunks(self._encode, X, 1, "Fisher encode", width)
        return power_l2(fv, self.alpha).astype(np.float32)


def fisher_vectors(desc: np.ndarray, gmm) -> np.ndarray:
    """Fisher vectors of a batch, ``desc`` of shape (n, k, D): the same formula as
    ``skimage.feature.fisher_vector(improved=False)``, vectorised over images with batched matmuls."""
    n, k, dim = desc.shape
    w, mu, var = gmm.weights_, gmm.means_, gmm.covariances_
    gamma = gmm.predict_proba(desc.reshape(n * k, dim)).reshape(n, k, -1)  # (n, k, K)
    gamma_t = gamma.transpose(0, 2, 1)
    pp_sum = gamma.mean(axis=1)[:, :, None]  # (n, K, 1)
    pp_x = gamma_t @ desc / k  # (n, K, D)
    pp_x2 = gamma_t @ (desc * desc) / k
    d_pi = (pp_sum[:, :, 0] - w) / np.sqrt(w)
    d_mu = (pp_x - pp_sum * mu) / (np.sqrt(w)[:, None] * np.sqrt(var))
    d_sigma = (-pp_x2 - pp_sum * mu ** 2 + pp_sum * var + 2 * pp_x * mu) / (np.sqrt(2) * np.sqrt(w)[:, None] * var)
    return np.concatenate([d_pi, d_mu.reshape(n, -1), d_sigma.reshape(n, -1)], axis=1)
