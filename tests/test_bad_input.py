"""Bad input, table-driven: every case exits 2 with one line on stderr and no traceback, before any work, and
leaves the results folder's summary.csv byte-identical; a run that fails itself costs one failed row."""
from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import bars, run_cli, write_dataset
from pipelines.store import ResultRow, append_run, dataset_dir, upsert

GOOD = "pipeline,family,preset,dataset,seed,device,status\n"


def results_with_a_row(folder: Path) -> Path:
    upsert(folder / "summary.csv", ResultRow(pipeline="hog_svm", family="handcrafted", preset="smoke",
                                              dataset="bars", seed=0, device="cpu", test_accuracy=0.9))
    return folder


def with_summary(text: str):
    """The run's summary.csv replaced by ``text``."""
    def make(tmp: Path, data: Path) -> list[str]:
        (tmp / "res").mkdir(exist_ok=True)
        (tmp / "res" / "summary.csv").write_text(text)
        return ["--only", "pixels_svm", "--preset", "smoke", "--data-dir", str(data), "--resume"]
    return make


def with_idx(mutate):
    """A copy of the tiny IDX folder with one file changed by ``mutate(folder)``."""
    def make(tmp: Path, data: Path) -> list[str]:
        bad = tmp / "bad-data"
        shutil.copytree(data, bad)
        mutate(bad)
        return ["--only", "pixels_svm", "--preset", "smoke", "--data-dir", str(bad)]
    return make


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    return gzip.compress(struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes())


def flags(*args: str):
    return lambda tmp, data: list(args)


