"""The data layer: IDX round trip, source order, and a one-line error for every corruption."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from conftest import bars, write_dataset
from pipelines.datasets import idx as data
from pipelines.datasets import DataError, subset


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip(tmp_path, gz):
    x_tr, y_tr = bars(50, seed=3)
    x_te, y_te = bars(20, seed=4)
    write_dataset(tmp_path, x_tr, y_tr, x_te, y_te, gz=gz)
    ds = data.load_folder(data.resolve_source(tmp_path))
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.x_train, x_tr)
    np.testing.assert_array_equal(ds.y_test, y_te)
    assert ds.source == str(tmp_path) and ds.image_size == 28


def test_other_image_sizes_and_names(tmp_path):
    """Any MNIST-format folder works, e.g. 32x32 images with MNIST's dotted names."""
    x = np.random.default_rng(0).integers(0, 255, (10, 32, 32), dtype=np.uint8)
    y = np.arange(10, dtype=np.uint8)
    files = write_dataset(tmp_path, x, y, x, y, gz=False)
    files["train-images"].rename(tmp_path / "train-images.idx3-ubyte")
    ds = data.load_folder(data.resolve_source(tmp_path))
    assert ds.x_train.shape == (10, 32, 32)
    assert ds.class_names == tuple(str(i) for i in range(10))


def _valid(tmp_path):
    x_tr, y_tr = bars(30, seed=5)
    x_te, y_te = bars(10, seed=6)
    return write_dataset(tmp_path, x_tr, y_tr, x_te, y_te)


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _rewrite(path, transform):
    path.write_bytes(gzip.compress(transform(bytearray(gzip.decompress(path.read_bytes())))))


def _wrong_magic(buf):
    buf[3] = 0x99
    return bytes(buf)


def _fewer_labels(buf):
    buf[4:8] = (9).to_bytes(4, "big")
    return bytes(buf[:8 + 9])


def _label_out_of_range(buf):
    buf[8] = 42
    return bytes(buf)


def _short_body(buf):
    return bytes(buf[:-5])


@pytest.mark.parametrize("role, corrupt, fault", [
    ("train-images", _truncate, "truncated or corrupt gzip"),
    ("train-images", lambda p: _rewrite(p, _wrong_magic), "wrong magic number"),
    ("t10k-labels", lambda p: _rewrite(p, _fewer_labels), "9 labels but"),
    ("train-labels", lambda p: _rewrite(p, _label_out_of_range), "label 42 out of range"),
    ("t10k-images", lambda p: _rewrite(p, _short_body), "does not match header"),
])
def test_corruption_gives_one_line_error(tmp_path, role, corrupt, fault):
    files = _valid(tmp_path)
    corrupt(files[role])
    with pytest.raises(DataError) as err:
        data.load_folder(data.resolve_source(tmp_path))
    message = str(err.value)
    assert fault in message and "\n" not in message
    assert files[role].name in message or files[role].name.replace("images", "labels") in message


def test_missing_file(tmp_path):
    files = _valid(tmp_path)
    files["t10k-labels"].unlink()
    with pytest.raises(DataError, match="does not hold the four IDX files"):
        data.load_folder(data.resolve_source(tmp_path))


def test_source_order_prefers_explicit_dir_then_env(tmp_path, monkeypatch):
    _valid(tmp_path / "a")
    _valid(tmp_path / "b")
    monkeypatch.setenv("CVBENCH_DATA_DIR", str(tmp_path / "b"))
    assert data.resolve_source(tmp_path / "a") == tmp_path / "a"
    assert data.resolve_source(None) == tmp_path / "b"


def test_no_source_names_the_remedies(tmp_path, monkeypatch):
    monkeypatch.delenv("CVBENCH_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(data, "MIRROR", "http://127.0.0.1:9/")  # nothing listens: fails at once
    with pytest.raises(DataError) as err:
        data.resolve_source(None)
    assert "apt-get install dataset-fashion-mnist" in str(err.value) and "--data-dir" in str(err.value)


def test_download_checks_md5(tmp_path, monkeypatch):
    """A download whose bytes do not match the published MD5 is discarded."""
    class FakeResponse:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"not the real file"

    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *a, **k: FakeResponse())
    with pytest.raises(DataError, match="MD5 mismatch"):
        data.download(tmp_path)
    assert not any(tmp_path.iterdir())


def test_subset_is_seeded_and_sized():
    x, y = bars(100, seed=7)
    a = subset(x, y, 30, seed=1)
    b = subset(x, y, 30, seed=1)
    c = subset(x, y, 30, seed=2)
    assert len(a[0]) == 30
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert subset(x, y, None, 0)[0] is x
