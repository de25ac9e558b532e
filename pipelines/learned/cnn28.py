"""``cnn28``: the learned side at its best on a CPU, a CNN that works on the 28x28 images directly (the
chapter's exercise 2b). AlexNet's ingredients (ReLU, max pooling, flip-and-crop augmentation, prediction
averaged over the image and its mirror) plus what came right after (batch norm, a one-cycle schedule, label
smoothing, Nesterov momentum). The shape (``models.cnn28``) was chosen by comparing designs on the validation
split (``bench/cnn28_design.py``, logs in ``results/tuning/cnn28-design/``). Dropout before the classifier
(AlexNet's) and random erasing were tried on the whole validation pool, both off won
(``python bench/tune.py --only cnn28-regularisation``, ``results/tuning/cnn28-regularisation.json``); then the
width of the 28x28 block as two designs of one training budget, 24 channels for 19 epochs against 16 for 26
(``--only cnn28-stem``, ``results/tuning/cnn28-stem.json``: 16 won); then the learning rate (``--only cnn28``,
``results/tuning/cnn28.json``). The training length is a compute budget, not a tuned setting: the most whole
epochs of 60k images that train in 560 s on a 2-core CPU at the speed ``bench/cnn28_layers.py`` measures
(``results/bench/cnn28_layers.txt``), PROTOCOL.md's log says how it came to be.

Run: ``python runner.py --only cnn28``.
"""
from __future__ import annotations

import dataclasses

from .common import LearnedPipeline
from .trainer import TrainConfig

CPU = TrainConfig(model="cnn28", image_size=28, epochs=26, batch_size=128, lr=0.1, momentum=0.9, nesterov=True,
                  weight_decay=5e-4, model_kwargs=(("dropout", 0.0), ("stem", 16)), schedule="onecycle",
                  label_smoothing=0.1, augment=True, flip_test=True)


class Cnn28Pipeline(LearnedPipeline):
    name = "cnn28"
    eval_batch = {"cpu": 128, "cuda": 1000}  # 128 predicts fastest on 2 cores: results/bench/eval_batch.txt
    bf16 = True  # validation 0.9454 in bf16 against 0.9436 in fp32 (results/tuning/cnn28-precision.json)
    # the learning rate on the whole validation pool at the preset's length (it was tried on 20k images
    # before; PROTOCOL.md's log says why it moved)
    grid = {"lr": (0.05, 0.1, 0.2)}
    tune_n_train = None
    more_grids = {
        # dropout before the classifier and random erasing, tried on the whole validation pool at the cpu
        # preset's length (written before any run of it; the first point is the network as it stood)
        "regularisation": ({"model_kwargs": ((("dropout", 0.5),), (("dropout", 0.0),)), "erase": (0.0, 0.5)},
                           {"n_train": None}),
        # the 28x28 block's width, as two designs of one training budget: each at the most whole epochs of 60k
        # images that train in 560 s at the speed bench/cnn28_layers.py measured for it (2,107 and 2,792
        # images/s, results/bench/cnn28_layers.txt), so each fits the 10-minute budget with 40 s to spare
        "stem": ({"model_kwargs": ((("dropout", 0.0), ("stem", 24)), (("dropout", 0.0), ("stem", 16))),
                  "epochs": (19, 26)}, {"n_train": None}, True),
    }
    presets = {
        "smoke": dataclasses.replace(CPU, epochs=3, n_train=3000, n_test=1000),
        "cpu": CPU,
        "paper": dataclasses.replace(CPU, epochs=40),
    }
