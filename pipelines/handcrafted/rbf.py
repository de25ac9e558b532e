"""The exact RBF SVM of the kernel pipelines: libsvm's fit, and libsvm's one-vs-one prediction computed with BLAS.

libsvm predicts one image at a time, one kernel value at a time: on the 2-core machines scoring 10k test and 10k
training images against some 20k support vectors took as long as the fit (``predict_seconds`` of the scattering
rows). ``RbfSVC`` is scikit-learn's ``SVC`` with its fit untouched; its ``predict`` evaluates the same model, the
same kernel and the same vote, a block of images at a time as matrix products: the kernel between the block and
the support vectors, each class's support vectors against the other classes' rows of ``dual_coef_`` (the layout
scikit-learn documents for multi-class ``SVC``), the intercept, and libsvm's vote (class ``i`` on a positive
``(i, j)`` decision, otherwise ``j``; the first class with most votes wins). The decision values agree with
``SVC.decision_function`` to rounding, and a test checks that the predictions equal libsvm's.
"""
from __future__ import annotations

import numpy as np
from sklearn.svm import SVC
from sklearn.utils.validation import check_is_fitted

BLOCK = 1024  # images per block: the kernel block against ~20k support vectors is ~160 MB in float64


def rbf_svm(C: float, gamma, seed: int) -> "RbfSVC":
    """The one exact RBF SVM the kernel pipelines share."""
    return RbfSVC(C=C, kernel="rbf", gamma=gamma, cache_size=2000, random_state=seed)


class RbfSVC(SVC):
    """``SVC`` whose ``predict`` runs libsvm's one-vs-one vote as matrix products (see the module's docstring);
    other kernels, two classes, sparse input, ``break_ties`` and a class libsvm dropped (no weight) go to libsvm."""

    def _blas_ready(self, X) -> bool:
        return (self.kernel == "rbf" and len(self.classes_) > 2 and not self.break_ties and not self._sparse
                and not hasattr(X, "tocsr") and len(self.n_support_) == len(self.classes_))

    def _decision_blocks(self, X):
        """Per block of images, the one-vs-one decision values, ``(block, k (k - 1) / 2)`` in libsvm's pair order
        (0, 1), (0, 2), ..."""
        X = self._validate_for_predict(X)
        k = len(self.classes_)
        sv = self.support_vectors_
        sv_sq = np.einsum("ij,ij->i", sv, sv)
        bounds = np.concatenate([[0], np.cumsum(self.n_support_)])
        coef = self.dual_coef_  # (k - 1, n_sv): row r of class c's columns faces the r-th class other than c
        first, second = np.triu_indices(k, 1)  # the pairs (i, j), i < j, in libsvm's order
        for start in range(0, len(X), BLOCK):
            x = X[start:start + BLOCK]
            kernel = x @ sv.T
            kernel *= -2.0
            kernel += np.einsum("ij,ij->i", x, x)[:, None]
            kernel += sv_sq[None, :]
            np.maximum(kernel, 0.0, out=kernel)
            kernel *= -self._gamma  # the gamma libsvm was given ("scale" resolved on the training features)
            np.exp(kernel, out=kernel)
            # part[:, c, r]: class c's support vectors' share of the decision against the r-th other class
            part = np.stack([kernel[:, bounds[c]:bounds[c + 1]] @ coef[:, bounds[c]:bounds[c + 1]].T
                             for c in range(k)], axis=1)
            yield part[:, first, second - 1] + part[:, second, first] + self.intercept_

    def ovo_decision(self, X) -> np.ndarray:
        """The one-vs-one decision values, ``(n, k (k - 1) / 2)``: ``SVC(decision_function_shape="ovo")``'s."""
        check_is_fitted(self)
        return np.concatenate(list(self._decision_blocks(X)))

    def predict(self, X):
        check_is_fitted(self)
        if not self._blas_ready(X):
            return super().predict(X)
        k = len(self.classes_)
        first, second = np.triu_indices(k, 1)
        out = []
        for values in self._decision_blocks(X):
            winner = np.where(values > 0, first, second)  # libsvm: i on a positive (i, j) decision, else j
            rows = np.arange(len(values))[:, None] * k
            votes = np.bincount((rows + winner).ravel(), minlength=len(values) * k).reshape(len(values), k)
            out.append(np.argmax(votes, axis=1))  # the first class with most votes, as libsvm
        return self.classes_.take(np.concatenate(out))
