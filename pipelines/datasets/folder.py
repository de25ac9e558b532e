"""Any folder of images with one subfolder per class (an "image folder"): ``DIR/train/<class>/*`` and
``DIR/test/<class>/*``, or ``DIR/<class>/*`` split once with a fixed seed; PNG/JPEG/BMP/TIFF/WebP, grey or colour,
any size and pixel type, resized to ``FOLDER_SIDE``. Colour images are ``(n, h, w, 3)`` RGB uint8, grey ones
``(n, h, w)``. Every fault a user can make (a file that is not an image, an empty class folder, a single class,
train and test classes that differ) is a one-line ``DataError`` naming the file and the fault.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import DataError, Dataset, stratified_split

FOLDER_SIDE = 32          # an image folder's images are resized to this side (CIFAR's; the presets are small)
FOLDER_TEST_SHARE = 0.2   # an image folder without train/ and test/: the share held out as its test set
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


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


def holds(folder: Path) -> bool:
    """Whether ``folder`` has subfolders (of classes, or train/ and test/)."""
    return any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())
