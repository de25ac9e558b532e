"""Learned side: the chapter's shapes and parameter counts, gradients, fast-vs-reference equality,
checkpoint/resume, NaN handling, DDP on gloo, and CUDA-only checks that skip on a CPU."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from contextlib import nullcontext
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest import ROOT, bars, run_script
from pipelines.base import DeviceInfo, RunContext
from pipelines.learned import trainer as tr
from pipelines.learned.checkpoints import CheckpointError
from pipelines.learned.models import Standardize, alexnet, cnn28, lenet
from pipelines.learned.batches import ERASE_AREA
from pipelines.store import config_hash

# (layer class, output shape) after each layer, as in d2l's tables for LeNet (7.6) and AlexNet (8.1).
LENET_TABLE = [("Conv2d", (6, 28, 28)), ("Sigmoid", (6, 28, 28)), ("AvgPool2d", (6, 14, 14)),
               ("Conv2d", (16, 10, 10)), ("Sigmoid", (16, 10, 10)), ("AvgPool2d", (16, 5, 5)),
               ("Flatten", (400,)), ("Linear", (120,)), ("Sigmoid", (120,)), ("Linear", (84,)),
               ("Sigmoid", (84,)), ("Linear", (10,))]
ALEXNET_TABLE = [("Conv2d", (96, 54, 54)), ("ReLU", (96, 54, 54)), ("MaxPool2d", (96, 26, 26)),
                 ("Conv2d", (256, 26, 26)), ("ReLU", (256, 26, 26)), ("MaxPool2d", (256, 12, 12)),
                 ("Conv2d", (384, 12, 12)), ("ReLU", (384, 12, 12)), ("Conv2d", (384, 12, 12)),
                 ("ReLU", (384, 12, 12)), ("Conv2d", (256, 12, 12)), ("ReLU", (256, 12, 12)),
                 ("MaxPool2d", (256, 5, 5)), ("Flatten", (6400,)), ("Linear", (4096,)), ("ReLU", (4096,)),
                 ("Dropout", (4096,)), ("Linear", (4096,)), ("ReLU", (4096,)), ("Dropout", (4096,)),
                 ("Linear", (10,))]


def conv(cin, cout, k):
    return cin * cout * k * k + cout


def fc(nin, nout):
    return nin * nout + nout


@pytest.mark.parametrize("build, size, table, params", [
    (lenet, 28, LENET_TABLE, conv(1, 6, 5) + conv(6, 16, 5) + fc(400, 120) + fc(120, 84) + fc(84, 10)),
    (alexnet, 224, ALEXNET_TABLE, conv(1, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3)
     + conv(384, 256, 3) + fc(6400, 4096) + fc(4096, 4096) + fc(4096, 10)),
])
def test_shapes_layer_by_layer_and_parameter_counts(build, size, table, params):
    model = build()
    x = torch.zeros(2, 1, size, size)
    seen = []
    for layer in model:
        x = layer(x)
        seen.append((type(layer).__name__, tuple(x.shape[1:])))
    assert seen == table
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("build, size", [(lenet, 28), (alexnet, 224)])
def test_no_nan_and_every_parameter_gets_a_gradient(build, size):
    torch.manual_seed(0)
    model = build()
    x = torch.rand(4, 1, size, size)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_xavier_init_is_applied():
    w = lenet()[7].weight  # 400 -> 120
    bound = (6 / (400 + 120)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound


def test_alexnet_learns_a_fixed_batch():
    """The recipe's optimiser drives AlexNet's loss down on one batch (cheap proof that it learns)."""
    torch.manual_seed(0)
    x, y = bars(16, seed=9)
    cfg = tr.TrainConfig(model="alexnet", image_size=224, batch_size=16, lr=0.01)
    model = tr.build_model(cfg, torch.device("cpu"))
    opt = tr.make_optimizer(model, cfg)
    xb, yb = tr.prepare(torch.from_numpy(x), 224), torch.from_numpy(y.astype(np.int64))
    losses = [tr.train_step(model, opt, xb, yb, nullcontext())[0].item() for _ in range(24)]
    assert all(np.isfinite(losses)) and np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.15, losses


def _bench_learned():
    spec = importlib.util.spec_from_file_location("bench_learned", ROOT / "bench" / "learned.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model_name, size", [("lenet", 28), ("alexnet", 224)])
def test_fast_and_reference_paths_give_the_same_loss(model_name, size):
    bench = _bench_learned()
    x, y = bars(8, seed=3)
    torch.manual_seed(0)
    model = tr.MODELS[model_name]().eval()  # eval: dropout off, so both see the same function
    fast = bench.fast_batch_loss(model, x, y, size, torch.device("cpu"))
    ref = bench.reference_batch_loss(model, x, y, size)
    assert abs(fast - ref) < 1e-5 * max(1.0, abs(ref))


def ctx_for(tmp_path, resume=False, seed=0):
    return RunContext("smoke", seed, DeviceInfo("cpu", "test cpu"), tmp_path, resume=resume)


SMALL = tr.TrainConfig(model="lenet", epochs=3, batch_size=32, lr=0.05, momentum=0.9, model_kwargs=(("activation", "relu"),))


ONECYCLE = dataclasses.replace(SMALL, schedule="onecycle", label_smoothing=0.1, nesterov=True, weight_decay=5e-4,
                               augment=True)


def _train(tmp_path, cfg=SMALL, resume=False, scored=False, data="bars 4", eval_batch=100):
    x, y = bars(512, seed=4)
    xt, yt = bars(100, seed=5)
    identity = {"config_hash": config_hash(dataclasses.asdict(cfg)), "data_fingerprint": data}
    trainer = tr.Trainer(cfg, ctx_for(tmp_path, resume), "lenet", recipe_images=6000, eval_batch=eval_batch,
                         identity=identity)
    return trainer.fit_predict(x, y, xt, yt if scored else None)


def test_one_cycle_schedule_warms_up_then_decays_to_near_zero(tmp_path):
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = tr.make_schedule(opt, dataclasses.replace(ONECYCLE, lr=0.4, epochs=4), steps_per_epoch=25)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = int(np.argmax(lrs))
    assert max(lrs) == pytest.approx(0.4) and 20 <= peak <= 30  # a quarter of the 100 planned steps
    assert lrs[0] < 0.4 / 10 and lrs[-1] < 0.4 / 100
    assert tr.make_schedule(opt, SMALL, 25) is None
    with pytest.raises(ValueError, match="unknown schedule"):
        tr.make_schedule(opt, dataclasses.replace(SMALL, schedule="cosine"), 25)


def test_curve_scores_the_test_images_after_each_epoch_outside_training_time(tmp_path, monkeypatch):
    real_score = tr.Trainer._score

    def slow_score(self, net, watch):
        time.sleep(1.0)
        return real_score(self, net, watch)

    monkeypatch.setattr(tr.Trainer, "_score", slow_score)
    start = time.perf_counter()
    result = _train(tmp_path, ONECYCLE, scored=True)
    assert time.perf_counter() - start - result.state.train_seconds >= 3.0  # the three 1 s scorings are not training
    from pipelines.curves import curve_of, time_to_reach
    curve = curve_of(result.state.history)
    assert [p["epoch"] for p in curve] == [1, 2, 3]
    seconds = [p["train_seconds"] for p in curve]
    assert seconds == sorted(seconds) and seconds[-1] == pytest.approx(result.state.train_seconds, abs=1e-3)
    final = float(np.mean(result.y_pred == bars(100, seed=5)[1]))
    assert curve[-1]["test_accuracy"] == pytest.approx(final, abs=1e-4)
    assert time_to_reach(curve, 0.0) == curve[0] and time_to_reach(curve, 1.01) is None
    assert "test_accuracy" not in _train(tmp_path / "plain").state.history[-1]  # no labels: nothing scored


def test_training_learns_separable_images(tmp_path):
    result = _train(tmp_path)
    assert result.state.epoch == 3 and result.state.images_seen == 3 * 512
    assert result.state.history[-1]["train_accuracy"] > 0.9
    assert result.estimate_seconds and result.estimate_seconds > 0


@pytest.mark.parametrize("cfg", [SMALL, ONECYCLE], ids=["constant", "onecycle"])
def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch, cfg):
    straight = _train(tmp_path / "a", cfg)
    real_epoch = tr.Trainer._run_epoch

    def crash_in_epoch_3(self, model, opt, sched, x, y, state, start, bar):
        if state.epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(self, model, opt, sched, x, y, state, start, bar)

    monkeypatch.setattr(tr.Trainer, "_run_epoch", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", cfg)
    monkeypatch.setattr(tr.Trainer, "_run_epoch", real_epoch)
    resumed = _train(tmp_path / "b", cfg, resume=True)
    assert resumed.state.epoch == 3
    assert [h["loss"] for h in resumed.state.history] == pytest.approx([h["loss"] for h in straight.state.history])
    np.testing.assert_array_equal(resumed.y_pred, straight.y_pred)


def test_corrupt_checkpoint_gives_one_line_error(tmp_path):
    _train(tmp_path)
    ckpt = next((tmp_path / "checkpoints" / "lenet").glob("*.pt"))
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as err:
        _train(tmp_path, resume=True)
    assert "corrupt" in str(err.value) and "start afresh" in str(err.value) and "\n" not in str(err.value)


def test_a_checkpoint_resumes_only_its_own_configuration_and_data(tmp_path):
    _train(tmp_path)
    assert _train(tmp_path, eval_batch=50, resume=True).state.epoch == 3  # a speed knob is no configuration
    with pytest.raises(CheckpointError, match="made with other configuration"):
        _train(tmp_path, dataclasses.replace(SMALL, lr=0.04), resume=True)
    with pytest.raises(CheckpointError, match="made with other data"):
        _train(tmp_path, data="other images", resume=True)


def test_nan_loss_fails_the_pipeline(tmp_path):
    cfg = dataclasses.replace(SMALL, lr=1e12, epochs=1)
    with pytest.raises(tr.TrainingError, match="loss became"):
        _train(tmp_path, cfg)


def test_time_budget_stops_training_and_says_so(tmp_path):
    cfg = dataclasses.replace(SMALL, epochs=1000, time_budget=1.0)
    result = _train(tmp_path, cfg)
    assert result.state.images_seen > 0 and result.state.epoch < 1000
    assert result.state.history[-1]["complete"] is False  # stopped inside an epoch, by the budget
    assert result.state.train_seconds < 30  # the budget, plus at most one step, even on a loaded machine


@pytest.mark.skipif(shutil.which("torchrun") is None and importlib.util.find_spec("torch.distributed.run") is None,
                    reason="torchrun not available")
def test_ddp_gloo_two_processes(tmp_path):
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
                           str(ROOT / "runner.py"), "--only", "lenet", "--preset", "smoke", "--results-dir", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frame = pd.read_csv(out / "summary.csv")
    assert len(frame) == 1 and frame.status[0] == "ok"  # only rank 0 wrote
    assert frame.test_accuracy[0] > 0.3
    assert (out / "runs.jsonl").read_text().count("\n") == 1
    curve = json.loads((out / "runs.jsonl").read_text())["curve"]  # time to accuracy, recorded by rank 0
    assert [p["epoch"] for p in curve] == list(range(1, int(frame.epochs[0]) + 1))
    assert curve[-1]["test_accuracy"] == pytest.approx(frame.test_accuracy[0], abs=1e-4)


def test_eval_batch_bench_times_each_size_and_refuses_a_handcrafted_pipeline():
    proc = run_script("bench/eval_batch.py", "--preset", "smoke", "--sizes", "500", "64", "--rounds", "1", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line.split(":")[0] for line in proc.stdout.splitlines()[1:]] == ["eval batch   500", "eval batch    64"]
    bad = run_script("bench/eval_batch.py", "--pipeline", "hog_svm", timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "learned pipeline" in bad.stderr


def test_cnn28_stem_sets_the_28x28_block_alone():
    convs = [m for m in cnn28(stem=16).modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs[:3]] == [(1, 16), (16, 48), (48, 48)]
    assert repr(cnn28()) == repr(cnn28(stem=24))  # the default is the width: the network as it was
    assert cnn28(stem=16)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in cnn28(stem=16).parameters()) == 161_466  # docs/pipelines.md's "161k parameters"


def test_layers_bench_times_each_stem_and_names_the_slowest_operations():
    proc = run_script("bench/cnn28_layers.py", "--preset", "smoke", "--stems", "16", "8", "--steps", "2",
                      "--rounds", "1", "--top", "3", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    heads = [line for line in proc.stdout.splitlines() if line.startswith("stem")]
    assert [h.split(":")[0] for h in heads] == ["stem  16", "stem   8"] and all("img/s" in h for h in heads)
    assert sum(line.startswith("  ") and "aten::" in line for line in proc.stdout.splitlines()) == 6
    bad = run_script("bench/cnn28_layers.py", "--stems", "0", timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.strip().count("\n") == 0


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.cuda
@cuda
def test_cuda_fast_path_trains_in_bf16(tmp_path):
    ctx = RunContext("smoke", 0, DeviceInfo("cuda", torch.cuda.get_device_name(0)), tmp_path)
    x, y = bars(1024, seed=6)
    xt, yt = bars(256, seed=7)
    cfg = tr.TrainConfig(model="alexnet", image_size=224, epochs=2, batch_size=128, lr=0.01)
    result = tr.Trainer(cfg, ctx, "alexnet", recipe_images=600_000).fit_predict(x, y, xt)
    assert result.precision in ("bf16-autocast", "fp32")
    assert np.mean(result.y_pred == yt) > 0.2


@pytest.mark.cuda
@cuda
def test_cuda_fast_and_reference_agree():
    bench = _bench_learned()
    x, y = bars(16, seed=8)
    model = tr.MODELS["alexnet"]().eval().cuda()
    fast = bench.fast_batch_loss(model, x, y, 224, torch.device("cuda"))
    ref = bench.reference_batch_loss(model, x, y, 224)
    assert abs(fast - ref) < 0.05 * max(1.0, abs(ref))  # bf16 autocast on the fast path


def test_augment_gives_each_image_its_own_flip_and_crop():
    """64 copies of one image come out as several different crops/flips, each one of the 50 possible views."""
    img = torch.from_numpy(bars(1, seed=5)[0][0])
    out = tr.augment(img.expand(64, 28, 28).contiguous(), torch.Generator().manual_seed(0))
    padded = [torch.nn.functional.pad(v, (2, 2, 2, 2)) for v in (img, img.flip(-1))]
    views = {p[dy:dy + 28, dx:dx + 28].numpy().tobytes() for p in padded for dy in range(5) for dx in range(5)}
    seen = {o.numpy().tobytes() for o in out}
    assert out.shape == (64, 28, 28) and out.dtype == torch.uint8
    assert seen <= views and len(seen) > 10


def test_random_erase_replaces_one_rectangle_in_the_chosen_share_of_images():
    """p=1 erases one axis-aligned rectangle in every image (its pixels differ from the constant image, the
    rest are untouched, its area within the bounds); p=0 changes nothing; p=0.5 about half; the same
    generator seed gives the same images."""
    x = torch.full((400, 1, 28, 28), 7, dtype=torch.uint8)
    out = tr.random_erase(x, torch.Generator().manual_seed(0), 1.0)
    assert out.shape == x.shape and out.dtype == torch.uint8
    for img in out[:, 0]:
        rows, cols = torch.nonzero(img != 7, as_tuple=True)
        box = img[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        area = box.numel() / 784
        assert ERASE_AREA[0] / 2 <= area <= ERASE_AREA[1] * 1.5  # rounding and clipping at the border
        assert (box != 7).float().mean() > 0.9  # the whole box is noise (a noise pixel may draw 7)
    assert torch.equal(tr.random_erase(x, torch.Generator().manual_seed(0), 0.0), x)
    half = (tr.random_erase(x, torch.Generator().manual_seed(1), 0.5) != 7).flatten(1).any(1).float().mean()
    assert 0.4 < half < 0.6
    assert torch.equal(out, tr.random_erase(x, torch.Generator().manual_seed(0), 1.0))
    grey = tr.augment(x[:, 0], torch.Generator().manual_seed(0), erase=1.0)  # through augment, grey in and out
    assert grey.shape == (400, 28, 28) and ((grey != 7) & (grey != 0)).flatten(1).any(1).all()


def test_compilation_and_checkpoint_saves_stay_out_of_training_time(tmp_path, monkeypatch):
    """A stand-in for torch.compile that takes 1.5 s at the first call, and checkpoint saves that take 0.5 s
    each: the row's compile time has the first, and training time has neither."""
    import time as _time

    class SlowFirstCall(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.compiled = net, False

        def forward(self, x):
            if not self.compiled:
                _time.sleep(1.5)
                self.compiled = True
            return self.net(x)

    save = tr.Checkpoints.save
    monkeypatch.setattr(tr.torch, "compile", SlowFirstCall)
    monkeypatch.setattr(tr.Checkpoints, "save", lambda self, *a: (_time.sleep(0.5), save(self, *a)))
    ctx = dataclasses.replace(ctx_for(tmp_path, False), compile=True)
    x, y = bars(256, seed=4)
    start = _time.perf_counter()
    result = tr.Trainer(dataclasses.replace(SMALL, epochs=2), ctx, "lenet", 1).fit_predict(x, y, x[:10])
    wall = _time.perf_counter() - start
    assert result.compile_seconds >= 1.5 and result.compiled
    assert result.state.train_seconds < wall - 1.5 - 2 * 0.5 + 0.2  # neither the compile nor the saves


def test_standardize_uses_the_training_images_statistics(tmp_path):
    x, y = bars(256, seed=4)
    cfg = dataclasses.replace(SMALL, standardize=True, epochs=1)
    model = tr.build_model(cfg, torch.device("cpu"), torch.from_numpy(x))
    layer = model[0]
    assert isinstance(layer, Standardize)
    assert layer.mean.item() == pytest.approx(x.mean() / 255, rel=1e-5)
    assert layer.std.item() == pytest.approx((x / 255).std(), rel=1e-3)
    out = layer(torch.from_numpy(x[:, None] / 255).float())
    assert abs(out.mean().item()) < 1e-4 and out.std().item() == pytest.approx(1.0, rel=1e-3)
    result = _train(tmp_path, cfg)  # trains, saves and scores through the extra layer
    assert result.state.epoch == 1


def test_lenet_modernisations_change_only_what_they_name():
    base, modern = lenet(), lenet(activation="relu", pool="max", dropout=0.5)
    assert [type(layer).__name__ for layer in modern] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
        "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [type(layer).__name__ for layer in base] == [name for name, _ in LENET_TABLE]  # the recipe unchanged
    assert sum(p.numel() for p in base.parameters()) == sum(p.numel() for p in modern.parameters())


def test_compile_warmup_leaves_batch_norm_statistics_alone(tmp_path):
    cfg = dataclasses.replace(SMALL, model="cnn28", model_kwargs=())
    trainer = tr.Trainer(cfg, ctx_for(tmp_path), "cnn28", recipe_images=1)
    model = tr.build_model(cfg, torch.device("cpu"))
    before = [b.clone() for b in model.buffers()]
    x, y = bars(64, seed=1)
    trainer._compile(model, torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)))
    assert before and all(torch.equal(a, b) for a, b in zip(before, model.buffers()))


