"""Result rows: atomic upsert, history, and isolation of a failing pipeline."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

import runner
from pipelines import PIPELINES, PipelineEntry
from pipelines import store as results
from pipelines.store import COLUMNS, ResultRow


def row(name="hog_svm", seed=0, acc=0.5, status="ok"):
    return ResultRow(pipeline=name, family="handcrafted", preset="smoke", dataset="d", seed=seed, device="cpu",
                     test_accuracy=acc, status=status)


def test_upsert_replaces_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "summary.csv"
    results.upsert(path, row(seed=0, acc=0.1))
    results.upsert(path, row(seed=1, acc=0.2))
    results.upsert(path, row(seed=0, acc=0.9))
    frame = pd.read_csv(path)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 2
    assert frame.set_index("seed").test_accuracy.to_dict() == {0: 0.9, 1: 0.2}


def test_atomic_files_get_the_usual_mode(tmp_path):
    """mkstemp's temp files are 0600; the results must be readable like any new file (umask applies)."""
    results.atomic_write_text(tmp_path / "report.md", "x")
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o666 & ~results._UMASK


def test_a_crash_while_writing_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "summary.csv"
    results.upsert(path, row(seed=0, acc=0.1))
    before = path.read_text()

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        results.upsert(path, row(seed=1))
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == ["summary.csv"]  # no temp file left


from pipelines.handcrafted.hog import HogSvm  # noqa: E402


class Exploding(HogSvm):
    """A registered pipeline that raises, to prove isolation."""

    def run(self, data, cfg, ctx):
        raise RuntimeError("kaboom\nsecond line")


def test_failing_pipeline_gets_a_row_and_others_go_on(tiny_dir, tmp_path, monkeypatch):
    out = tmp_path / "res"
    results.upsert(out / "summary.csv", row(name="earlier", seed=5))
    monkeypatch.setitem(PIPELINES, "exploding", PipelineEntry("handcrafted", "raises", "test_results:Exploding"))
    code = runner.main(["--only", "exploding", "hog_svm", "--preset", "smoke", "--data-dir", str(tiny_dir),
                        "--results-dir", str(out)])
    assert code == 1
    frame = pd.read_csv(out / "summary.csv", keep_default_na=False).set_index("pipeline")
    assert frame.loc["exploding", "status"] == "failed"
    assert frame.loc["exploding", "error"] == "RuntimeError: kaboom second line"
    assert frame.loc["hog_svm", "status"] == "ok"
    assert "earlier" in frame.index
    history = [json.loads(l) for l in (out / "runs.jsonl").read_text().splitlines()]
    assert [h["row"]["pipeline"] for h in history] == ["exploding", "hog_svm"]
    assert history[1]["config"]["pipeline"]["cell"] == 4


def test_resume_skips_ok_rows(tiny_dir, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--only", "hog_svm", "--preset", "smoke", "--data-dir", str(tiny_dir), "--results-dir", str(out)]
    assert runner.main(args) == 0
    assert runner.main(args + ["--resume"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert (out / "runs.jsonl").read_text().count("\n") == 1


def test_unimportable_pipeline_costs_one_row(tiny_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "res"
    monkeypatch.setitem(PIPELINES, "broken", PipelineEntry("handcrafted", "cannot import", "no_such_module:Nope"))
    code = runner.main(["--only", "broken", "hog_svm", "--preset", "smoke", "--data-dir", str(tiny_dir),
                        "--results-dir", str(out)])
    assert code == 1
    frame = pd.read_csv(out / "summary.csv", keep_default_na=False).set_index("pipeline")
    assert frame.loc["broken", "status"] == "failed" and "No module named" in frame.loc["broken", "error"]
    assert frame.loc["hog_svm", "status"] == "ok"
    assert "Traceback" not in capsys.readouterr().err


def _write_rows(folder: str, writer: int, count: int) -> None:
    """One of the concurrent writers: ``count`` rows of its own, each upserted and appended."""
    from pathlib import Path
    for i in range(count):
        r = row(name=f"writer{writer}", seed=i, acc=i / count)
        results.upsert(Path(folder) / "summary.csv", r)
        results.append_run(Path(folder) / "runs.jsonl", r, {"writer": writer})


def test_eight_processes_writing_at_once_lose_no_row(tmp_path):
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as separate worker processes would be
    procs = [ctx.Process(target=_write_rows, args=(str(tmp_path), w, 6)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert all(p.exitcode == 0 for p in procs)
    frame = results.read_summary(tmp_path / "summary.csv")
    assert len(frame) == 48 and set(frame.pipeline) == {f"writer{w}" for w in range(8)}
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 48 and all(json.loads(line)["row"]["pipeline"].startswith("writer") for line in lines)
