"""Memory bandwidth (the chapter's exercise 4c): AlexNet-224's layers on this device's measured roofline."""
from __future__ import annotations

import pandas as pd

from ..analysis.plots import roofline
from ..analysis.tables import fmt, md_table
from .anatomy import layer_names
from .base import Experiment
from .engine import ExpSize


class Roofline(Experiment):
    name, title = "roofline", "Memory bandwidth: AlexNet-224 on a roofline (exercise 4c)"
    exercises = ("4c",)
    description = ("bytes moved and FLOPs per byte of each AlexNet-224 layer at batch 1 and at the recipe's batch, "
                   "placed under this device's measured peak FLOP/s and memory bandwidth")
    sizes = {"smoke": ExpSize(0, (0,)), "cpu": ExpSize(0, (0,))}
    batches = {"smoke": (1, 4), "cpu": (1, 128)}  # 128: the chapter's batch for AlexNet
    peaks = {"smoke": {"matmul_n": 256, "copy_mib": 8, "repeats": 2},
             "cpu": {"matmul_n": 2048, "copy_mib": 256, "repeats": 5}}

    def measure(self, ctx, size, recipe):
        from ..distributed import torch_device
        from ..learned.anatomy import achieved_flops, device_peaks, layer_traffic
        device, which = torch_device(ctx.device.kind), recipe
        peaks = device_peaks(device, **self.peaks[which])
        rows = []
        for batch in self.batches[which]:
            achieved = achieved_flops(batch, device, repeats=1 if which == "smoke" else 3)
            for row, measured in zip(layer_traffic(batch), achieved):
                rows.append({**row, **peaks, "achieved_flops": measured,
                             "bound": ("memory" if row["intensity"] < peaks["ridge"] else "compute")
                             if row["flops"] else "–"})
        return rows

    @staticmethod
    def named(exp: dict) -> pd.DataFrame:
        """The stored rows, each layer named as the AlexNet paper numbers it."""
        frame = pd.DataFrame(exp["rows"])
        return frame.assign(name=[n for _, g in frame.groupby("batch", sort=False) for n in layer_names(g.layer)])

    def answer(self, exp, exercise=""):
        return self.bound_layers(self.named(exp))

    @staticmethod
    def bound_layers(frame: pd.DataFrame) -> str:
        """Which layers the bandwidth limits, per batch size."""
        parts = []
        for batch, g in frame[frame.flops > 0].groupby("batch"):
            memory = list(g.name[g.bound == "memory"])
            verb = "sits" if len(memory) == 1 else "sit"
            parts.append(f"at batch {batch}, " + (f"{', '.join(memory)} {verb} below the ridge point (bandwidth-bound)"
                                                  if memory else "every layer sits above the ridge point "
                                                                 "(compute-bound)"))
        return "; ".join(parts)

    def body(self, inp, exp):
        frame = self.named(exp)
        path = roofline(frame, inp.figures / f"exp_{self.name}.png")
        peak = frame.iloc[0]
        rows = [[r.name, r.batch, fmt(r.flops / 1e6, 1), fmt(r.bytes_read / 2**20, 2), fmt(r.bytes_written / 2**20, 2),
                 fmt(r.intensity, 1), r.bound, fmt(r.achieved_flops / 1e9, 1) if r.flops else "–"]
                for r in frame[frame.flops > 0].itertuples()]
        table = md_table(["layer", "batch", "MFLOPs", "MiB read", "MiB written", "FLOPs/byte", "bound",
                          "measured GFLOP/s"], rows)
        return (f"![roofline](figures/{path.name})\n\nThis device ({peak.device}): {peak.peak_flops / 1e9:.1f} "
                f"GFLOP/s on a {int(peak.matmul_n)}² fp32 matmul, {peak.bandwidth / 1e9:.1f} GB/s on a "
                f"{int(peak.copy_mib)} MiB copy (read + write), so the ridge point is {peak.ridge:.1f} FLOPs per "
                f"byte. These ceilings are what a plain matmul and a plain copy reached: a layer drawn above the roof ran "
                f"faster than that matmul (oneDNN's convolutions can), or, left of the ridge, moved fewer bytes "
                f"through main memory than counted (caches).\n\n{table}\n\nBytes are a lower bound (weights read once per batch, each activation read "
                f"and written once, fp32); pooling and activation layers move bytes but do no counted FLOPs and are "
                f"left out. **Answer:** {self.bound_layers(frame)}.")