def test_resume_refuses_a_checkpoint_of_another_process_count(tmp_path):
    _train(tmp_path, ONECYCLE)
    path = next((tmp_path / "checkpoints" / "lenet").glob("*.pt"))
    payload = torch.load(path, weights_only=False)
    payload["world_size"] = 2
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="made by 2 process"):
        _train(tmp_path, ONECYCLE, resume=True)


def test_a_cheaper_alexnet_follows_its_input_side():
    from pipelines.learned.models import alexnet
    for side, width, hidden in ((112, 0.5, 1024), (96, 0.25, 256)):
        model = alexnet(width=width, hidden=hidden, image_size=side)
        assert model(torch.zeros(2, 1, side, side)).shape == (2, 10)
        assert model[0].out_channels == round(96 * width) and model[-1].in_features == hidden


def test_training_memory_grows_with_the_batch():
    import sys
    from pipelines.learned.anatomy import memory_by_batch
    from pipelines.learned.trainer import TrainConfig
    if not sys.platform.startswith("linux"):
        pytest.skip("the CPU measurement reads Linux's /proc")
    memory = memory_by_batch(TrainConfig(model="cnn28"), (16, 512))
    assert memory[512]["peak_memory_bytes"] > 4 * memory[16]["peak_memory_bytes"] > 0
    assert "VmHWM" in memory[16]["memory_method"]


