"""Where a run's images come from, beyond the MNIST-format folders of ``data.py``: scikit-learn's digits, CIFAR's
python format, and any folder of images with one subfolder per class (an "ImageFolder"). One entry point,
``open_dataset``, used by the runner's ``--dataset NAME`` and ``--data-dir DIR``:

- ``--dataset fashion-mnist`` (the default) and any MNIST-format IDX folder (``--data-dir``, named after it);
- ``--dataset digits``: the 1,797 8x8 digits bundled with scikit-learn (offline everywhere);
- ``--dataset cifar10`` / ``cifar100``: the official python batches, from ``--data-dir`` or downloaded into
  ``data/`` with the published MD5 checked;
- ``--data-dir DIR`` of an ImageFolder: ``DIR/train/<class>/*`` and ``DIR/test/<class>/*``, or ``DIR/<class>/*``
  split once with a fixed seed; PNG/JPEG/BMP/TIFF/WebP, grey or colour, any size, resized to ``FOLDER_SIDE``.

Colour images are ``(n, h, w, 3)`` RGB uint8, grey ones ``(n, h, w)``. Every fault a user can make (a file that
is not an image, an empty class folder, a single class, train and test classes that differ, a truncated CIFAR
batch) is a one-line ``DataError`` naming the file and the fault.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from .data import CACHE_DIR, DEFAULT_DATASET, DataError, Dataset, find_files, load_folder, resolve_source

SUITE_SIDE = 28           # the side every pipeline's presets are built for: digits are resized up to it
FOLDER_SIDE = 32          # an ImageFolder's images are resized to this side (CIFAR's; the presets are small)
SPLIT_SEED = 2012         # the fixed seed of every split made here (class-stratified), the same everywhere
DIGITS_TEST_SHARE = 0.25  # digits: the share of its 1,797 images held out as its test set
FOLDER_TEST_SHARE = 0.2   # an ImageFolder without train/ and test/: the share held out as its test set
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

CIFAR = {  # name -> (folder in the archive, archive, its published MD5, training batches, test batch, labels key)
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "labels", ("batches.meta", "label_names")),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                 ["train"], "test", "fine_labels", ("meta", "fine_label_names")),
}
CIFAR_MIRROR = "https://www.cs.toronto.edu/~kriz/"


def stratified_split(labels: np.ndarray, test_share: float, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test images: a class-stratified split with ``SPLIT_SEED``."""
    from sklearn.model_selection import train_test_split
    try:
        return train_test_split(np.arange(len(labels)), test_size=test_share, random_state=SPLIT_SEED,
                                stratify=labels)
    except ValueError as exc:  # e.g. a class with a single image cannot be split
        raise DataError(f"{where}: cannot split its images {1 - test_share:.0%}/{test_share:.0%} by class "
                        f"({' '.join(str(exc).split())[:160]}); give it train/ and test/ folders") from None


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


# --- CIFAR ----------------------------------------------------------------------------------------------------

# What a CIFAR batch is made of, and all a reader of one may rebuild: numpy arrays, their dtypes and scalars (under
# numpy 1's and numpy 2's module names), and Python 3's spelling of bytes in old pickle protocols. Dicts, lists,
# strings and numbers need no global. Any other global is refused before it is looked up: a data folder is read,
# never executed (a pickle's ``__reduce__`` can name any callable, ``os.system`` among them).
CIFAR_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
    ("_codecs", "encode"),
})


class _Refused(Exception):
    """A pickle asked for a global outside ``CIFAR_GLOBALS``."""


class CifarUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that rebuilds only what a CIFAR batch holds (``CIFAR_GLOBALS``)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in CIFAR_GLOBALS:
            raise _Refused(f"{module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return CifarUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path}: missing (a CIFAR folder holds its batches and its meta file)") from None
    except _Refused as exc:
        raise DataError(f"{path}: refused, not a CIFAR batch: it asks to load {exc}, and a CIFAR batch holds only "
                        "arrays, lists, dicts, strings and numbers (data folders are read, never executed)") from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
            KeyError) as exc:
        raise DataError(f"{path}: truncated or not a CIFAR batch ({type(exc).__name__})") from None


