"""``cnn28``: a small AlexNet-style CNN that works on the 28x28 images directly (the chapter's exercise 2b):
ReLU, max pooling, dropout, SGD with momentum. Its learning rate is chosen on the validation split
(``python bench/tune.py --only cnn28``, stored in ``results/tuning/cnn28.json``); its training length is a
compute budget fixed in advance (PROTOCOL.md), not a tuned setting.

Run: ``python runner.py --only cnn28``.
"""
from __future__ import annotations

import dataclasses

from .common import LearnedPipeline
from .trainer import TrainConfig

CPU = TrainConfig(model="cnn28", image_size=28, epochs=12, batch_size=128, lr=0.03, momentum=0.9,
                  eval_batch_size=2000)


class Cnn28Pipeline(LearnedPipeline):
    name = "cnn28"
    grid = {"lr": (0.01, 0.03, 0.1)}
    presets = {
        "smoke": dataclasses.replace(CPU, epochs=3, n_train=3000, n_test=1000),
        "cpu": CPU,
        "paper": dataclasses.replace(CPU, epochs=30),
    }
