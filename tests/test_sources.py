"""Datasets beyond MNIST-format folders: ImageFolders (colour or grey, any size), CIFAR's python batches,
scikit-learn's digits; each fault a user can make is a one-line error naming the file."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import colour_bars, run_cli
from pipelines.datasets import DataError
from pipelines.datasets import open_dataset, open_folder
from pipelines.datasets.digits import load_digits
from pipelines.datasets.folder import FOLDER_SIDE


def write_folder(root, x: np.ndarray, y: np.ndarray, classes=("a", "b", "c")) -> None:
    import cv2
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / classes[label % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i}.png"), image[..., ::-1] if image.ndim == 3 else image)  # OpenCV writes BGR


@pytest.fixture
def colour_folder(tmp_path):
    root = tmp_path / "colours"
    for part, seed, n in (("train", 1, 60), ("test", 2, 30)):
        x, y = colour_bars(n, seed=seed, size=40)  # any size: read at FOLDER_SIDE
        write_folder(root / part, x, np.arange(n) % 3)
    return root


def test_an_image_folder_reads_colour_with_its_classes(colour_folder):
    data = open_folder(colour_folder)
    assert data.name == "colours" and data.class_names == ("a", "b", "c") and data.channels == 3
    assert data.x_train.shape == (60, FOLDER_SIDE, FOLDER_SIDE, 3) and data.x_test.shape[0] == 30
    assert np.bincount(data.y_train).tolist() == [20, 20, 20]
    red_bar = open_folder(colour_folder).x_train[0]  # RGB, not OpenCV's BGR: the first palette colour is red
    assert red_bar[..., 0].sum() > red_bar[..., 2].sum()


def test_a_folder_without_train_and_test_is_split_once_with_a_seed(tmp_path):
    x, _ = colour_bars(50, seed=1)
    write_folder(tmp_path / "mixed", x[..., 0], np.arange(50) % 2, classes=("p", "q"))  # grey images
    first, second = open_folder(tmp_path / "mixed"), open_folder(tmp_path / "mixed")
    assert len(first.x_train) == 40 and len(first.x_test) == 10 and first.channels == 1
    np.testing.assert_array_equal(first.x_test, second.x_test)


def test_grey_and_colour_images_together_read_as_colour(tmp_path):
    x, _ = colour_bars(8, seed=1)
    write_folder(tmp_path / "f", x[:4], np.arange(4) % 2, classes=("p", "q"))
    write_folder(tmp_path / "g", x[4:, ..., 1], np.arange(4) % 2, classes=("p", "q"))
    for cls in ("p", "q"):
        for f in (tmp_path / "g" / cls).iterdir():
            f.rename(tmp_path / "f" / cls / f"grey-{f.name}")
    data = open_folder(tmp_path / "f")
    assert data.channels == 3 and len(data.x_train) + len(data.x_test) == 8


FAULTS = {
    "not an image file": lambda root: (root / "train" / "a" / "notes.txt").write_text("hello"),
    "not an image that OpenCV can read": lambda root: (root / "train" / "a" / "bad.png").write_bytes(b"\x89PNG junk"),
    "empty class folder": lambda root: (root / "test" / "d").mkdir(),
    "different classes": lambda root: (root / "test" / "c").rename(root / "test" / "z"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_of_an_image_folder_is_a_one_line_error(fault, colour_folder):
    FAULTS[fault](colour_folder)
    with pytest.raises(DataError, match=fault):
        open_folder(colour_folder)


def test_a_single_class_is_refused(tmp_path):
    x, _ = colour_bars(4, seed=1)
    write_folder(tmp_path / "one", x, np.zeros(4, int), classes=("only",))
    with pytest.raises(DataError, match="a single class"):
        open_folder(tmp_path / "one")


def write_cifar(folder, n: int = 6) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    batch = lambda: {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(batch()))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))


def test_cifar_batches_read_as_colour(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    data = open_dataset(tmp_path, "cifar10")
    assert data.name == "cifar10" and data.x_train.shape == (30, 32, 32, 3) and data.x_test.shape == (6, 32, 32, 3)
    assert data.class_names[3] == "class3"
    assert open_folder(tmp_path / "cifar-10-batches-py").x_train.shape == (30, 32, 32, 3)  # found by its files


def test_a_truncated_cifar_batch_is_a_one_line_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="data_batch_3: truncated"):
        open_dataset(folder, "cifar10")


def test_digits_split_is_fixed_and_stratified():
    a, b = load_digits(), load_digits()
    assert len(a.x_train) == 1347 and len(a.x_test) == 450 and a.x_train.shape[1:] == (28, 28)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    share = np.bincount(a.y_test) / np.bincount(np.concatenate([a.y_train, a.y_test]))
    assert np.allclose(share, 0.25, atol=0.01)  # each class split 75/25


@pytest.mark.slow
def test_a_colour_image_folder_runs_through_the_runner(colour_folder, tmp_path):
    import pandas as pd
    out = tmp_path / "res"
    proc = run_cli("--only", "hog_svm", "sift_bovw", "cnn28", "--preset", "smoke", "--data-dir", str(colour_folder),
                   "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "colour, 3 classes" in proc.stdout
    frame = pd.read_csv(out / "summary.csv")
    assert set(frame.dataset) == {"colours"} and set(frame.status) == {"ok"}
    assert run_cli("--report", "--results-dir", str(out)).returncode == 0
    assert "colours" in (out / "datasets" / "colours" / "report.md").read_text()


def test_a_bad_image_folder_stops_the_runner_with_one_line(colour_folder, tmp_path):
    (colour_folder / "train" / "a" / "notes.txt").write_text("hello")
    proc = run_cli("--only", "hog_svm", "--preset", "smoke", "--data-dir", str(colour_folder), "--results-dir",
                   str(tmp_path / "res"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: ") and "notes.txt: not an image file" in proc.stderr
    assert not (tmp_path / "res" / "summary.csv").exists()


def test_a_class_too_small_to_split_is_a_one_line_error(tmp_path):
    x, _ = colour_bars(7, seed=1)
    write_folder(tmp_path / "tiny", x, np.array([0, 0, 0, 0, 0, 0, 1]), classes=("many", "one"))
    with pytest.raises(DataError, match="cannot split"):
        open_folder(tmp_path / "tiny")
