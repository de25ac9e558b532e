"""Trust (issue 24): no code runs from a data folder or a checkpoint, and no verdict rests on the wrong evidence.
Each test here failed on the code before the fix it names."""
from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest

from conftest import ROOT, run_cli

ROOT_RESULTS = ROOT / "results"


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


# --- 3, 4. experiment files: sizes apart, resume only of the same configuration -----------------------------------

def test_resuming_an_experiment_reuses_only_arms_of_todays_configuration(tiny_dir, tmp_path, monkeypatch):
    import dataclasses
    from pipelines import get
    from pipelines.base import DeviceInfo, RunContext
    from pipelines.datasets.idx import load_folder
    from pipelines.experiments.engine import plan_experiment, run_experiment
    data = load_folder(tiny_dir)
    ctx = RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, dataset=data.name)
    run_experiment("features", data, ctx, seeds=(0, 1, 2))
    resumed = dataclasses.replace(ctx, resume=True)
    assert plan_experiment("features", data, resumed, (0, 1, 2)).resumed == 12  # 4 arms x 3 seeds, all current
    hog = type(get("hog_svm"))
    monkeypatch.setattr(hog, "presets", {**hog.presets, "smoke": dataclasses.replace(hog.presets["smoke"], C=0.05)})
    plan = plan_experiment("features", data, resumed, (0, 1, 2))
    assert plan.resumed == 9 and {t.pipeline for _, t in plan.pending()} == {"hog_svm"}  # hog_svm's C changed


def test_an_experiment_run_with_fewer_seeds_keeps_the_other_seeds_rows(tiny_dir, tmp_path):
    import json
    from pipelines.base import DeviceInfo, RunContext
    from pipelines.datasets.idx import load_folder
    from pipelines.experiments.engine import run_experiment
    data = load_folder(tiny_dir)
    ctx = RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, dataset=data.name)
    run_experiment("features", data, ctx, seeds=(0, 1, 2))
    path = run_experiment("features", data, ctx, seeds=(5,))
    stored = json.loads(path.read_text())
    assert stored["seeds"] == [0, 1, 2, 5] and len(stored["rows"]) == 16 and stored["kept"] == 12


def test_a_smoke_run_leaves_the_cpu_file_and_its_verdict_alone(tiny_dir, tmp_path):
    from conftest import ROOT
    import shutil
    from pipelines.store import experiment_path
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results" / "experiments", results / "experiments")
    before = experiment_path(results, "fashion-mnist", "features", "cpu").read_bytes()
    proc = run_cli("--experiment", "features", "--preset", "smoke", "--data-dir", str(tiny_dir), "--dataset-name",
                   "fashion-mnist-like", "--results-dir", str(results), timeout=300)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert experiment_path(results, "fashion-mnist", "features", "cpu").read_bytes() == before
    assert experiment_path(results, "fashion-mnist-like", "features", "smoke").exists()


# --- 5. a dataset is known by its content ---------------------------------------------------------------------------

def test_a_folder_named_like_a_known_dataset_holding_other_images_is_refused(tiny_dir, tmp_path):
    import shutil
    fake = tmp_path / "fashion-mnist"
    shutil.copytree(tiny_dir, fake)
    res = tmp_path / "res"
    proc = run_cli("--only", "pixels_svm", "--preset", "smoke", "--data-dir", str(fake), "--results-dir", str(res),
                   timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "--dataset-name" in lines[0] and "other images" in lines[0]
    assert not (res / "summary.csv").exists()
    proc = run_cli("--only", "pixels_svm", "--preset", "smoke", "--data-dir", str(fake), "--dataset-name", "my-bars",
                   "--results-dir", str(res), timeout=120)
    assert proc.returncode == 0, proc.stderr[-300:]
    import pandas as pd
    assert list(pd.read_csv(res / "summary.csv").dataset) == ["my-bars"]


def test_rows_of_other_images_under_one_name_never_merge(tiny_dir, tmp_path):
    from conftest import bars, write_dataset
    res = tmp_path / "res"
    args = ["--only", "pixels_svm", "--preset", "smoke", "--results-dir", str(res)]
    assert run_cli(*args, "--data-dir", str(tiny_dir), timeout=120).returncode == 0
    other = tmp_path / "elsewhere" / tiny_dir.name  # the same folder name, other images
    write_dataset(other, *bars(600, seed=7), *bars(200, seed=8))
    proc = run_cli(*args, "--data-dir", str(other), "--resume", timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "made on other images" in lines[0], proc.stderr
    assert "--dataset-name" in lines[0]


# --- 9, 10. tuning grids on the preset's network, and staleness by hash ----------------------------------------------

def test_a_network_grid_point_keeps_the_presets_network_and_the_old_grid_reads_stale():
    from pipelines import get
    from pipelines.store import read_json
    from pipelines.tuning import pipeline_tunings, stale
    grids = {t.name: t for t in pipeline_tunings()}
    reg = grids["cnn28-regularisation"]
    preset = dict(get("cnn28").config("cpu").model_kwargs)
    for point in reg.points():
        kwargs = dict(reg.config(point).model_kwargs)
        assert kwargs["stem"] == preset["stem"] and kwargs["dropout"] == dict(point["model_kwargs"])["dropout"]
    payload = read_json(reg.path)
    assert stale(reg, payload) == ""  # rerun on today's network
    wide = get("cnn28").hash(dataclasses.replace(reg.config(reg.points()[0]), model_kwargs=(("dropout", 0.0), ("stem", 24))))
    old = {**payload, "points": [{**payload["points"][0], "config_hash": wide}, *payload["points"][1:]]}
    assert "other configurations" in stale(reg, old)  # a point run on the 24-channel network reads stale
    assert stale(grids["cnn28"], read_json(grids["cnn28"].path)) == ""


def test_an_experiment_whose_tuned_learning_rate_changed_is_stale(monkeypatch):
    from pipelines import experiment
    from pipelines.experiments import activation, engine
    from pipelines.store import read_json
    e = experiment("activation")
    exp = read_json(engine.experiment_path(ROOT_RESULTS, "fashion-mnist", "activation", "cpu"))
    assert engine.stale(exp) == []
    real = activation.chosen
    first = e.tunings()[0].name  # its grid now chooses another rate than the file's runs used
    monkeypatch.setattr(activation, "chosen", lambda name: {"lr": real(name)["lr"] * (2 if name == first else 1)})
    assert any("made with another configuration of" in why for why in engine.stale(exp))
