"""Supervised training with labels: the upper reference every SSL method is compared to."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from .. import augment


class Supervised(nn.Module):
    """Encoder + linear classifier trained with cross-entropy on lightly augmented images
    (random crop and flip), as a supervised baseline usually is."""

    def __init__(self, encoder: nn.Module, num_classes: int, crop_scale=(0.5, 1.0)):
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.num_features, num_classes)
        self.crop_scale = crop_scale

    def training_step(self, x, y):
        x = augment.random_resized_crop(x, x.shape[-1], scale=self.crop_scale)
        x = augment.random_horizontal_flip(x)
        return F.cross_entropy(self.classifier(self.encoder.forward_features(x)), y)
