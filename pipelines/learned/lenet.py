"""``lenet``: the d2l LeNet-5 recipe on 28x28 images (sigmoid, average pooling, Xavier, SGD lr 0.9,
batch 256, 10 epochs). The ``cpu`` preset runs the full recipe.

Run: ``python runner.py --only lenet``.
"""
from __future__ import annotations

from .common import LearnedPipeline
from .trainer import TrainConfig

RECIPE = TrainConfig(model="lenet", image_size=28, epochs=10, batch_size=256, lr=0.9)


class LeNetPipeline(LearnedPipeline):
    name = "lenet"
    presets = {
        # Sigmoid LeNet at lr 0.9 needs a few hundred steps to leave chance; 12k x 8 epochs is 375 steps.
        "smoke": TrainConfig(model="lenet", epochs=8, batch_size=256, lr=0.9, n_train=12000, n_test=2000),
        "cpu": RECIPE,
        "paper": RECIPE,
    }
