"""The shared ``run`` of the learned pipelines: train with ``Trainer``, evaluate, draw conv1's filters."""
from __future__ import annotations

import numpy as np

from .. import distributed as dist
from ..base import Outcome, Pipeline, RunContext
from ..curves import curve_of
from ..data import Dataset, split
from ..figures import filter_grid
from ..results import artifact_path, save_array
from .models import first_conv
from .precision import autocast_for
from .trainer import TrainConfig, Trainer, effective_budget, evaluate, fmt_duration, images_tensor


def train_accuracy(model, x_tr: np.ndarray, y_tr: np.ndarray, cfg: TrainConfig) -> float:
    """Accuracy in eval mode (dropout off) on the first ``cfg.train_score_max`` training images, as the
    hand-crafted pipelines score theirs; untimed."""
    k = min(len(x_tr), cfg.train_score_max)
    device = next(model.parameters()).device
    pred = evaluate(model, images_tensor(x_tr[:k], device), cfg, autocast_for(device))
    return float(np.mean(pred.cpu().numpy() == y_tr[:k]))


class LearnedPipeline(Pipeline):
    """Subclasses set ``name`` and ``presets`` (``TrainConfig`` instances)."""
    Config = TrainConfig
    runs_on_accelerator = True
    name: str

    def run(self, data: Dataset, cfg: TrainConfig, ctx: RunContext) -> Outcome:
        x_tr, y_tr, x_te, y_te = split(data, cfg.n_train, cfg.n_test, ctx.seed)
        paper = self.presets["paper"]
        recipe_images = (paper.n_train or len(data.x_train)) * paper.epochs
        trainer = Trainer(cfg, ctx, self.name, recipe_images, checkpoint=ctx.checkpoints, quiet=not ctx.checkpoints)
        result = trainer.fit_predict(x_tr, y_tr, x_te, y_te if ctx.curves else None, len(data.class_names))
        st, budget = result.state, effective_budget(cfg, ctx)
        test_acc = float(np.mean(result.y_pred == y_te))
        if dist.is_main() and ctx.figures:
            self.draw_filters(result.model, ctx, test_acc)
        extra = {"precision": result.precision, "compiled": result.compiled, "images_seen": st.images_seen,
                 "time_budget_seconds": budget, "truncated": st.epoch < cfg.epochs,
                 "compile_seconds": None if result.compile_seconds is None else round(result.compile_seconds, 3),
                 "notes": self.notes(cfg, st, budget, result.estimate_seconds)}
        return Outcome(
            test_accuracy=test_acc, n_train=len(x_tr), n_test=len(x_te), image_size=cfg.image_size,
            train_accuracy=train_accuracy(result.model, x_tr, y_tr, cfg),
            epochs=round(st.images_seen / len(x_tr), 3), fit_seconds=st.train_seconds,
            predict_seconds=result.eval_seconds,
            train_images_per_second=st.timed_images / st.timed_seconds if st.timed_seconds else None,
            params=sum(p.numel() for p in result.model.parameters()), extra=extra, curve=curve_of(st.history),
            y_true=y_te, y_pred=result.y_pred)

    @staticmethod
    def notes(cfg: TrainConfig, st, budget: float | None, estimate: float | None) -> str:
        parts = [f"{st.epoch} of {cfg.epochs} epochs complete"]
        if st.epoch < cfg.epochs:
            parts.append(f"stopped by the {budget:.0f} s time budget")
        if estimate is not None:
            parts.append(f"full recipe estimated at {fmt_duration(estimate)} on this device")
        return "; ".join(parts)

    def draw_filters(self, model, ctx: RunContext, test_acc: float) -> None:
        weights = first_conv(model).weight.detach().float().cpu().numpy()
        title = (f"{self.name} conv1 ({weights.shape[0]} filters {weights.shape[-1]}x{weights.shape[-1]}) - "
                 f"preset {ctx.preset}, {ctx.device.kind}, test acc {test_acc:.3f}")
        filter_grid(weights, ctx.figures_dir / f"{self.name}_conv1.png", title)
        save_array(artifact_path(ctx.results_dir, "filters", ctx.key(self.name)),
                   weights)