CASES = {
    # flags
    "negative seed": (flags("--only", "lenet", "--seed", "-1"), "seed -1"),
    "seed too large": (flags("--only", "lenet", "--seeds", "0", str(2**32)), "2**32"),
    "seed not a number": (flags("--only", "lenet", "--seed", "abc"), "--seed"),
    "budget nan": (flags("--only", "lenet", "--time-budget", "nan"), "--time-budget"),
    "budget inf": (flags("--only", "lenet", "--time-budget", "inf"), "--time-budget"),
    "budget negative": (flags("--only", "lenet", "--time-budget", "-3"), "--time-budget"),
    "unknown pipeline": (flags("--only", "resnet"), "resnet"),
    "unknown experiment": (flags("--experiment", "nope"), "nope"),
    "unknown preset": (flags("--all", "--preset", "huge"), "huge"),
    "nothing to run": (flags(), "--all"),
    "seed and seeds together": (flags("--only", "lenet", "--seed", "1", "--seeds", "2"), "--seeds"),
    # data files
    "missing data dir": (lambda tmp, data: ["--only", "pixels_svm", "--data-dir", str(tmp / "nowhere")], "nowhere"),
    "corrupt gzip": (with_idx(lambda d: (d / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bxx")),
                     "train-labels"),
    "wrong magic": (with_idx(lambda d: (d / "t10k-labels-idx1-ubyte.gz").write_bytes(
        idx_bytes(2051, np.zeros(200)))), "magic"),
    "truncated images": (with_idx(lambda d: (d / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(gzip.decompress((d / "train-images-idx3-ubyte.gz").read_bytes())[:-100]))), "size"),
    "label out of range": (with_idx(lambda d: (d / "t10k-labels-idx1-ubyte.gz").write_bytes(
        idx_bytes(2049, np.full(200, 12)))), "out of range"),
    "images and labels disagree": (with_idx(lambda d: (d / "t10k-labels-idx1-ubyte.gz").write_bytes(
        idx_bytes(2049, np.zeros(150)))), "labels"),
    "train and test sizes differ": (with_idx(lambda d: (d / "t10k-images-idx3-ubyte.gz").write_bytes(
        idx_bytes(2051, np.zeros((200, 20, 20))))), "differs"),
    # results files
    "empty summary.csv": (with_summary(""), "empty"),
    "summary.csv without a key column": (with_summary("pipeline,preset,device,status\nhog_svm,cpu,cpu,ok\n"),
                                         "seed"),
    "summary.csv with a blank seed": (with_summary(GOOD + "hog_svm,handcrafted,cpu,bars,,cpu,ok\n"), "seed"),
    "summary.csv with a text seed": (with_summary(GOOD + "hog_svm,handcrafted,cpu,bars,x,cpu,ok\n"), "seed"),
    "summary.csv without status": (with_summary("pipeline,preset,device,seed\nhog_svm,cpu,cpu,0\n"), "status"),
    "results dir not writable": (lambda tmp, data: ["--only", "pixels_svm", "--data-dir", str(data),
                                                    "--results-dir", str(tmp / "res" / "summary.csv" / "sub")],
                                 "--results-dir"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case, tiny_dir, tmp_path):
    make, needle = CASES[case]
    res = results_with_a_row(tmp_path / "res")
    args = make(tmp_path, tiny_dir)
    before = (res / "summary.csv").read_bytes()
    if "--results-dir" not in args:
        args += ["--results-dir", str(res)]
    proc = run_cli(*args, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert needle in lines[0], lines[0]
    assert (res / "summary.csv").read_bytes() == before
    assert not (res / "runs.jsonl").exists()  # nothing ran


def test_a_corrupt_checkpoint_costs_one_failed_row_and_keeps_the_others(tiny_dir, tmp_path):
    res = results_with_a_row(tmp_path / "res")
    ckpt = dataset_dir(res, tiny_dir.name) / "checkpoints" / "lenet" / "smoke-cpu-seed0.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    proc = run_cli("--only", "lenet", "pixels_svm", "--preset", "smoke", "--resume", "--data-dir", str(tiny_dir),
                   "--results-dir", str(res), timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    rows = pd.read_csv(res / "summary.csv").set_index("pipeline")
    assert rows.loc["lenet", "status"] == "failed" and "corrupt" in rows.loc["lenet", "error"]
    assert rows.loc["pixels_svm", "status"] == "ok" and rows.loc["hog_svm", "test_accuracy"] == 0.9


def test_a_partial_runs_jsonl_line_is_skipped_and_counted(tmp_path):
    res = results_with_a_row(tmp_path / "res")
    (res / "runs.jsonl").write_text('{"row": {}, "config": {}}\n{"row": {"pipel')
    proc = run_cli("--report", "--results-dir", str(res))
    assert proc.returncode == 0, proc.stderr
    assert "1 malformed line(s) skipped" in (res / "report.md").read_text()


def test_a_bad_experiment_file_costs_only_its_section(tmp_path):
    res = results_with_a_row(tmp_path / "res")
    (res / "experiments").mkdir()
    (res / "experiments" / "dropout.json").write_text("{not json")
    (res / "experiments" / "augmentation.json").write_text('{"experiment": "augmentation", "rows": 3}')
    proc = run_cli("--report", "--results-dir", str(res))
    assert proc.returncode == 0, proc.stderr
    text = (res / "report.md").read_text()
    assert "dropout.json: unreadable" in text and "Section augmentation could not be built" in text
    assert "its file cannot be judged" in text  # the claims table is still written, that row says why
    assert "## 6. Errors" in text


def test_fewer_than_ten_classes_still_report(tmp_path):
    x, y = bars(300, seed=1, classes=5)
    xt, yt = bars(100, seed=2, classes=5)
    write_dataset(tmp_path / "five", x, y, xt, yt)
    res = tmp_path / "res"
    assert run_cli("--only", "hog_svm", "--preset", "smoke", "--data-dir", str(tmp_path / "five"),
                   "--results-dir", str(res)).returncode == 0
    proc = run_cli("--report", "--results-dir", str(res))
    assert proc.returncode == 0 and "could not be built" not in (res / "report.md").read_text()


def test_an_append_after_a_partial_line_keeps_the_new_record(tmp_path):
    from pipelines.store import read_runs
    path = tmp_path / "runs.jsonl"
    path.write_text('{"row": {"pipeline": "a"}, "config": {}}\n{"row": {"pipel')  # killed mid-append
    append_run(path, ResultRow(pipeline="hog_svm", family="handcrafted", preset="smoke", dataset="bars", seed=0,
                               device="cpu"), {"k": 1})
    problems: list[str] = []
    runs = read_runs(path, problems)
    assert [r["row"]["pipeline"] for r in runs] == ["a", "hog_svm"] and "1 malformed" in problems[0]
