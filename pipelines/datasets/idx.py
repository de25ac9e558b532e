"""MNIST-format IDX folders, Fashion-MNIST among them, as uint8 numpy arrays.

Sources of Fashion-MNIST, first match wins:
  1. ``--data-dir DIR`` or ``$CVBENCH_DATA_DIR`` (an explicit folder must hold the four files);
  2. the project cache ``data/fashion-mnist/``;
  3. the Debian package folder ``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``);
  4. a download from the official mirror into the cache, each file checked against its published MD5.

Every file is validated (magic number, dimensions, image/label counts, label range); a bad file raises
``DataError`` with a one-line message naming the file and the fault. Load time: ``python bench/data.py``.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.request
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import DEFAULT_DATASET, PROJECT_ROOT
from . import DataError, Dataset

CACHE_DIR = PROJECT_ROOT / "data" / DEFAULT_DATASET
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
ROLES = ("train-images", "train-labels", "t10k-images", "t10k-labels")


def find_files(folder: Path) -> dict[str, Path] | None:
    """Map each role to its file in ``folder`` (``train-images*`` etc., gzipped or not), or None."""
    if not folder.is_dir():
        return None
    found = {}
    for role in ROLES:
        matches = sorted(p for p in folder.iterdir()
                         if p.is_file() and p.name.startswith(role.split("-")[0])
                         and role.split("-")[1] in p.name and "ubyte" in p.name)
        if not matches:
            return None
        found[role] = min(matches, key=lambda p: (p.suffix != ".gz", p.name))
    return found


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: truncated or corrupt gzip stream ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes and check its header against its size."""
    buf = _read_bytes(path)
    ndim = 3 if magic == IMAGE_MAGIC else 1
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{path}: file too short for an IDX header ({len(buf)} bytes)")
    found_magic, *dims = struct.unpack(f">{1 + ndim}I", buf[:header])
    if found_magic != magic:
        raise DataError(f"{path}: wrong magic number {found_magic} (expected {magic})")
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise DataError(f"{path}: image dimensions {dims[1]}x{dims[2]} are empty")
    expected = header + int(np.prod(dims))
    if len(buf) != expected:
        raise DataError(f"{path}: size {len(buf)} bytes does not match header dimensions {dims} "
                        f"({expected} bytes expected)")
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(dims).copy()  # writable


def _check_pair(images: np.ndarray, labels: np.ndarray, img_path: Path, lbl_path: Path,
                n_classes: int) -> None:
    if len(images) != len(labels):
        raise DataError(f"{lbl_path}: {len(labels)} labels but {img_path.name} has {len(images)} images")
    if len(labels) and labels.max() >= n_classes:
        raise DataError(f"{lbl_path}: label {int(labels.max())} out of range 0..{n_classes - 1}")


def load_folder(folder: Path, n_classes: int = 10) -> Dataset:
    """Load and validate the four IDX files of one folder."""
    files = find_files(folder)
    if files is None:
        raise DataError(f"{folder}: does not hold the four IDX files "
                        "(train-images, train-labels, t10k-images, t10k-labels)")
    arrays = {role: read_idx(path, IMAGE_MAGIC if "images" in role else LABEL_MAGIC)
              for role, path in files.items()}
    for split in ("train", "t10k"):
        _check_pair(arrays[f"{split}-images"], arrays[f"{split}-labels"],
                    files[f"{split}-images"], files[f"{split}-labels"], n_classes)
    if arrays["train-images"].shape[1:] != arrays["t10k-images"].shape[1:]:
        raise DataError(f"{files['t10k-images']}: image size {arrays['t10k-images'].shape[1:]} differs "
                        f"from the training images' {arrays['train-images'].shape[1:]}")
    name = folder.resolve().name
    classes = FASHION_CLASSES if "fashion" in name.lower() else tuple(str(i) for i in range(n_classes))
    return Dataset(arrays["train-images"], arrays["train-labels"], arrays["t10k-images"],
                   arrays["t10k-labels"], name=name, source=str(folder), class_names=classes)


def download(cache: Path = CACHE_DIR, mirror: str = MIRROR) -> Path:
    """Fetch the four official files into ``cache``, checking each MD5; atomic per file."""
    cache.mkdir(parents=True, exist_ok=True)
    for fname, md5 in OFFICIAL_MD5.items():
        target = cache / fname
        if target.exists():
            continue
        try:
            with urllib.request.urlopen(mirror + fname, timeout=30) as response:
                payload = response.read()
        except OSError as exc:
            raise DataError(f"download of {mirror}{fname} failed ({exc})") from None
        if hashlib.md5(payload).hexdigest() != md5:
            raise DataError(f"download of {mirror}{fname}: MD5 mismatch, file discarded")
        tmp = target.with_suffix(".part")
        tmp.write_bytes(payload)
        os.replace(tmp, target)
    return cache


def resolve_source(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Path:
    """Pick the folder to read, following the documented order."""
    explicit = data_dir or os.environ.get("CVBENCH_DATA_DIR")
    if explicit:
        folder = Path(explicit).expanduser()
        if find_files(folder) is None:
            raise DataError(f"data dir {folder} does not hold the four IDX files "
                            "(train-images, train-labels, t10k-images, t10k-labels, gzipped or not)")
        return folder
    for folder in (CACHE_DIR, DEBIAN_DIR):
        if find_files(folder) is not None:
            return folder
    if not allow_download:
        raise DataError("no Fashion-MNIST found")
    try:
        return download()
    except DataError as exc:
        raise DataError(f"no Fashion-MNIST found and {exc}; remedies: apt-get install dataset-fashion-mnist, "
                        f"or put the four .gz files in {CACHE_DIR}, or pass --data-dir DIR") from None


def holds(folder: Path) -> bool:
    """Whether ``folder`` holds the four IDX files."""
    return find_files(folder) is not None


def fashion_mnist(data_dir=None) -> Dataset:
    """Fashion-MNIST from the documented places (or the MNIST-format folder ``data_dir``), named fashion-mnist:
    ``datasets.check_name`` then refuses a folder given that name that holds other images."""
    return replace(load_folder(resolve_source(data_dir)), name=DEFAULT_DATASET, class_names=FASHION_CLASSES)
