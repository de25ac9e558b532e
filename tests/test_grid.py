"""The run grid (pipelines/grid.py): serial and Dask executors, failures that stay local, resume of what is
missing, the concurrency a row records, and a shared feature cache under concurrent tasks."""
from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runner
from conftest import ROOT, run_script
from pipelines import experiment
from pipelines import executors as grid
from pipelines import run as runmod
from pipelines.base import DeviceInfo, RunContext
from pipelines.datasets.idx import load_folder
from pipelines.experiments.engine import plan_experiment, run_plans

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="Dask is not installed")


@pytest.fixture(autouse=True)
def own_slots(tmp_path, monkeypatch):
    """Markers in a folder of this test's own, so that other runs of the suite on the host do not count."""
    monkeypatch.setattr(grid, "SLOTS", tmp_path / "slots")
    return grid.SLOTS


def _hold_slot(folder: str, together, out) -> None:
    grid.SLOTS = Path(folder)
    with grid.host_slot() as slot:
        together.wait(timeout=60)  # both hold their markers now
        time.sleep(3 * grid.SAMPLE_SECONDS)
    out.put(slot.concurrency)


def test_a_task_alone_records_concurrency_1_and_two_at_once_record_2(own_slots):
    with grid.host_slot() as slot:
        pass
    assert slot.concurrency == 1 and slot.host
    ctx = multiprocessing.get_context("spawn")
    out, together = ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=_hold_slot, args=(str(own_slots), together, out)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert sorted(out.get(timeout=5) for _ in procs) == [2, 2]


def test_under_torchrun_only_rank_0_holds_a_marker(own_slots, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with grid.host_slot() as slot:
        held = list(own_slots.glob("*")) if own_slots.exists() else []
    assert not held and slot.concurrency == 1


def test_a_task_on_a_dask_worker_counts_its_hosts_slots(monkeypatch):
    monkeypatch.setattr(grid, "SHARES", 2)  # what ``call`` sets on a worker of a host with 2 task slots
    with grid.host_slot() as slot:
        pass
    assert slot.concurrency == 2


def test_a_marker_left_by_a_killed_task_is_not_counted():
    grid.SLOTS.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    gone = ctx.Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    stale = grid.SLOTS / f"{gone.pid}-left-by-a-kill"
    stale.touch()
    with grid.host_slot() as slot:
        pass
    assert slot.concurrency == 1 and not stale.exists()


def _raise():
    raise ValueError("this task\nfails on purpose")


def _die():
    time.sleep(1.0)
    os._exit(3)  # the worker process dies mid-task


def _value(x):
    return x * 2


@needs_dask
@pytest.mark.slow
def test_on_a_local_cluster_a_task_that_raises_or_kills_its_worker_costs_only_itself():
    tasks = [grid.Task("ok0", _value, (0,)), grid.Task("raises", _raise, ()),
             grid.Task("dies", _die, ()), grid.Task("ok3", _value, (3,))]
    with grid.executor(jobs=2) as ex:
        done = {d.index: d for d in ex.run(tasks)}
    assert sorted(done) == [0, 1, 2, 3]
    assert done[0].value == 0 and done[3].value == 6
    assert done[1].error == "ValueError: this task fails on purpose"
    assert done[2].error and "\n" not in done[2].error


def test_serial_executor_isolates_a_failing_task():
    done = list(grid.Serial().run([grid.Task("raises", _raise, ()), grid.Task("ok", _value, (2,))]))
    assert done[0].error.startswith("ValueError") and done[1].value == 4


@needs_dask
@pytest.mark.slow
def test_a_local_cluster_grid_gives_the_serial_accuracies(tiny_dir, tmp_path):
    args = ["--only", "pixels_svm", "hog_svm", "--preset", "smoke", "--seeds", "0", "1", "--data-dir", str(tiny_dir)]
    assert runner.main([*args, "--results-dir", str(tmp_path / "serial")]) == 0
    assert runner.main([*args, "--results-dir", str(tmp_path / "dask"), "--jobs", "2"]) == 0
    serial, dask = (pd.read_csv(tmp_path / d / "summary.csv").set_index(["pipeline", "seed"]).sort_index()
                    for d in ("serial", "dask"))
    assert len(serial) == len(dask) == 4
    assert (serial.test_accuracy == dask.test_accuracy).all()
    assert (serial.concurrency == 1).all() and (dask.concurrency >= 2).all() and dask.host.notna().all()


@needs_dask
@pytest.mark.slow
def test_a_running_cluster_takes_the_grid_by_its_address(tiny_dir, tmp_path):
    import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        code = runner.main(["--only", "pixels_svm", "--preset", "smoke", "--seeds", "0", "1", "--data-dir",
                            str(tiny_dir), "--results-dir", str(tmp_path), "--scheduler", cluster.scheduler_address])
    frame = pd.read_csv(tmp_path / "summary.csv")
    assert code == 0 and len(frame) == 2 and (frame.status == "ok").all()


@needs_dask
def test_an_unreachable_scheduler_is_a_one_line_error(monkeypatch, tiny_dir, tmp_path, capsys):
    monkeypatch.setattr(grid, "CONNECT_TIMEOUT", "1s")
    code = runner.main(["--only", "pixels_svm", "--preset", "smoke", "--data-dir", str(tiny_dir),
                        "--results-dir", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "tcp://127.0.0.1:9" in err


class _LosesOne(grid.Executor):
    """An executor whose first task's worker 'dies': what the runner must turn into a failed row."""
    concurrent = True

    def run(self, tasks):
        for i, task in enumerate(tasks):
            yield grid.Done(i, error="KilledWorker: worker died") if i == 0 else grid.Done(i, task.fn(*task.args))


def test_a_pipeline_task_whose_worker_died_gets_a_failed_row_and_the_rest_finish(tiny_dir, tmp_path):
    ctx = RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, dataset="bars")
    ok = runner.run_pipelines(["pixels_svm", "hog_svm"], [load_folder(tiny_dir)], ctx, [0], _LosesOne())
    frame = pd.read_csv(tmp_path / "summary.csv").set_index("pipeline")
    assert not ok
    assert frame.loc["pixels_svm", "status"] == "failed" and "KilledWorker" in frame.loc["pixels_svm", "error"]
    assert frame.loc["hog_svm", "status"] == "ok"
    resumed = RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, resume=True, dataset="bars")
    assert [name for name, _ in runmod.plan_runs(["pixels_svm", "hog_svm"], load_folder(tiny_dir), resumed, [0])] \
        == ["pixels_svm"]


def test_a_failed_experiment_arm_is_listed_apart_and_resume_reruns_only_it(tiny_dir, tmp_path):
    data = load_folder(tiny_dir)
    ctx = RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, dataset=data.name)
    plan = plan_experiment("features", data, ctx)
    arms = len(plan.pending())
    [(_, path)] = list(run_plans([plan], _LosesOne()))
    first = json.loads(path.read_text())
    assert len(first["failed"]) == 1 and len(first["rows"]) == arms - 1
    lost = first["failed"][0]["seed"]  # its seed leaves every arm of the verdict, so that arms stay paired
    verdict = experiment("features").verdict(first)
    assert "1 failed run(s) left out" in verdict.why and f"({arms // 2 - 1} stored runs" in verdict.why
    assert sum(r["seed"] == lost for r in first["rows"]) == arms // 2 - 1  # the file keeps them
    assert all(r["concurrency"] >= 1 and r["host"] for r in first["rows"])
    again = plan_experiment("features", data, RunContext("smoke", 0, ctx.device, tmp_path, resume=True,
                                                         dataset=data.name))
    assert len(again.pending()) == 1 and again.resumed == arms - 1
    [(_, path)] = list(run_plans([again], grid.Serial()))
    second = json.loads(path.read_text())
    assert not second["failed"] and len(second["rows"]) == arms and second["resumed"] == arms - 1
    assert not again.partial.exists()
    other = RunContext("smoke", 0, ctx.device, tmp_path, resume=True, compile=True, dataset=data.name)
    assert plan_experiment("features", data, other).resumed == 0  # another setting: nothing of it is reused