def _cifar_batch(path: Path, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    batch = batch if isinstance(batch, dict) else {}
    data, labels = batch.get("data"), batch.get(labels_key)
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{path}: not a CIFAR batch (no 'data' array and '{labels_key}' list)")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(f"{path}: truncated CIFAR batch ({data.shape} data, {len(labels)} labels; expected "
                        f"(n, 3072) and n labels)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.uint8), np.asarray(labels, np.uint8)


def load_cifar(name: str, folder: Path) -> Dataset:
    """The official python batches of CIFAR-10 or CIFAR-100 in ``folder``."""
    _, _, _, train_files, test_file, labels_key, (meta_file, names_key) = CIFAR[name]
    parts = [_cifar_batch(folder / f, labels_key) for f in train_files]
    x_te, y_te = _cifar_batch(folder / test_file, labels_key)
    meta = _unpickle(folder / meta_file)
    return Dataset(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_te, y_te,
                   name=name, source=str(folder), class_names=tuple(meta.get(names_key, [])) if isinstance(meta, dict)
                   else ())


def cifar_folder(name: str, data_dir=None) -> Path:
    """``data_dir`` (or, inside it, the archive's folder), else the cache, downloading and checking the archive."""
    inner = CIFAR[name][0]
    if data_dir:
        folder = Path(data_dir).expanduser()
        return folder / inner if (folder / inner).is_dir() else folder
    cache = CACHE_DIR.parent / inner
    if not cache.is_dir():
        download_cifar(name, CACHE_DIR.parent)
    return cache


def download_cifar(name: str, into: Path) -> None:
    inner, archive, md5 = CIFAR[name][:3]
    into.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(CIFAR_MIRROR + archive, timeout=60) as response:
            payload = response.read()
    except OSError as exc:
        raise DataError(f"download of {CIFAR_MIRROR}{archive} failed ({exc}); pass --data-dir DIR holding "
                        f"{inner}/") from None
    if hashlib.md5(payload).hexdigest() != md5:
        raise DataError(f"download of {CIFAR_MIRROR}{archive}: MD5 mismatch, file discarded")
    tmp = into / f".{archive}.part"
    tmp.write_bytes(payload)
    with tarfile.open(tmp) as tar:
        tar.extractall(into, filter="data")
    tmp.unlink()


# --- ImageFolder ----------------------------------------------------------------------------------------------

def to_uint8(image: np.ndarray) -> np.ndarray:
    """Any pixel type as uint8 0..255: unsigned integers scaled from their full range, signed ones shifted from
    theirs (int16's -32768..32767 to 0..255), floats taken as 0..1 where they lie within it and as 0..255
    otherwise; always clipped, never wrapped."""
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind in "ui":
        info = np.iinfo(image.dtype)
        scaled = (image.astype(np.float64) - info.min) * (255 / (int(info.max) - int(info.min)))
    elif image.dtype.kind == "f":
        finite = np.nan_to_num(image.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        scaled = finite * 255 if finite.size and finite.min() >= 0 and finite.max() <= 1 else finite
    else:
        raise ValueError(f"pixel type {image.dtype}")
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def read_image(path: Path, side: int) -> np.ndarray:
    """One image as RGB (h, w, 3) or grey (h, w) uint8 (``to_uint8``), resized to ``side`` x ``side`` (area
    interpolation)."""
    import cv2
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError(f"{path}: not an image that OpenCV can read")
        image = to_uint8(image)
        if image.ndim == 3:
            image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB) if image.shape[2] >= 3 else image[..., 0]
        return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    except (cv2.error, ValueError) as exc:  # e.g. a header that declares more pixels than OpenCV will decode
        raise DataError(f"{path}: OpenCV cannot read it ({' '.join(str(exc).split())[:160]})") from None


def read_classes(root: Path, side: int) -> tuple[list[np.ndarray], list[int], list[str]]:
    """Every image under ``root/<class>/``, its class index and the class names (sorted folder names)."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root}: {'a single class folder' if classes else 'no class folders'}; an image folder "
                        "needs one subfolder per class, at least two")
    images, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{root / name}: empty class folder")
        for path in files:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{path}: not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
            images.append(read_image(path, side))
            labels.append(index)
    return images, labels, classes


def stack(images: list[np.ndarray], colour: bool) -> np.ndarray:
    """One array; grey images get three equal channels where any image of the dataset is in colour."""
    return np.stack([np.repeat(im[..., None], 3, axis=2) if colour and im.ndim == 2 else im for im in images])


def load_image_folder(folder: Path, side: int = FOLDER_SIDE) -> Dataset:
    folder = Path(folder)
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        x_tr, y_tr, classes = read_classes(folder / "train", side)
        x_te, y_te, test_classes = read_classes(folder / "test", side)
        if test_classes != classes:
            raise DataError(f"{folder}: train/ and test/ hold different classes ({', '.join(classes)} against "
                            f"{', '.join(test_classes)})")
    else:
        x, y, classes = read_classes(folder, side)
        tr, te = stratified_split(np.asarray(y), FOLDER_TEST_SHARE, str(folder))
        x_tr, y_tr, x_te, y_te = [x[i] for i in tr], [y[i] for i in tr], [x[i] for i in te], [y[i] for i in te]
    colour = any(im.ndim == 3 for im in x_tr + x_te)
    dtype = np.uint8 if len(classes) <= 256 else np.int64
    return Dataset(stack(x_tr, colour), np.asarray(y_tr, dtype), stack(x_te, colour), np.asarray(y_te, dtype),
                   name=folder.resolve().name, source=f"{folder} (images resized to {side}x{side})",
                   class_names=tuple(classes))


# --- one entry point ------------------------------------------------------------------------------------------

def open_folder(data_dir) -> Dataset:
    """A folder in any format it holds: MNIST-format IDX files, CIFAR's python batches, or an ImageFolder."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"data dir {folder} is not a folder")
    if find_files(folder) is not None:
        return load_folder(folder)
    for name, (inner, *_rest) in CIFAR.items():
        if folder.name == inner or (folder / inner).is_dir():
            return load_cifar(name, folder / inner if (folder / inner).is_dir() else folder)
    if not any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir()):
        raise DataError(f"data dir {folder} does not hold the four IDX files (train-images, train-labels, "
                        "t10k-images, t10k-labels), CIFAR's python batches, or one subfolder of images per class")
    return load_image_folder(folder)


# Datasets chosen by name; each loader takes the ``--data-dir`` given with it (or None).
DATASETS = {
    DEFAULT_DATASET: lambda data_dir=None: load_folder(resolve_source(data_dir)),
    "digits": load_digits,
    "cifar10": lambda data_dir=None: load_cifar("cifar10", cifar_folder("cifar10", data_dir)),
    "cifar100": lambda data_dir=None: load_cifar("cifar100", cifar_folder("cifar100", data_dir)),
}


def open_dataset(data_dir: str | os.PathLike | None = None, dataset: str | None = None) -> Dataset:
    """``--dataset NAME`` (a key of ``DATASETS``, reading ``data_dir`` where given), else the folder ``data_dir``
    in whatever format it holds, else Fashion-MNIST from its documented places."""
    if dataset:
        if dataset not in DATASETS:
            raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)} (or --data-dir DIR)")
        return DATASETS[dataset](data_dir)
    if data_dir or os.environ.get("CVBENCH_DATA_DIR"):
        return open_folder(data_dir or os.environ["CVBENCH_DATA_DIR"])
    return load_folder(resolve_source())
