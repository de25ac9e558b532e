"""The shared ``run`` of the learned pipelines: train with ``Trainer``, evaluate, draw conv1's filters."""
from __future__ import annotations

import functools
import hashlib
from dataclasses import replace
from typing import ClassVar

import numpy as np

from .. import distributed as dist
from ..base import Outcome, Pipeline, RunContext
from ..curves import curve_of
from ..datasets import Dataset, split
from ..figures import filter_grid
from ..store import artifact_path, filters_figure, save_array
from .models import first_conv, network
from .precision import autocast
from .trainer import TrainConfig, Trainer, TrainingError, evaluate, fmt_duration, images_tensor


def train_accuracy(model, x_tr: np.ndarray, y_tr: np.ndarray, cfg: TrainConfig, batch: int, precision: str) -> float:
    """Accuracy in eval mode (dropout off) on the first ``cfg.train_score_max`` training images, as the
    hand-crafted pipelines score theirs, in the run's precision; untimed."""
    k = min(len(x_tr), cfg.train_score_max)
    device = next(model.parameters()).device
    pred = evaluate(model, images_tensor(x_tr[:k], device), cfg, autocast(precision, device), batch)
    return float(np.mean(pred.cpu().numpy() == y_tr[:k]))


@functools.lru_cache(maxsize=None)  # the code cannot change within a process; AlexNet takes ~0.6 s to build
def model_fingerprint(model: str) -> str:
    """A short hash of the network a building function makes with its default arguments (its layers, their
    shapes and settings, as torch prints them): which network a run trained. It does not see the
    initialisation."""
    return hashlib.sha256(repr(network(model)()).encode()).hexdigest()[:16]


class LearnedPipeline(Pipeline):
    """Subclasses set ``name`` and ``presets`` (``TrainConfig`` instances)."""
    Config = TrainConfig
    name: str
    eval_batch: ClassVar[dict[str, int]] = {"cpu": 1000, "cuda": 1000}  # speed only: images per prediction batch
    diverges = (TrainingError,)
    # whether the recipe may train in bf16 where it is faster (``--precision auto``): checked on the validation
    # split when the recipe was chosen (``results/tuning/<name>-precision.json``, ``bench/precision.py``), else fp32
    bf16: ClassVar[bool] = False

    def precision_policy(self, ctx: RunContext) -> str:
        """``--precision`` where given, else ``auto`` for a recipe validated in bf16, ``fp32`` for any other."""
        return ctx.precision if ctx.precision != "auto" else ("auto" if self.bf16 else "fp32")

    def with_settings(self, cfg: TrainConfig, **settings) -> TrainConfig:
        """``cfg`` with ``settings`` set over it; ``model_kwargs`` are merged into the network's arguments (one
        switch keeps the rest of the network), the one place network arguments are combined."""
        kwargs = settings.pop("model_kwargs", None)
        if kwargs is not None:
            settings["model_kwargs"] = tuple(sorted({**dict(cfg.model_kwargs), **dict(kwargs)}.items()))
        return replace(cfg, **settings)

    def record(self, cfg: TrainConfig) -> dict:
        """The configuration and the fingerprint of the network it trains (``model_source``)."""
        return {**super().record(cfg), "model_source": model_fingerprint(cfg.model)}

    def run(self, data: Dataset, cfg: TrainConfig, ctx: RunContext) -> Outcome:
        x_tr, y_tr, x_te, y_te = split(data, cfg.n_train, cfg.n_test, ctx.seed)
        paper = self.presets["paper"]
        batch = self.eval_batch.get(ctx.device.kind, 1000)
        trainer = Trainer(cfg, ctx, self.name, (paper.n_train or len(data.x_train)) * paper.epochs,
                          checkpoint=ctx.checkpoints, quiet=not ctx.checkpoints, eval_batch=batch,
                          identity={"config_hash": self.hash(cfg), "data_fingerprint": data.fingerprint},
                          precision=self.precision_policy(ctx))
        result = trainer.fit_predict(x_tr, y_tr, x_te, y_te if ctx.curves else None, len(data.class_names))
        st = result.state
        test_acc = float(np.mean(result.y_pred == y_te))
        if dist.is_main() and ctx.figures:
            self.draw_filters(result.model, ctx, test_acc, result.start_filters)
        values = {"test_accuracy": test_acc, "n_train": len(x_tr), "n_test": len(x_te), "image_size": cfg.image_size,
                  "train_accuracy": train_accuracy(result.model, x_tr, y_tr, cfg, batch, result.precision),
                  "epochs": st.images_seen / len(x_tr), "fit_seconds": st.train_seconds,
                  "predict_seconds": result.eval_seconds, "params": sum(p.numel() for p in result.model.parameters()),
                  "train_images_per_second": st.timed_images / st.timed_seconds if st.timed_seconds else None,
                  "precision": result.precision, "compiled": result.compiled, "images_seen": st.images_seen,
                  "time_budget_seconds": cfg.time_budget, "truncated": st.epoch < cfg.epochs,
                  "compile_seconds": result.compile_seconds,
                  "precision_probe_seconds": result.probed["seconds"] if result.probed else None,
                  "notes": self.notes(cfg, st, result.estimate_seconds)}
        return Outcome(values, curve=curve_of(st.history), y_true=y_te, y_pred=result.y_pred)

    @staticmethod
    def notes(cfg: TrainConfig, st, estimate: float | None) -> str:
        parts = [f"{st.epoch} of {cfg.epochs} epochs complete"]
        if st.epoch < cfg.epochs:
            parts.append(f"stopped by the {cfg.time_budget:.0f} s time budget")
        if estimate is not None:
            parts.append(f"full recipe estimated at {fmt_duration(estimate)} on this device")
        return "; ".join(parts)

    def draw_filters(self, model, ctx: RunContext, test_acc: float, start: np.ndarray | None = None) -> None:
        """Draw conv1 and save its weights as they end (``filters``) and, where given, as they started
        (``filters_start``: what training added is the difference)."""
        weights = first_conv(model).weight.detach().float().cpu().numpy()
        title = (f"{self.name} conv1 ({weights.shape[0]} filters {weights.shape[-1]}x{weights.shape[-1]}) - "
                 f"preset {ctx.preset}, {ctx.device.kind}, test acc {test_acc:.3f}")
        filter_grid(weights, filters_figure(ctx.results_dir, ctx.dataset, self.name), title)
        save_array(artifact_path(ctx.results_dir, "filters", ctx.key(self.name)), weights)
        if start is not None:
            save_array(artifact_path(ctx.results_dir, "filters_start", ctx.key(self.name)), start)
