"""The training data on the device: images as uint8 tensors, each batch prepared (scaled, resized, channels_last)
and augmented on the device with no host sync, and the per-epoch permutation (the same for the same seed and
epoch, however a run was interrupted)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def images_tensor(x: np.ndarray, device) -> torch.Tensor:
    """A numpy stack of images, grey (n, h, w) or colour (n, h, w, c), as a uint8 tensor (n, c, h, w) on
    ``device``: the layout every function below takes."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    return t.contiguous().to(device)


def prepare(x_uint8: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 (B, c, h, w) (or grey (B, h, w)) on any device -> float (B, c, S, S) in [0, 1], bilinearly resized
    to S, channels_last."""
    x = (x_uint8.unsqueeze(1) if x_uint8.ndim == 3 else x_uint8).float().div_(255.0)
    if x.shape[-1] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return x.contiguous(memory_format=torch.channels_last)


def augment(x_uint8: torch.Tensor, gen: torch.Generator, erase: float = 0.0,
            flip: torch.Tensor | None = None) -> torch.Tensor:
    """Each image its own random horizontal flip (or the given ``flip`` mask: alternating flips) and its own crop
    of the 2-pixel zero-padded image, drawn
    from ``gen`` (a generator on the images' device) and applied by one gather: no host sync. With ``erase``,
    that share of the images also gets one random erasure (``random_erase``). Takes and returns (n, c, h, w),
    or grey (n, h, w)."""
    x4 = x_uint8.unsqueeze(1) if x_uint8.ndim == 3 else x_uint8
    n, c, h, w = x4.shape
    dev = x4.device
    coin = torch.rand(n, generator=gen, device=dev) < 0.5  # drawn always, so the crops stay those of a seed
    flip = coin if flip is None else flip
    dy, dx = (torch.randint(0, 5, (n,), generator=gen, device=dev) for _ in range(2))
    x = F.pad(torch.where(flip[:, None, None, None], x4.flip(-1), x4), (2, 2, 2, 2))
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    out = x[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
            rows, cols]
    if erase:
        out = random_erase(out, gen, erase)
    return out[:, 0] if x_uint8.ndim == 3 else out


ERASE_AREA = (0.02, 0.4)   # random erasing (Zhong et al., 2017): the rectangle's share of the image ...
ERASE_RATIO = (0.3, 3.3)   # ... and its height / width, drawn log-uniformly; the paper's defaults


def random_erase(x_uint8: torch.Tensor, gen: torch.Generator, p: float) -> torch.Tensor:
    """Random erasing (Zhong et al., 2017): each image of (n, c, h, w), with probability ``p``, has one
    rectangle (area and aspect drawn from ``ERASE_AREA`` and ``ERASE_RATIO``, its sides clipped to the image,
    where the paper draws again until one fits) replaced by uniform random pixel values. Drawn from ``gen`` and
    applied by masks: no host sync."""
    n, c, h, w = x_uint8.shape
    dev = x_uint8.device
    u = torch.rand(5, n, generator=gen, device=dev)
    area = (ERASE_AREA[0] + (ERASE_AREA[1] - ERASE_AREA[0]) * u[0]) * h * w
    ratio = torch.exp(math.log(ERASE_RATIO[0]) + (math.log(ERASE_RATIO[1]) - math.log(ERASE_RATIO[0])) * u[1])
    eh = (area * ratio).sqrt().round().clamp(1, h)
    ew = (area / ratio).sqrt().round().clamp(1, w)
    top = ((h - eh + 1) * u[2]).floor()
    left = ((w - ew + 1) * u[3]).floor()
    r = torch.arange(h, device=dev)[None, :, None]
    k = torch.arange(w, device=dev)[None, None, :]
    mask = ((r >= top[:, None, None]) & (r < (top + eh)[:, None, None]) & (k >= left[:, None, None])
            & (k < (left + ew)[:, None, None]) & (u[4] < p)[:, None, None])
    noise = torch.randint(0, 256, x_uint8.shape, generator=gen, device=dev, dtype=torch.uint8)
    return torch.where(mask[:, None], noise, x_uint8)


def epoch_permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The same permutation for the same (seed, epoch), however the run was interrupted."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen).to(device)


def flip_phase(n: int, seed: int, device) -> torch.Tensor:
    """Alternating flips (airbench): each image's flip in even epochs, drawn once from the seed; odd epochs flip
    the others, so every image is seen both ways every two epochs (``phase ^ (epoch % 2)``)."""
    return (torch.rand(n, generator=torch.Generator().manual_seed(seed * 31 + 7)) < 0.5).to(device)
