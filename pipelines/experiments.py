"""The report's experiments: each tests one claim of the AlexNet chapter on real runs.

    python runner.py --experiment activation          # one experiment (cpu size)
    python runner.py --experiments all --preset smoke # every experiment, tiny

Each experiment has a ``smoke`` size (tests) and a ``cpu`` size (all together about 30 minutes on the
2-core dev machine). Results go to ``results/experiments/<name>.json`` (atomic), one row per run; the
report (``pipelines/report.py``) aggregates them as mean ± std over seeds.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import REGISTRY
from .base import RunContext
from .data import Dataset, split
from .results import atomic_write_text, provenance

LINEAR_FEATURES = ("pixels_svm", "hog_svm", "sift_bovw", "sift_fisher")


@dataclass(frozen=True)
class ExpSize:
    """How big an experiment runs: training images, test images, seeds, and the CNN training length."""
    n_train: int
    n_test: int | None
    seeds: tuple[int, ...]
    epochs: int
    sizes: tuple[int, ...] = ()          # learning curves only
    many_seeds_up_to: int = 0            # learning curves: all seeds for sizes up to this, else the first
    min_steps: int = 0                   # learning curves: at least this many SGD steps per CNN run


SIZES = {
    "smoke": ExpSize(n_train=600, n_test=500, seeds=(0,), epochs=2, sizes=(200, 600), many_seeds_up_to=200,
                     min_steps=20),
    "cpu": ExpSize(n_train=10_000, n_test=None, seeds=(0, 1, 2), epochs=8, sizes=(500, 2000, 8000, 30000),
                   many_seeds_up_to=2000, min_steps=1000),
}
# The 28x28 CNN trains with SGD + momentum (the LeNet runs keep the d2l recipe: plain SGD, lr 0.9, batch 256).
CNN28 = {"lr": 0.05, "momentum": 0.9, "batch_size": 128}
LENET = {"lr": 0.9, "momentum": 0.0, "batch_size": 256}


def train_cnn(data_split, model: str, ctx: RunContext, *, epochs: int, lr: float, batch_size: int = 256,
              model_kwargs: tuple = (), augment: bool = False, momentum: float = 0.0) -> dict:
    """Train one small CNN with the shared fast loop; report test and (eval-mode) train accuracy."""
    import torch

    from .learned import trainer as tr
    x_tr, y_tr, x_te, y_te = data_split
    cfg = tr.TrainConfig(model=model, image_size=28, epochs=epochs, batch_size=batch_size, lr=lr,
                         momentum=momentum, model_kwargs=model_kwargs, augment=augment, eval_batch_size=2000)
    start = time.perf_counter()
    try:
        result = tr.Trainer(cfg, ctx, f"exp-{model}", recipe_images=len(x_tr) * epochs, checkpoint=False,
                            quiet=True).fit_predict(x_tr, y_tr, x_te)
    except tr.TrainingError as exc:  # a diverged run is a finding, not a crash
        return {"test_accuracy": 0.1, "train_accuracy": None, "diverged": True, "error": str(exc),
                "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    sub = slice(0, min(len(x_tr), 10_000))
    device = next(result.model.parameters()).device
    train_pred = tr.evaluate(result.model, torch.from_numpy(x_tr[sub]).to(device), cfg, tr.nullcontext())
    return {"test_accuracy": float(np.mean(result.y_pred == y_te)),
            "train_accuracy": float(np.mean(train_pred.cpu().numpy() == y_tr[sub])),
            "diverged": False, "seconds": seconds, "epochs": epochs}


def run_handcrafted(name: str, data: Dataset, ctx: RunContext, n_train: int, n_test: int | None) -> dict:
    pipeline = REGISTRY[name].load()
    cfg = dataclasses.replace(pipeline.config("cpu"), n_train=n_train, n_test=n_test)
    if "n_words" in {f.name for f in dataclasses.fields(cfg)} and ctx.preset == "smoke":
        cfg = dataclasses.replace(cfg, n_words=min(cfg.n_words, 16), n_sample=20_000)
    out = pipeline.run(data, cfg, dataclasses.replace(ctx, figures=False))
    return {"test_accuracy": out.test_accuracy, "train_accuracy": out.train_accuracy,
            "seconds": (out.feature_seconds or 0) + out.extra.get("encode_seconds", 0) + out.fit_seconds
            + out.predict_seconds}


def cnn_epochs(n: int, size: ExpSize, batch_size: int) -> int:
    """Enough epochs for ``min_steps`` SGD steps (small sets need many passes), never fewer than ``epochs``."""
    return max(size.epochs, math.ceil(size.min_steps * batch_size / max(n, 1)))


def exp_data(data: Dataset, ctx: RunContext, size: ExpSize) -> list[dict]:
    """Learning curves: test accuracy against training-set size, hand-crafted and learned."""
    rows = []
    for n in size.sizes:
        seeds = size.seeds if n <= size.many_seeds_up_to else size.seeds[:1]
        for seed in seeds:
            sctx = dataclasses.replace(ctx, seed=seed)
            for name in LINEAR_FEATURES:
                rows.append({"arm": name, "n_train": n, "seed": seed,
                             **run_handcrafted(name, data, sctx, n, size.n_test)})
            part = split(data, n, size.n_test, seed)
            for model, opt in (("lenet", LENET), ("cnn28", CNN28)):
                rows.append({"arm": model, "n_train": n, "seed": seed,
                             **train_cnn(part, model, sctx, epochs=cnn_epochs(n, size, opt["batch_size"]), **opt)})
    return rows


def exp_features(data: Dataset, ctx: RunContext, size: ExpSize) -> list[dict]:
    """Features matter: the same linear SVM on pixels, HOG, SIFT-BoVW and SIFT Fisher vectors."""
    return [{"arm": name, "n_train": size.n_train, "seed": seed,
             **run_handcrafted(name, data, dataclasses.replace(ctx, seed=seed), size.n_train, size.n_test)}
            for seed in size.seeds for name in LINEAR_FEATURES]


def exp_activation(data: Dataset, ctx: RunContext, size: ExpSize) -> list[dict]:
    """Sigmoid against ReLU at the same Xavier init and learning rate (plain SGD, batch 256, as in d2l),
    for LeNet and the 28x28 CNN, at the LeNet recipe's lr 0.9 and at 0.1."""
    rows = []
    for seed in size.seeds:
        part = split(data, size.n_train, size.n_test, seed)
        sctx = dataclasses.replace(ctx, seed=seed)
        for model in ("lenet", "cnn28"):
            for lr in (0.9, 0.1):
                for act in ("sigmoid", "relu"):
                    rows.append({"arm": f"{model} {act}", "model": model, "activation": act, "lr": lr,
                                 "seed": seed, "n_train": size.n_train,
                                 **train_cnn(part, model, sctx, epochs=2 * size.epochs, lr=lr,
                                             model_kwargs=(("activation", act),))})
    return rows


