"""Notebook 03's lesson code: the colour probe, which asks whether colour is a shortcut
(does a linear probe read an image's hue from the frozen features?).

Shape legend: B batch, C/H/W image.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..data import as_pair


def hue_turns(images: torch.Tensor) -> torch.Tensor:
    """The hue of each image's mean colour as a fraction of a turn of the colour wheel
    (red 0, yellow 1/6, green 1/3, cyan 1/2, blue 2/3, magenta 5/6).
    images: (B, 3, H, W), uint8 or float in [0, 1] -> (B,) in [0, 1)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images (B, 3, H, W), got {tuple(images.shape)}")
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    r, g, b = x.mean(dim=(2, 3)).unbind(1)
    angle = torch.atan2(math.sqrt(3) * (g - b), 2 * r - g - b)       # the hue angle, (-pi, pi]
    return (angle / (2 * math.pi)) % 1.0


def hue_bins(images: torch.Tensor, bins: int = 6) -> torch.Tensor:
    """``hue_turns`` in ``bins`` equal sectors of the colour wheel, bin 0 starting at red.
    images: (B, 3, H, W) -> (B,) int64 in [0, bins)."""
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    return (hue_turns(images) * bins).long().clamp(max=bins - 1)


def colour_probe(encoder: nn.Module, train_data, test_data, bins: int = 6, epochs: int = 50) -> float:
    """Test accuracy of a linear probe that predicts ``hue_bins`` of each image from the
    frozen features: high means the features still know the colour."""
    from ..evaluate import extract_features, linear_probe

    feats = []
    for data in (train_data, test_data):
        images = as_pair(data)[0]
        f, _ = extract_features(encoder, (images, hue_bins(images, bins)))
        feats.append((f, hue_bins(images, bins).to(f.device)))
    (ftr, ytr), (fte, yte) = feats
    return linear_probe(ftr, ytr, fte, yte, epochs=epochs)["accuracy"]
