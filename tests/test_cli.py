"""The command line, as a user meets it: exit codes, one-line errors, never a traceback."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from pipelines.store import dataset_dir, experiment_path


def assert_one_line_error(proc, code: int, *needles: str):
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_list_names_every_pipeline():
    proc = run_cli("--list")
    assert proc.returncode == 0
    from pipelines import PIPELINES
    for name, entry in PIPELINES.items():
        assert name in proc.stdout and entry.family in proc.stdout


def test_help_explains():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "--preset" in proc.stdout and "--resume" in proc.stdout


def test_unknown_pipeline_lists_valid_names():
    assert_one_line_error(run_cli("--only", "hog_svm", "resnet"), 2, "resnet", "hog_svm", "lenet")


def test_nothing_to_run():
    assert_one_line_error(run_cli(), 2, "--all")


def test_gpu_without_cuda_refuses():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(run_cli("--only", "lenet", "--gpu"), 2, "--gpu", "CUDA")


def test_bad_data_dir(tmp_path):
    assert_one_line_error(run_cli("--only", "hog_svm", "--data-dir", str(tmp_path / "missing")), 2, "missing")


def test_corrupt_data_dir(tiny_dir):
    (tiny_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    assert_one_line_error(run_cli("--only", "hog_svm", "--data-dir", str(tiny_dir)), 2, "train-labels")


def test_bad_time_budget():
    assert_one_line_error(run_cli("--only", "lenet", "--time-budget", "-3"), 2, "--time-budget")


def test_smoke_run_on_synthetic_data_writes_rows(tiny_dir, tmp_path):
    out = tmp_path / "res"
    proc = run_cli("--only", "hog_svm", "--preset", "smoke", "--data-dir", str(tiny_dir), "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    row = pd.read_csv(out / "summary.csv").iloc[0]
    assert row.pipeline == "hog_svm" and row.status == "ok" and row.dataset == "bars"
    assert row.test_accuracy > 0.9  # bars are separable by orientation
    assert (out / "runs.jsonl").read_text().count("\n") == 1
    assert "test_accuracy" in proc.stdout  # the table printed at the end


@pytest.mark.parametrize("flags, needle", [
    (("--seed", "-1"), "seed -1"), (("--seeds", "0", str(2**32)), "2**32"),
    (("--time-budget", "nan"), "--time-budget"), (("--time-budget", "inf"), "--time-budget"),
])
def test_bad_seed_or_budget(flags, needle):
    assert_one_line_error(run_cli("--only", "lenet", *flags), 2, needle)


def test_seeds_write_one_row_per_seed(tiny_dir, tmp_path):
    out = tmp_path / "res"
    proc = run_cli("--only", "pixels_svm", "--preset", "smoke", "--seeds", "0", "1", "--data-dir", str(tiny_dir),
                   "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(out / "summary.csv")
    assert sorted(rows.seed) == [0, 1] and (rows.status == "ok").all()
    assert rows.full_data.all() and rows.git_dirty.isin([True, False]).all()  # 600/200 images: all of them
    report = (out / "report.md").read_text() if (out / "report.md").exists() else ""
    assert report == ""  # --only writes rows; --report builds the report
    assert run_cli("--report", "--results-dir", str(out)).returncode == 0
    assert "| 2 |" in (dataset_dir(out, tiny_dir.name) / "report.md").read_text()  # two seeds, one results line


def test_experiment_seeds_given_twice_run_once(tiny_dir, tmp_path):
    out = tmp_path / "res"
    proc = run_cli("--experiment", "dropout", "--preset", "smoke", "--seeds", "3", "3", "--data-dir", str(tiny_dir),
                   "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(experiment_path(out, tiny_dir.name, "dropout", "smoke").read_text())
    assert payload["seeds"] == [3] and len(payload["rows"]) == 2  # two arms, one seed, no duplicate


def test_two_datasets_keep_their_own_rows_and_resume_apart(tiny_dir, tmp_path):
    import shutil
    other = tmp_path / "other-bars"
    shutil.copytree(tiny_dir, other)
    out = tmp_path / "res"
    run = lambda folder, *extra: run_cli("--only", "lenet", "--preset", "smoke", "--data-dir", str(folder),
                                         "--results-dir", str(out), *extra)
    assert run(tiny_dir).returncode == 0
    proc = run(other, "--resume")  # an ok row of the first dataset must not make --resume skip the second
    assert proc.returncode == 0 and "skipped" not in proc.stdout
    frame = pd.read_csv(out / "summary.csv")
    assert sorted(frame.dataset) == ["bars", "other-bars"] and set(frame.status) == {"ok"}
    for name in ("bars", "other-bars"):
        own = out / "datasets" / name  # every dataset but the default (Fashion-MNIST) keeps its files here
        assert (own / "predictions" / "lenet-smoke-cpu-seed0.npz").exists()
        end, start = (np.load(own / kind / "lenet-smoke-cpu-seed0.npy") for kind in ("filters", "filters_start"))
        assert end.shape == start.shape and not np.allclose(end, start)  # the layer as it ended and as it began
        assert (own / "checkpoints" / "lenet").is_dir() and (own / "figures" / "lenet_conv1.png").exists()
    assert "skipped" in run(tiny_dir, "--resume").stdout
    # a row (and checkpoint) made with another configuration than today's preset: --resume trains it afresh
    import torch
    frame = pd.read_csv(out / "summary.csv")
    before = frame.set_index("dataset").loc["bars", "started_at"]
    frame.loc[frame.dataset == "bars", "config_hash"] = "another0config00"
    frame.to_csv(out / "summary.csv", index=False)
    for path in (out / "datasets" / "bars" / "checkpoints" / "lenet").glob("*.pt"):
        payload = torch.load(path, weights_only=True)
        payload["config_hash"] = "another0config00"
        torch.save(payload, path)
    proc = run(tiny_dir, "--resume")
    assert proc.returncode == 0 and "skipped" not in proc.stdout and "run again" in proc.stdout, proc.stderr
    row = pd.read_csv(out / "summary.csv").set_index("dataset").loc["bars"]
    assert row.status == "ok" and row.started_at != before


def test_a_summary_without_the_dataset_column_reads_as_fashion_mnist(tmp_path):
    from pipelines import DEFAULT_DATASET
    from pipelines.store import read_summary
    path = tmp_path / "summary.csv"
    path.write_text("pipeline,family,preset,seed,device,status,test_accuracy\nhog_svm,handcrafted,cpu,0,cpu,ok,0.9\n")
    frame = read_summary(path)
    assert list(frame.dataset) == [DEFAULT_DATASET] and frame.test_accuracy[0] == 0.9


def test_dataset_by_name_and_its_errors(tmp_path, tiny_dir):
    assert_one_line_error(run_cli("--only", "lenet", "--dataset", "nope"), 2, "nope", "digits")
    assert_one_line_error(run_cli("--only", "lenet", "--dataset", "digits", "--data-dir", str(tiny_dir)), 2,
                          "--dataset", "--data-dir")


@pytest.mark.slow
def test_digits_runs_through_a_pipeline_of_each_family(tmp_path):
    out = tmp_path / "res"
    proc = run_cli("--only", "hog_svm", "lenet", "--dataset", "digits", "--preset", "smoke", "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "digits" in proc.stdout and "1,347 train / 450 test" in proc.stdout
    frame = pd.read_csv(out / "summary.csv")
    assert set(frame.dataset) == {"digits"} and set(frame.status) == {"ok"}
    assert frame.set_index("pipeline").test_accuracy["hog_svm"] > 0.8  # ten classes: chance is 0.1


@pytest.mark.slow
def test_fashion_mnist_and_digits_rows_live_side_by_side_and_resume_apart(tmp_path):
    out = tmp_path / "res"
    run = lambda *extra: run_cli("--only", "pixels_svm", "--preset", "smoke", "--results-dir", str(out), *extra)
    assert run().returncode == 0  # the default dataset, Fashion-MNIST
    proc = run("--dataset", "digits", "--resume")
    assert proc.returncode == 0 and "skipped" not in proc.stdout
    frame = pd.read_csv(out / "summary.csv")
    assert sorted(frame.dataset) == ["digits", "fashion-mnist"] and set(frame.pipeline) == {"pixels_svm"}
    assert "skipped" in run("--dataset", "digits", "--resume").stdout
    assert "skipped" in run("--resume").stdout
