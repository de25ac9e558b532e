"""The command line, as a user meets it: exit codes, one-line errors, never a traceback."""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import run_cli


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
    from pipelines import REGISTRY
    for name, entry in REGISTRY.items():
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
    assert "| 2 |" in (out / "report.md").read_text()  # two seeds behind one results line


def test_experiment_seeds_given_twice_run_once(tiny_dir, tmp_path):
    out = tmp_path / "res"
    proc = run_cli("--experiment", "dropout", "--preset", "smoke", "--seeds", "3", "3", "--data-dir", str(tiny_dir),
                   "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    import json
    payload = json.loads((out / "experiments" / "dropout.json").read_text())
    assert payload["seeds"] == [3] and len(payload["rows"]) == 2  # two arms, one seed, no duplicate
