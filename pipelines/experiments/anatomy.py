"""The compute anatomy of AlexNet-224 (the chapter's exercises 4a and 4b): parameters, FLOPs, memory and time
per layer, counted exactly and measured on the device."""
from __future__ import annotations

import pandas as pd

from ..analysis.claims import NOT_SUPPORTED, SUPPORTED
from ..analysis.tables import fmt, md_table
from .base import Experiment
from .engine import ExpSize


class Anatomy(Experiment):
    name, title = "anatomy", "Compute anatomy of AlexNet-224 (exercises 4a, 4b)"
    exercises = ("4a", "4b")
    recipe_batch = 128  # the chapter's batch for AlexNet: where the activations are weighed against the weights
    description = "AlexNet-224 parameters, FLOPs, memory and time per layer"
    claim = ("In AlexNet the fully connected layers hold most parameters while the convolutions do most of the "
             "compute.")
    rule = ("exact counts, no seeds: supported if the fully connected layers hold > 50% of the parameters and the "
            "convolutions > 50% of the forward FLOPs; else not supported")
    sizes = {"smoke": ExpSize(0, (0,)), "cpu": ExpSize(0, (0,))}
    needs_seeds = False  # exact counts

    def measure(self, ctx, size, recipe):
        from ..distributed import torch_device
        from ..learned.anatomy import layer_table
        return layer_table(batch=2 if recipe == "smoke" else 16, repeats=1 if recipe == "smoke" else 3,
                           device=torch_device(ctx.device.kind))

    def judge(self, rows, exp):
        fc_params = rows[rows.layer == "Linear"].params.sum() / rows.params.sum()
        conv_flops = rows[rows.layer == "Conv2d"].flops.sum() / rows.flops.sum()
        conv_time = rows[rows.layer == "Conv2d"].forward_ms.sum() / rows.forward_ms.sum()
        match = ("analytic FLOPs equal torch's counter at every layer" if (rows.flops == rows.flops_torch).all()
                 else "analytic FLOPs DIFFER from torch's counter at some layer")
        return (f"FC layers: {fc_params:.1%} of parameters; convolutions: {conv_flops:.1%} of FLOPs, "
                f"{conv_time:.1%} of measured forward time",
                SUPPORTED if fc_params > 0.5 and conv_flops > 0.5 else NOT_SUPPORTED, match)

    def answer(self, exp, exercise=""):
        frame = pd.DataFrame(exp["rows"])
        if exercise == "4b":
            conv = frame[frame.layer == "Conv2d"]
            top = layer_names(frame.layer)[int(frame.flops.idxmax())]
            return (f"the convolutions: {conv.flops.sum() / frame.flops.sum():.1%} of the forward FLOPs "
                    f"({frame.flops.sum() / 1e9:.2f} GFLOPs per image; {top} alone {frame.flops.max() / frame.flops.sum():.1%}) "
                    f"and {conv.forward_ms.sum() / frame.forward_ms.sum():.1%} of the measured forward time")
        weights = 4 * frame.params.sum()
        fc = frame[frame.layer == "Linear"].params.sum() / frame.params.sum()
        acts = self.recipe_batch * frame.activation_bytes.sum()
        return (f"the weights: {weights / 2**20:.0f} MiB in fp32 ({fc:.1%} in the fully connected layers), held again "
                f"for their gradients in training; one image's forward activations take "
                f"{frame.activation_bytes.sum() / 2**20:.1f} MiB, {acts / 2**20:.0f} MiB at the recipe's batch of "
                f"{self.recipe_batch}, so the weights dominate up to a batch of about "
                f"{weights / frame.activation_bytes.sum():.0f} images and the activations beyond it")

    def body(self, inp, exp):
        frame = pd.DataFrame(exp["rows"])
        device = frame.device[0] if "device" in frame else "cpu"
        rows = [[r.index, r.layer, r.output_shape, fmt(int(r.params)), fmt(int(r.flops)), fmt(int(r.flops_torch)),
                 f"{r.activation_bytes / 1024:.1f}", f"{r.forward_ms:.2f}"] for r in frame.itertuples()]
        table = md_table(["#", "layer", "output", "params", "FLOPs (analytic)", "FLOPs (torch counter)",
                          "activation KiB/img", f"forward ms (batch {int(frame.batch[0])}, {device})"], rows)
        conv, fc = frame[frame.layer == "Conv2d"], frame[frame.layer == "Linear"]
        return (f"{table}\n\nTotals: {frame.params.sum():,} parameters ({fc.params.sum() / frame.params.sum():.1%} in "
                f"the fully connected layers); {frame.flops.sum() / 1e9:.2f} GFLOPs per image forward "
                f"({conv.flops.sum() / frame.flops.sum():.1%} in the convolutions); activations "
                f"{frame.activation_bytes.sum() / 2**20:.2f} MiB per image (fp32). {self.judge(frame, exp)[2]}.")


def layer_names(layers) -> list[str]:
    """conv1..conv5, fc6..fc8 as the AlexNet paper numbers them; other layers keep their class name."""
    out, conv, fc = [], 0, 0
    for layer in layers:
        conv, fc = conv + (layer == "Conv2d"), fc + (layer == "Linear")
        out.append(f"conv{conv}" if layer == "Conv2d" else f"fc{5 + fc}" if layer == "Linear" else layer)
    return out
