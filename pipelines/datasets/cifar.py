"""CIFAR-10 and CIFAR-100 in their official python format (``--dataset cifar10`` / ``cifar100``, or a folder
holding the batches): read by a restricted unpickler, so a data folder is read, never executed; downloaded
into ``data/`` with the published MD5 checked when no folder is given. A truncated or foreign batch is a
one-line ``DataError`` naming the file."""
from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from .. import PROJECT_ROOT
from . import DataError, Dataset

CIFAR = {  # name -> (folder in the archive, archive, its published MD5, training batches, test batch, labels key)
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "labels", ("batches.meta", "label_names")),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                 ["train"], "test", "fine_labels", ("meta", "fine_label_names")),
}
CIFAR_MIRROR = "https://www.cs.toronto.edu/~kriz/"
CACHE = PROJECT_ROOT / "data"


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
    cache = CACHE / inner
    if not cache.is_dir():
        download_cifar(name, CACHE)
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


def holds(folder: Path) -> bool:
    """Whether ``folder`` is (or holds) the folder of CIFAR-10's or CIFAR-100's batches."""
    return any(folder.name == inner or (folder / inner).is_dir() for inner, *_ in CIFAR.values())


def load_cifar_folder(folder: Path) -> Dataset:
    """The CIFAR batches ``folder`` is (or holds), by the archive's folder name."""
    for name, (inner, *_rest) in CIFAR.items():
        if folder.name == inner or (folder / inner).is_dir():
            return load_cifar(name, folder / inner if (folder / inner).is_dir() else folder)
    raise DataError(f"{folder}: no CIFAR batches")


def cifar10(data_dir=None) -> Dataset:
    return load_cifar("cifar10", cifar_folder("cifar10", data_dir))


def cifar100(data_dir=None) -> Dataset:
    return load_cifar("cifar100", cifar_folder("cifar100", data_dir))