def exp_dropout(data: Dataset, ctx: RunContext, size: ExpSize) -> list[dict]:
    """Dropout 0.5 on the hidden layer of the 28x28 CNN, on and off: test accuracy and train/test gap."""
    rows = []
    for seed in size.seeds:
        part = split(data, size.n_train, size.n_test, seed)
        for p in (0.5, 0.0):
            r = train_cnn(part, "cnn28", dataclasses.replace(ctx, seed=seed), epochs=2 * size.epochs, **CNN28,
                          model_kwargs=(("activation", "relu"), ("dropout", p)))
            rows.append({"arm": f"dropout {p}", "dropout": p, "seed": seed, "n_train": size.n_train, **r})
    return rows


def exp_augmentation(data: Dataset, ctx: RunContext, size: ExpSize) -> list[dict]:
    """Random horizontal flips and 2-pixel shifted crops, on and off, for the 28x28 CNN."""
    rows = []
    for seed in size.seeds:
        part = split(data, size.n_train, size.n_test, seed)
        for aug in (True, False):
            r = train_cnn(part, "cnn28", dataclasses.replace(ctx, seed=seed), epochs=2 * size.epochs, **CNN28,
                          model_kwargs=(("activation", "relu"),), augment=aug)
            rows.append({"arm": "augmented" if aug else "plain", "augment": aug, "seed": seed,
                         "n_train": size.n_train, **r})
    return rows


def exp_anatomy(data: Dataset, ctx: RunContext, size: ExpSize) -> list[dict]:
    """AlexNet-224 layer by layer: parameters, FLOPs, activation memory (analytic, checked against
    ``torch.utils.flop_counter``) and measured forward time per layer on this device."""
    from .learned.anatomy import layer_table
    return layer_table(batch=2 if ctx.preset == "smoke" else 16, repeats=1 if ctx.preset == "smoke" else 3)


EXPERIMENTS = {
    "data": (exp_data, "learning curves: accuracy against training-set size, hand-crafted and CNNs"),
    "features": (exp_features, "features matter: pixels, HOG, SIFT-BoVW, SIFT-FV with one linear SVM"),
    "activation": (exp_activation, "sigmoid against ReLU at the same init and learning rate"),
    "dropout": (exp_dropout, "dropout on and off: test accuracy and train/test gap"),
    "augmentation": (exp_augmentation, "flips and crops on and off"),
    "anatomy": (exp_anatomy, "AlexNet-224 parameters, FLOPs, memory and time per layer"),
}


def run_experiment(name: str, data: Dataset, ctx: RunContext) -> Path:
    """Run one experiment at the context's size and write its JSON atomically."""
    fn, description = EXPERIMENTS[name]
    size = SIZES["smoke" if ctx.preset == "smoke" else "cpu"]
    prov, started_at = provenance(), datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    rows = fn(data, ctx, size)
    payload = {"experiment": name, "description": description, "size": ctx.preset if ctx.preset == "smoke"
               else "cpu", "config": dataclasses.asdict(size), "device": ctx.device.kind,
               "device_name": ctx.device.name, "dataset": data.name, "started_at": started_at,
               "seconds": round(time.perf_counter() - start, 1), **prov, "rows": rows}
    path = ctx.results_dir / "experiments" / f"{name}.json"
    atomic_write_text(path, json.dumps(payload, indent=1, default=float))
    return path