# Enough steps to learn 600 images: sigmoid LeNet needs hundreds, so the test takes ReLU at a matching rate.
COLOUR_RUNS = {"lenet": {"model_kwargs": (("activation", "relu"),), "lr": 0.1, "batch_size": 32},
               "cnn28": {"epochs": 8, "batch_size": 32}}  # the smoke preset's 15 steps are too few here


@pytest.mark.parametrize("name", list(COLOUR_RUNS))
def test_a_network_learns_colour_images_of_any_side(name, tmp_path):
    from conftest import colour_bars
    from pipelines import PIPELINES
    from pipelines.base import DeviceInfo, RunContext
    from pipelines.datasets import Dataset
    (x_tr, y_tr), (x_te, y_te) = colour_bars(600, seed=1), colour_bars(200, seed=2)
    data = Dataset(x_tr, y_tr, x_te, y_te, name="colour-bars", source="test", class_names=tuple("0123456789"))
    pipeline = PIPELINES[name].load()
    cfg = dataclasses.replace(pipeline.config("smoke"), n_train=None, n_test=None, **COLOUR_RUNS[name])
    ctx = RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, dataset=data.name)
    out = pipeline.run(data, cfg, ctx)
    assert out.values["test_accuracy"] > 0.3  # ten classes: chance is 0.1
    weights = np.load(tmp_path / "datasets" / "colour-bars" / "filters" / f"{name}-smoke-cpu-seed0.npy")
    assert weights.shape[1] == 3  # the first layer sees three channels, drawn in colour
    assert (tmp_path / "datasets" / "colour-bars" / "figures" / f"{name}_conv1.png").exists()


