"""The CPU's matrix unit: does bf16 pay on this machine, and does a recipe keep its accuracy in it?

    python bench/precision.py                      # the probe's figures, each learned pipeline's cpu preset
    python bench/precision.py --validate cnn28     # fp32 and bf16 on the validation split; stores the verdict

The probe is the one the trainer runs before training under ``--precision auto`` (``learned/precision.py``):
a warm-up step, then ``PROBE_STEPS`` timed SGD steps of the pipeline's own network each way, on real batches;
it prints images per second each way and which it would keep (bf16 only at ``BF16_MARGIN`` or more). With
``--validate NAME``, the pipeline's ``cpu`` recipe trains on the validation split's pool in fp32 and in bf16 and
is scored on the validation images, with any time budget lifted so that both precisions do the same work (a
budget would let the faster one see more images: that is speed, which the probe measures, not accuracy);
``results/tuning/NAME-precision.json`` stores both scores and the rule's answer (bf16 allowed when its
validation accuracy is at least fp32's minus δ, the protocol's minimum effect), which the pipeline's ``bf16`` flag
must match (a test checks it). The machine's CPU and its matrix flags are printed with every figure.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines import PIPELINES, family, get  # noqa: E402
from pipelines.analysis.claims import DELTA  # noqa: E402
from pipelines.base import RunContext, cpu_name, select_device  # noqa: E402
from pipelines.datasets import open_dataset, validation_split  # noqa: E402
from pipelines.store import atomic_write_json, provenance, tuning_path  # noqa: E402

LEARNED = [n for n in PIPELINES if family(n) == "learned"]


def probe_figures(name: str, data, preset: str) -> dict:
    """The trainer's probe on ``name``'s preset network and the first training batches."""
    import torch
    from pipelines.learned import trainer as tr
    cfg = get(name).config(preset)
    x = tr.images_tensor(data.x_train[: 4 * cfg.batch_size], torch.device("cpu"))
    y = torch.from_numpy(data.y_train[: 4 * cfg.batch_size].astype("int64"))
    model = tr.build_model(cfg, torch.device("cpu"), x, len(data.class_names))
    batches = [(tr.prepare(x[i * cfg.batch_size:(i + 1) * cfg.batch_size], cfg.image_size),
                y[i * cfg.batch_size:(i + 1) * cfg.batch_size]) for i in range(3)]
    chosen, figures = tr.probe(model, batches, lambda net: tr.make_optimizer(net, cfg), tr.probe_step)
    return {"chosen": chosen, **figures}


def validate(name: str, data, device) -> dict:
    """The cpu recipe on the validation split in fp32 and in bf16, the same work each way (no time budget); the
    rule's answer, stored."""
    pipeline, val = get(name), validation_split(data)
    cfg = dataclasses.replace(pipeline.config("cpu"), n_test=None, time_budget=None)
    scores = {}
    for precision in ("fp32", "bf16"):
        ctx = RunContext("cpu", 0, device, Path("results"), figures=False, checkpoints=False, curves=False,
                         precision=precision)
        start = time.perf_counter()
        values = pipeline.run(val, cfg, ctx).values
        scores[precision] = {"validation_accuracy": round(values["test_accuracy"], 4),
                             "fit_seconds": round(values["fit_seconds"], 1),
                             "seconds": round(time.perf_counter() - start, 1)}
        print(f"[{name}] {precision}: validation accuracy {scores[precision]['validation_accuracy']:.4f}, "
              f"training {scores[precision]['fit_seconds']:.0f} s", flush=True)
    allowed = scores["bf16"]["validation_accuracy"] >= scores["fp32"]["validation_accuracy"] - DELTA
    payload = {"tuning": f"{name}-precision", "pipeline": name, "rule": f"bf16 allowed when its validation "
               f"accuracy is at least fp32's minus δ = {DELTA}", "points": scores, "bf16_allowed": allowed,
               "config_hash": pipeline.hash(cfg), "validation": {"dataset": data.name, "data_fingerprint":
               data.fingerprint, "fit_pool_images": len(val.x_train), "validation_images": len(val.x_test)},
               "device_name": device.name, "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               **provenance()}
    atomic_write_json(tuning_path(f"{name}-precision"), payload)
    return payload


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipelines", nargs="+", default=LEARNED, choices=LEARNED, metavar="NAME")
    p.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    p.add_argument("--validate", nargs="+", default=[], choices=LEARNED, metavar="NAME",
                   help="train these pipelines' cpu recipes on the validation split in fp32 and bf16 and store it")
    args = p.parse_args()
    data, device = open_dataset(), select_device(False)
    import torch
    print(f"machine: {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.pipelines:
        f = probe_figures(name, data, args.preset)
        print(f"{name:8s} preset {args.preset}: fp32 {f['fp32_images_per_second']:8,.0f} img/s, bf16 "
              f"{f['bf16_images_per_second']:8,.0f} img/s ({f['bf16_images_per_second'] / f['fp32_images_per_second']:.2f}x)"
              f" -> {f['chosen']} (probe {f['seconds']:.1f} s)", flush=True)
    for name in args.validate:
        payload = validate(name, data, device)
        print(f"[{name}] bf16 allowed: {payload['bf16_allowed']} -> {tuning_path(f'{name}-precision')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
