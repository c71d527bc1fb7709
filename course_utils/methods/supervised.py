"""Supervised training with labels: the upper reference every SSL method is compared to,
and the fine-tuning of a pre-trained encoder (notebook 06)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment
from .base import Method


class Supervised(Method):
    """Encoder + linear classifier trained with cross-entropy on lightly augmented images
    (random crop and flip), as a supervised baseline usually is. Each step also logs the
    training accuracy on the batch (``train_accuracy``).

    ``method(x)`` is the representation ``encoder.forward_features(x)`` (what evaluation
    uses); ``classify(x)`` gives the class logits."""

    def __init__(self, encoder: nn.Module, num_classes: int, crop_scale=(0.5, 1.0)):
        super().__init__(encoder)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2 (e.g. len(train_data.classes)), "
                             f"got {num_classes!r}")
        self.classifier = nn.Linear(encoder.num_features, num_classes)
        self.crop_scale = crop_scale

    def classify(self, x):  # (B, C, H, W) -> logits (B, num_classes)
        return self.classifier(self.encoder.forward_features(x))

    def training_step(self, batch):
        x, y = batch                   # images (B, C, H, W), labels (B,)
        if not getattr(self, "_labels_checked", False):   # once: reading labels every step would stall a GPU
            _check_labels(y, self.classifier.out_features)
            self._labels_checked = True
        x = augment.random_resized_crop(x, x.shape[-1], scale=self.crop_scale)
        x = augment.random_horizontal_flip(x)
        logits = self.classify(x)
        accuracy = (logits.detach().argmax(1) == y).float().mean()   # a 0-d tensor: no sync per step
        return {"loss": F.cross_entropy(logits, y), "train_accuracy": accuracy}


def _check_labels(y, num_classes: int) -> None:
    """Labels must be class indices 0..num_classes-1 (on CUDA a bad one is a device-side assert)."""
    if y is None or not torch.is_tensor(y) or y.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"Supervised needs integer class labels with the images; got {type(y).__name__}"
                         + (f" of dtype {y.dtype}" if torch.is_tensor(y) else ""))
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"labels run from {lo} to {hi}, but Supervised was built with num_classes={num_classes}; "
                         f"build it with num_classes=len(train_data.classes) (unlabelled images, label -1, "
                         "cannot train a classifier: take the labelled subset)")
