"""The Dataset type, its content fingerprint, the protocol's splits, and the one entry point that opens data.

A dataset is chosen by name (``--dataset NAME``: ``pipelines.DATASETS``) or by folder (``--data-dir DIR``, read
in whatever format it holds: ``FOLDER_FORMATS``). Sources, one module each: ``idx`` (MNIST-format folders,
Fashion-MNIST), ``digits``, ``cifar`` (read by a restricted unpickler: a data folder is read, never executed)
and ``folder`` (one subfolder of images per class).

A dataset is known by its content, not by its folder's name: ``Dataset.fingerprint`` hashes its images and
labels, every result records it, and ``check_name`` refuses a known name with other content.
``validation_split`` carves the protocol's fixed validation images out of the training set (PROTOCOL.md):
settings are chosen on it, never on the test set.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import DATASETS, load_target


class DataError(Exception):
    """A data problem the user can fix; its message is one line."""


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # (n, h, w) grey or (n, h, w, 3) colour (RGB), uint8
    y_train: np.ndarray  # (n,) uint8
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str
    class_names: tuple[str, ...]

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def channels(self) -> int:
        """1 for grey images (n, h, w), 3 for colour ones (n, h, w, 3)."""
        return 1 if self.x_train.ndim == 3 else int(self.x_train.shape[-1])

    @functools.cached_property
    def fingerprint(self) -> str:
        """The identity of the content: a hash of the four arrays (type, shape and bytes), not of the name, the
        folder or the class names. Every row, run line, checkpoint, experiment and tuning file records it."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()[:16]


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a dataset's name is a folder name under results/datasets/


def named(data: Dataset, name: str) -> Dataset:
    """``data`` under another name (``--dataset-name``): a one-line error for a name that cannot be a folder."""
    if not NAME.fullmatch(name):
        raise DataError(f"--dataset-name {name!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    return replace(data, name=name)


def check_name(data: Dataset) -> None:
    """A registered name whose content is pinned (``DatasetEntry.fingerprint``) must hold that content."""
    entry = DATASETS.get(data.name)
    if entry and entry.fingerprint and entry.fingerprint != data.fingerprint:
        raise DataError(f"{data.source} is named {data.name} but holds other images (fingerprint {data.fingerprint}; "
                        f"{data.name}'s is {entry.fingerprint}): give it a name of its own with --dataset-name NAME")


# --- opening data ---------------------------------------------------------------------------------------------------

# A folder's formats, tried in order: (whether a folder holds it, how to read it); each "module:function".
FOLDER_FORMATS = (("pipelines.datasets.idx:holds", "pipelines.datasets.idx:load_folder"),
                  ("pipelines.datasets.cifar:holds", "pipelines.datasets.cifar:load_cifar_folder"),
                  ("pipelines.datasets.folder:holds", "pipelines.datasets.folder:load_image_folder"))


def open_folder(data_dir) -> Dataset:
    """A folder in any format it holds: MNIST-format IDX files, CIFAR's python batches, or an image folder."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"data dir {folder} is not a folder")
    for holds, read in FOLDER_FORMATS:
        if load_target(holds)(folder):
            return load_target(read)(folder)
    raise DataError(f"data dir {folder} does not hold the four IDX files (train-images, train-labels, t10k-images, "
                    "t10k-labels), CIFAR's python batches, or one subfolder of images per class")


def open_dataset(data_dir: str | os.PathLike | None = None, dataset: str | None = None) -> Dataset:
    """``--dataset NAME`` (a key of ``DATASETS``, reading ``data_dir`` where given), else the folder ``data_dir``
    (or ``$CVBENCH_DATA_DIR``) in whatever format it holds, else the default dataset from its documented places."""
    if dataset:
        if dataset not in DATASETS:
            raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)} (or --data-dir DIR)")
        return DATASETS[dataset].load(data_dir)
    if data_dir or os.environ.get("CVBENCH_DATA_DIR"):
        return open_folder(data_dir or os.environ["CVBENCH_DATA_DIR"])
    return next(iter(DATASETS.values())).load(None)


# --- the protocol's splits -------------------------------------------------------------------------------------------

VALIDATION_SIZE = 10_000  # training images held out for choosing settings (PROTOCOL.md)
VALIDATION_SEED = 2012    # fixed: the same validation images for every script, run and machine


def validation_split(data: Dataset) -> Dataset:
    """The protocol's validation view of ``data``: ``x_train`` is the rest of the training set and ``x_test``
    the held-out validation images (a fixed, seeded, class-stratified draw); the real test set is not in it."""
    from sklearn.model_selection import train_test_split
    n_val = min(VALIDATION_SIZE, len(data.x_train) // 5)
    counts = np.bincount(data.y_train)
    stratify = data.y_train if counts[counts > 0].min() >= 2 else None
    fit, val = train_test_split(np.arange(len(data.x_train)), test_size=n_val, random_state=VALIDATION_SEED,
                                stratify=stratify)
    fit, val = np.sort(fit), np.sort(val)
    return Dataset(data.x_train[fit], data.y_train[fit], data.x_train[val], data.y_train[val],
                   name=f"{data.name}-validation", source=f"{data.source} (validation split)",
                   class_names=data.class_names)


SPLIT_SEED = 2012  # the fixed seed of every train/test split made here (digits, image folders), class-stratified


def stratified_split(labels: np.ndarray, test_share: float, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test images: a class-stratified split with ``SPLIT_SEED``."""
    from sklearn.model_selection import train_test_split
    try:
        return train_test_split(np.arange(len(labels)), test_size=test_share, random_state=SPLIT_SEED,
                                stratify=labels)
    except ValueError as exc:  # e.g. a class with a single image cannot be split
        raise DataError(f"{where}: cannot split its images {1 - test_share:.0%}/{test_share:.0%} by class "
                        f"({' '.join(str(exc).split())[:160]}); give it train/ and test/ folders") from None


def subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of ``n`` examples (all of them, in order, when ``n`` is None or too big)."""
    if n is None or n >= len(x):
        return x, y
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[idx], y[idx]


def split(data: Dataset, n_train: int | None, n_test: int | None, seed: int):
    """Training subset drawn with the run's seed; test subset fixed (seed 0) so every run scores the same images."""
    x_tr, y_tr = subset(data.x_train, data.y_train, n_train, seed)
    x_te, y_te = subset(data.x_test, data.y_test, n_test, 0)
    return x_tr, y_tr, x_te, y_te