class _KilledAfterTwo(grid.Serial):
    """A grid 'killed' after its first two tasks finish (before the experiment's file is written)."""

    def run(self, tasks):
        yield from list(super().run(tasks[:2]))
        raise KeyboardInterrupt


def test_arm_rows_are_kept_as_they_finish_so_a_crash_loses_none(tiny_dir, tmp_path):
    data = load_folder(tiny_dir)
    ctx = RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, dataset=data.name)
    plan = plan_experiment("features", data, ctx)
    with pytest.raises(KeyboardInterrupt):
        list(run_plans([plan], _KilledAfterTwo()))
    assert not plan.path.exists()
    kept = [json.loads(line) for line in plan.partial.read_text().splitlines()]
    assert len(kept) == 2 and all(r["task"] for r in kept)
    again = plan_experiment("features", data, RunContext("smoke", 0, ctx.device, tmp_path, resume=True,
                                                         dataset=data.name))
    assert again.resumed == 2 and len(again.pending()) == len(plan.items) - 2


def test_without_dask_jobs_fail_with_one_line_naming_the_extra(monkeypatch, tiny_dir, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    code = runner.main(["--only", "pixels_svm", "--preset", "smoke", "--jobs", "2", "--data-dir", str(tiny_dir),
                        "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and grid.CLUSTER_EXTRA in err
    assert not (tmp_path / "summary.csv").exists()


@pytest.mark.parametrize("flags, needle", [(["--jobs", "0"], "--jobs"),
                                           (["--jobs", "2", "--scheduler", "tcp://x:1"], "do not combine")])
def test_bad_grid_flags_are_one_line_errors(flags, needle, capsys):
    assert runner.main(["--only", "pixels_svm", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def _extract_in(cache: str, out) -> None:
    from pipelines.handcrafted.common import CachedExtractor
    from pipelines.handcrafted.features import HOGFeatures
    from conftest import bars
    x, _ = bars(400, seed=5)
    features, _ = CachedExtractor(HOGFeatures(n_jobs=1), Path(cache))(x)
    out.put(features.sum(dtype=np.float64))


def test_tasks_sharing_the_feature_cache_at_once_never_corrupt_it(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_extract_in, args=(str(tmp_path), out)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    sums = [out.get(timeout=5) for _ in procs]
    from pipelines.handcrafted.common import CachedExtractor
    from pipelines.handcrafted.features import HOGFeatures
    from conftest import bars
    x, _ = bars(400, seed=5)
    expected = HOGFeatures(n_jobs=1).fit(x).transform(x)
    cached, hit = CachedExtractor(HOGFeatures(n_jobs=1), tmp_path)(x)
    assert hit == "hit" and np.array_equal(cached, expected)
    assert all(s == expected.sum(dtype=np.float64) for s in sums)


@pytest.mark.slow
def test_several_datasets_are_one_grid_with_their_rows_apart(tmp_path):
    from conftest import real_data_available
    if not real_data_available():
        pytest.skip("Fashion-MNIST is not installed")
    code = runner.main(["--only", "pixels_svm", "--preset", "smoke", "--seeds", "0", "1", "--dataset", "digits",
                        "fashion-mnist", "--results-dir", str(tmp_path), "--report"])
    frame = pd.read_csv(tmp_path / "summary.csv")
    assert code == 0 and sorted(zip(frame.dataset, frame.seed)) == [("digits", 0), ("digits", 1),
                                                                    ("fashion-mnist", 0), ("fashion-mnist", 1)]
    assert (tmp_path / "datasets" / "digits" / "report.md").exists() and (tmp_path / "report.md").exists()


def test_data_dir_goes_with_one_dataset(tiny_dir, capsys):
    assert runner.main(["--only", "pixels_svm", "--dataset", "digits", "cifar10", "--data-dir", str(tiny_dir)]) == 2
    assert "one --dataset" in capsys.readouterr().err


@needs_dask
@pytest.mark.slow
def test_bench_grid_speedup_runs_both_ways_and_writes_its_summary(tmp_path):
    proc = run_script("bench/grid_speedup.py", "--experiments", "anatomy", "--preset", "smoke", "--work-dir",
                  str(tmp_path / "work"), "--out", str(tmp_path / "out.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert set(out["wall_seconds"]) == {"1", "2"} and out["serial"]["anatomy"]["verdict"] == \
        out["parallel"]["anatomy"]["verdict"]


@pytest.mark.slow
def test_bench_time_to_accuracy_measures_as_mlperf_does(tiny_dir, tmp_path):
    proc = run_script("bench/time_to_accuracy.py", "--preset", "smoke", "--hand-seeds", "0", "--targets", "0.0", "1.01",
                      "--handcrafted", "hog_kernel_svm", "--data-dir", str(tiny_dir), "--results-dir", str(tmp_path))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = pd.read_csv(tmp_path / "summary.csv")
    assert set(rows.pipeline) == {"hog_kernel_svm", "cnn28_fast"} and (rows.status == "ok").all()
    out = json.loads((tmp_path / "reach.json").read_text())
    easy, impossible = out["targets"][1], out["targets"][2]
    assert easy["mlperf"]["reached"] == 5 and len(easy["mlperf"]["kept"]) == 3  # the fastest and slowest dropped
    clocks = sorted(easy["clock_seconds"].values())
    assert easy["mlperf"]["kept"] == clocks[1:-1] and easy["ratio"] > 0
    assert impossible["mlperf"]["mean"] is None and "not reached" in proc.stdout
    too_few = run_script("bench/time_to_accuracy.py", "--seeds", "0", "1")
    assert too_few.returncode == 2 and "at least 5" in too_few.stderr


def test_bench_time_to_accuracy_defaults_to_the_hand_crafted_side_chosen_on_validation():
    import importlib.util
    from pipelines.tuning import validation_scores
    spec = importlib.util.spec_from_file_location("tta", ROOT / "bench" / "time_to_accuracy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    scores = validation_scores()
    chosen = bench.default_handcrafted()
    assert all(scores[chosen] >= scores[n] for n in bench.HANDCRAFTED if n in scores)


def test_mlperf_summary_drops_the_fastest_and_slowest_and_counts_misses():
    from pipelines.analysis.reach import mlperf_summary
    assert mlperf_summary([5.0, 1.0, 3.0, 4.0, 2.0])["mean"] == 3.0
    one_miss = mlperf_summary([5.0, None, 3.0, 4.0, 2.0])
    assert one_miss["kept"] == [3.0, 4.0, 5.0] and one_miss["missed"] == 1  # the miss is the slowest, dropped
    assert mlperf_summary([5.0, None, None, 4.0, 2.0])["mean"] is None
    assert mlperf_summary([1.0, 2.0, 3.0])["mean"] is None  # fewer than five runs