def test_augment_flips_and_crops_colour_images_along_their_width():
    from conftest import colour_bars
    x = tr.images_tensor(colour_bars(64, seed=4)[0], "cpu")
    out = tr.augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    grey = tr.augment(x[:, 0], torch.Generator().manual_seed(0))  # the same draws on one channel
    assert torch.equal(grey, out[:, 0])


def test_a_network_has_as_many_outputs_as_the_dataset_has_classes(tmp_path):
    from pipelines import PIPELINES
    from pipelines.base import DeviceInfo, RunContext
    from pipelines.datasets import Dataset
    (x_tr, y_tr), (x_te, y_te) = bars(240, seed=1, classes=12), bars(60, seed=2, classes=12)
    data = Dataset(x_tr, y_tr, x_te, y_te, name="twelve", source="test", class_names=tuple(map(str, range(12))))
    pipeline = PIPELINES["lenet"].load()
    cfg = dataclasses.replace(pipeline.config("smoke"), n_train=None, n_test=None, epochs=1)
    out = pipeline.run(data, cfg, RunContext("smoke", 0, DeviceInfo("cpu", "test cpu"), tmp_path, dataset="twelve"))
    assert len(out.y_pred) == 60 and 0 <= out.y_pred.min() and out.y_pred.max() < 12
