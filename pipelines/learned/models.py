"""The chapter's networks: d2l LeNet-5 (28x28) and the d2l streamlined AlexNet (1x224x224), and ``cnn28``.

``activation`` and ``dropout`` are parameters so that the report's experiments can switch them; the
defaults are the chapter's recipes. ``in_channels`` and ``image_size`` follow the data (the trainer passes
them): grey or colour, any side; each dense layer's inputs are computed from them (``flat_size``). Weights use
Xavier-uniform init, as in d2l's ``init_cnn``.
"""
from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class Standardize(nn.Module):
    """(x - mean) / std, with the training images' mean and standard deviation held as buffers (set by the
    trainer from the images it trains on; saved with the weights)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x):
        return (x - self.mean) / self.std


def xavier_init(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
    return model


def flat_size(features: nn.Sequential, in_channels: int, image_size: int) -> int:
    """How many values ``features`` (ending in ``Flatten``) gives for one image of this shape."""
    with torch.no_grad():
        return features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]


def lenet(activation: str = "sigmoid", pool: str = "avg", dropout: float = 0.0, num_classes: int = 10,
          in_channels: int = 1, image_size: int = 28) -> nn.Sequential:
    """LeNet-5 as in d2l 7.6: two 5x5 convs (6, 16 channels), 2x2 average pooling, 400-120-84-10. ``pool``
    "max" and ``dropout`` > 0 (after each hidden dense layer) are the exercise's modernisations (chapter 8.1,
    exercise 5); the defaults are the chapter's network, layer for layer."""
    act, pooling = ACTIVATIONS[activation], POOLS[pool]
    drop = [nn.Dropout(dropout)] if dropout > 0 else []
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), act(), pooling(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), act(), pooling(2, 2),
        nn.Flatten())
    return xavier_init(nn.Sequential(
        *features,
        nn.Linear(flat_size(features, in_channels, image_size), 120), act(), *drop,
        nn.Linear(120, 84), act(), *drop,
        nn.Linear(84, num_classes)))


def alexnet(activation: str = "relu", dropout: float = 0.5, num_classes: int = 10, width: float = 1.0,
            hidden: int = 4096, image_size: int = 224, in_channels: int = 1) -> nn.Sequential:
    """AlexNet as in d2l 8.1, for one grey channel at 224x224: 96x54x54 after conv1, 256x5x5 before flatten.
    ``width`` scales every convolution's channels, ``hidden`` sets the two dense layers' units and
    ``image_size`` the input side (the dense layer's inputs follow from it): the chapter's exercise 2a makes
    AlexNet cheaper with them; the defaults are the chapter's network, layer for layer."""
    act = ACTIVATIONS[activation]
    c1, c2, c3, c4 = (max(1, round(c * width)) for c in (96, 256, 384, 256))
    features = nn.Sequential(
        nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=1), act(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), act(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), act(),
        nn.Conv2d(c3, c3, kernel_size=3, padding=1), act(),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), act(), nn.MaxPool2d(3, 2),
        nn.Flatten())
    return xavier_init(nn.Sequential(
        *features,
        nn.Linear(flat_size(features, in_channels, image_size), hidden), act(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), act(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes)))


def conv_bn(cin: int, cout: int, act) -> list[nn.Module]:
    """3x3 convolution (no bias: batch norm supplies it), batch norm, activation."""
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(cout), act()]


def cnn28(activation: str = "relu", dropout: float = 0.5, width: int = 24, num_classes: int = 10,
          in_channels: int = 1, image_size: int = 28, stem: int | None = None) -> nn.Sequential:
    """A CNN that works on the 28x28 images directly (the chapter's exercise 2b): AlexNet's ingredients (ReLU,
    max pooling, dropout) plus batch norm, VGG-shaped. One 3x3 conv block at 28x28 (``stem`` channels, default
    ``width``), two at 14x14 (2x ``width``), two at 7x7 (4x), each stage ending in 2x2 max pooling; dropout (the
    ``cnn28`` pipeline's preset turns it off, its choice on validation); one linear classifier on the 4x3x3 map
    (at 28x28). Most of its compute is at 14x14 and 7x7, where channels are cheap; a narrower ``stem`` makes
    the 28x28 block cheaper still (on a CPU its batch norm is the slowest layer: ``bench/cnn28_layers.py``)."""
    act, w = ACTIVATIONS[activation], width
    s = w if stem is None else stem
    features = nn.Sequential(
        *conv_bn(in_channels, s, act), nn.MaxPool2d(2, 2),
        *conv_bn(s, 2 * w, act), *conv_bn(2 * w, 2 * w, act), nn.MaxPool2d(2, 2),
        *conv_bn(2 * w, 4 * w, act), *conv_bn(4 * w, 4 * w, act), nn.MaxPool2d(2, 2),
        nn.Flatten())
    return xavier_init(nn.Sequential(
        *features, nn.Dropout(dropout),
        nn.Linear(flat_size(features, in_channels, image_size), num_classes)))


MODELS = {"lenet": lenet, "alexnet": alexnet, "cnn28": cnn28}


def network(model: str):
    """The function that builds network ``model``: one of ``MODELS``, or any ``"module:function"`` (a network that
    lives in its pipeline's own module)."""
    if model in MODELS:
        return MODELS[model]
    if ":" in model:
        from .. import load_target
        return load_target(model)
    raise ValueError(f"unknown network {model!r}; valid: {', '.join(MODELS)} or 'module:function'")


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution (unwrapping DDP and torch.compile)."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


@torch.no_grad()
def whiten_init(model: nn.Module, images: torch.Tensor, eps: float = 5e-4) -> None:
    """airbench's whitening initialisation of the first convolution: its filters become the eigenvectors of the
    training images' patch covariance, each scaled by 1/sqrt(its eigenvalue + eps), the strongest first, each
    as itself and its negation (so a ReLU after it passes both signs); ``images`` are prepared training images
    (float, (n, c, S, S)). Filters beyond twice the patch size keep their initialisation."""
    conv = first_conv(model)
    k, c = conv.kernel_size[0], conv.in_channels
    patches = images.float().unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
    patches = patches[torch.randperm(len(patches), generator=torch.Generator().manual_seed(0))[:100_000]]
    eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov(patches.T.double()))
    order = eigenvalues.argsort(descending=True)
    filters = (eigenvectors[:, order].T / (eigenvalues[order] + eps).sqrt()[:, None]).float()
    half = min(conv.out_channels // 2, len(filters))
    weights = torch.cat([filters[:half], -filters[:half]]).reshape(2 * half, c, k, k)
    conv.weight[: 2 * half] = weights.to(conv.weight.device, conv.weight.dtype)


@torch.no_grad()
def dirac_init(model: nn.Module) -> None:
    """airbench's identity initialisation: every convolution after the first starts as the identity on its first
    input channels (``nn.init.dirac_`` on as many filters as it has inputs), so a deep stack starts close to
    passing its input through; the other filters keep their initialisation."""
    for conv in [m for m in model.modules() if isinstance(m, nn.Conv2d)][1:]:
        n = min(conv.in_channels, conv.out_channels)
        nn.init.dirac_(conv.weight[:n])
