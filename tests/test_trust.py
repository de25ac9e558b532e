"""Trust (issue 24): no code runs from a data folder or a checkpoint, and no verdict rests on the wrong evidence.
Each test here failed on the code before the fix it names."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from conftest import run_cli


class Hostile:
    """What a hostile pickle holds: unpickling it runs a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


# --- 1. a CIFAR-format folder is read, never executed ------------------------------------------------------------

def hostile_cifar(folder, marker) -> None:
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (folder / name).write_bytes(pickle.dumps({"data": Hostile(marker), "labels": [0]}))


@pytest.mark.parametrize("how", ["data-dir", "dataset"])
def test_a_hostile_cifar_folder_creates_nothing_and_ends_in_one_line(tmp_path, how):
    marker = tmp_path / "pwned"
    hostile_cifar(tmp_path / "cifar-10-batches-py", marker)
    args = ["--data-dir", str(tmp_path / "cifar-10-batches-py")] + (["--dataset", "cifar10"] if how == "dataset" else [])
    proc = run_cli("--only", "pixels_svm", "--preset", "smoke", *args, "--results-dir", str(tmp_path / "res"),
                   timeout=120)
    assert proc.returncode == 2 and not marker.exists(), (proc.returncode, proc.stderr[-300:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused" in lines[0] and "posix.system" in lines[0], lines
    assert not (tmp_path / "res" / "summary.csv").exists()


def test_the_cifar_reader_still_reads_numpy_arrays_of_every_pickle_protocol(tmp_path):
    from pipelines.datasets.cifar import _unpickle
    batch = {"data": np.arange(12, dtype=np.uint8).reshape(2, 6), "labels": [np.int64(3), 4], "name": b"x"}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}"
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
        out = _unpickle(path)
        np.testing.assert_array_equal(out["data"], batch["data"])
        assert out["labels"] == [3, 4] and out["name"] == b"x"


# --- 2. a checkpoint is read, never executed ----------------------------------------------------------------------

def test_a_hostile_checkpoint_is_refused_and_runs_nothing(tmp_path):
    import torch
    from test_learned import _train
    from pipelines.learned.checkpoints import CheckpointError
    _train(tmp_path)
    ckpt = next((tmp_path / "checkpoints" / "lenet").glob("*.pt"))
    marker = tmp_path / "pwned"
    torch.save({"config": Hostile(marker)}, ckpt)
    with pytest.raises(CheckpointError, match="refused: it asks to load posix.system") as err:
        _train(tmp_path, resume=True)
    assert not marker.exists() and "\n" not in str(err.value)


# --- 7. the GPU check fails when a step fails -----------------------------------------------------------------------

def test_the_gpu_check_fails_and_names_the_step_on_a_machine_without_cuda(tmp_path):
    import subprocess
    import sys
    import torch
    from conftest import ROOT
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check may pass here")
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable})
    assert proc.returncode != 0, proc.stdout[-500:]
    assert "FAILED: CUDA available to torch" in proc.stdout and "gpu_check failed:" in proc.stdout
    assert "gpu_check failed:" in (tmp_path / "out" / "gpu_check.log").read_text()


# --- 10. smaller faults -------------------------------------------------------------------------------------------

def test_read_image_scales_float_and_signed_pixels_without_wrapping(tmp_path):
    import cv2
    from pipelines.datasets.folder import read_image
    cases = {"unit.tiff": (np.float32, 0.5, 128), "big.tiff": (np.float32, 300.0, 255),
             "grey.tiff": (np.float32, 200.0, 200), "low.tiff": (np.int16, -32768, 0), "high.tiff": (np.int16, 32767, 255),
             "zero.tiff": (np.int16, 0, 128), "u16.png": (np.uint16, 65535, 255)}
    for name, (dtype, value, expected) in cases.items():
        assert cv2.imwrite(str(tmp_path / name), np.full((6, 6), value, dtype))
        assert np.all(read_image(tmp_path / name, 4) == expected), name


def test_an_image_declaring_more_pixels_than_opencv_reads_is_a_one_line_error(tmp_path):
    import struct
    import zlib
    import cv2
    from pipelines.datasets import DataError
    from pipelines.datasets.folder import read_image
    png = bytearray(cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes())
    png[16:24] = struct.pack(">II", 40_000, 40_000)  # IHDR's width and height: 1.6e9 pixels, over OpenCV's 2**30
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    (tmp_path / "huge.png").write_bytes(png)
    with pytest.raises(DataError, match="huge.png: OpenCV cannot read it") as err:
        read_image(tmp_path / "huge.png", 4)
    assert "\n" not in str(err.value)


def test_a_summary_without_started_at_still_gives_a_report(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    (res / "summary.csv").write_text("dataset,pipeline,preset,device,seed,status,test_accuracy\n"
                                     "fashion-mnist,hog_svm,cpu,cpu,0,ok,0.91\n")
    proc = run_cli("--report", "--results-dir", str(res), timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "hog_svm" in (res / "report.md").read_text()


def test_a_diverged_network_gets_a_row_scored_as_chance(tiny_dir, tmp_path, monkeypatch):
    from pipelines import run as runmod
    from pipelines.base import RunContext, select_device
    from pipelines.datasets.idx import load_folder
    from pipelines.learned.lenet import LeNetPipeline
    from pipelines.learned.trainer import TrainingError
    from pipelines.store import read_summary

    def diverge(self, data, cfg, ctx):
        raise TrainingError("loss became nan in epoch 1; lower the learning rate")

    monkeypatch.setattr(LeNetPipeline, "run", diverge)
    data = load_folder(tiny_dir)
    ctx = RunContext(preset="cpu", seed=0, device=select_device(False), results_dir=tmp_path, dataset=data.name)
    row = runmod.run_pipeline("lenet", data, ctx)
    assert row.status == "diverged" and row.test_accuracy == 0.1 and "loss became nan" in row.error
    assert row.full_data and row.n_test == 200  # the cpu preset trains and scores all of it
    assert read_summary(tmp_path / "summary.csv").status.tolist() == ["diverged"]
