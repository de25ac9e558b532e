"""``cnn28_fast``: ``cnn28`` rebuilt to reach a target accuracy soonest on a CPU (issue 27), for the time-to-accuracy
comparison MLPerf-style (``bench/time_to_accuracy.py``): the same network, shorter, with the ingredients of
airbench's CIFAR-10 ablation tried on the validation split in that order, each kept only if it helped there
(``more_grids``, run by ``python bench/tune.py --only cnn28_fast-whiten ...``; scores in
``results/tuning/cnn28_fast-*.json``): a whitened first layer, identity-initialised convolutions, batch norm's
biases at a multiple of the learning rate, an exponential average of the weights for evaluation, shifted test
views, alternating flips. Its training length is a compute budget fixed before any run of it: the most whole
epochs of 60,000 images that train in 105 s at the bf16 speed ``bench/precision.py`` measured for ``cnn28`` on
the 2-core AMX Xeon (5,808 img/s: 10 epochs).

Run: ``python runner.py --only cnn28_fast``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .cnn28 import CPU as CNN28
from .common import LearnedPipeline
from .trainer import TrainConfig


@dataclass(frozen=True)
class FastConfig(TrainConfig):
    """``TrainConfig`` and the time-to-target ingredients (each off by default; the trainer reads them)."""
    whiten: bool = False            # the first convolution's filters whitened from the training images' patches
    dirac: bool = False             # later convolutions start as the identity on their first input channels
    bn_bias_lr: float = 1.0         # batch norm's biases at this multiple of the learning rate, no weight decay
    ema: float = 0.0                # evaluate an exponential average of the weights (decay per step; 0: off)
    tta_shifts: bool = False        # test views shifted one pixel up-left and down-right, beside the mirror
    alternate_flips: bool = False   # each image flipped in every other epoch, not at random


CPU = FastConfig(**{**dataclasses.asdict(CNN28), "epochs": 10}, whiten=True, dirac=True, bn_bias_lr=8.0, ema=0.99,
                 tta_shifts=True, alternate_flips=True)


class Cnn28FastPipeline(LearnedPipeline):
    name = "cnn28_fast"
    Config = FastConfig
    eval_batch = {"cpu": 128, "cuda": 1000}
    bf16 = True  # validation 0.9364 in bf16 against 0.9366 in fp32, ingredients off (cnn28_fast-precision.json)
    more_grids = {  # airbench's ingredients, in the order of its ablation; each from the preset as it stands
        "whiten": ({"whiten": (False, True)}, {"n_train": None}),
        "dirac": ({"dirac": (False, True)}, {"n_train": None}),
        "bnlr": ({"bn_bias_lr": (1.0, 8.0, 64.0)}, {"n_train": None}),
        "ema": ({"ema": (0.0, 0.99, 0.998)}, {"n_train": None}),
        "tta": ({"tta_shifts": (False, True)}, {"n_train": None}),
        "flips": ({"alternate_flips": (False, True)}, {"n_train": None}),
    }
    presets = {
        # smoke: enough steps (235) for the weight average at 0.99 per step to leave its initial weights behind
        "smoke": dataclasses.replace(CPU, epochs=5, n_train=6000, n_test=1000),
        "cpu": CPU,
        "paper": CPU,
    }
