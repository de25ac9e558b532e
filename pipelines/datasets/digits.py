"""scikit-learn's bundled 8x8 digits, offline everywhere: ``--dataset digits``."""
from __future__ import annotations

import numpy as np

from . import DataError, Dataset, stratified_split

SUITE_SIDE = 28           # the side every pipeline's presets are built for: digits are resized up to it
DIGITS_TEST_SHARE = 0.25  # digits: the share of its 1,797 images held out as its test set


def load_digits(data_dir=None) -> Dataset:
    """scikit-learn's bundled 8x8 digits: a fixed, seeded, class-stratified train/test split, the 0..16 pixel
    values scaled to 0..255 and the images bilinearly resized to ``SUITE_SIDE``, so that every pipeline runs on
    them unchanged."""
    import cv2
    from sklearn.datasets import load_digits as sklearn_digits
    if data_dir:
        raise DataError("digits are bundled with scikit-learn: give --dataset digits without --data-dir")
    bunch = sklearn_digits()
    small = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    images = np.stack([cv2.resize(im, (SUITE_SIDE, SUITE_SIDE), interpolation=cv2.INTER_LINEAR) for im in small])
    labels = bunch.target.astype(np.uint8)
    tr, te = stratified_split(labels, DIGITS_TEST_SHARE)
    return Dataset(images[tr], labels[tr], images[te], labels[te], name="digits",
                   source="scikit-learn load_digits (8x8, resized to 28x28)", class_names=tuple(map(str, range(10))))
