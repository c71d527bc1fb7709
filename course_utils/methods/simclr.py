"""SimCLR (Chen et al. 2020, arXiv:2002.05709): two augmented views, a projection head,
and the NT-Xent loss.

    x -> two random views x1, x2 -> encoder f -> h1, h2 -> projection head g -> z1, z2
    loss = NT-Xent(z1, z2): each view must pick its partner among the 2B - 1 others

Evaluation uses h = f(x), the representation *before* the head (the paper's Sec. 4.2);
``ProjectedEncoder`` exposes z = g(f(x)) too, to show why.

Also here: the augmentation preset tuned for the embedded shapes data
(``shapes_augment``). The colour probe of notebook 03 is in ``lessons.nb03``.

Shape legend: B batch, D width, C/H/W image.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import augment
from ..losses import _check_temperature, nt_xent_loss
from .base import Method
from .heads import ProjectedEncoder, ProjectionHead

__all__ = ["SimCLR", "ProjectedEncoder", "shapes_augment", "preset_augment", "ShapesTransform"]


class SimCLR(Method):
    """encoder f, projection head g; loss = NT-Xent(g(f(x1)), g(f(x2))).

    ``head_layers``: 2 is SimCLR's MLP head (Linear-BN-ReLU-Linear), 1 a linear head, 0
    no head at all (the loss on h directly), the three variants of the paper's Fig. 8.
    ``transform``: how a view is made (default: ``augment.simclr_augment()``)."""

    def __init__(self, encoder: nn.Module, transform=None, temperature: float = 0.5,
                 proj_hidden_dim: int = 512, proj_dim: int = 128, head_layers: int = 2):
        super().__init__(encoder, transform or augment.simclr_augment())
        _check_temperature(temperature)
        if head_layers not in (0, 1, 2):
            raise ValueError(f"head_layers must be 0 (no head), 1 (linear) or 2 (MLP), got {head_layers}")
        self.projection_head = (nn.Identity() if head_layers == 0 else
                                ProjectionHead(encoder.num_features, proj_hidden_dim, proj_dim, head_layers))
        self.temperature = temperature

    def project(self, x):  # (B, C, H, W) -> z = g(f(x)), (B, proj_dim)
        return self.projection_head(self.encoder.forward_features(x))

    def training_step(self, batch):
        x, _ = batch
        x1, x2 = self.views(x)
        z1, z2 = self.project(torch.cat([x1, x2])).chunk(2)  # one pass for both views: (B, proj_dim) each
        return nt_xent_loss(z1, z2, self.temperature)


# --------------------------------------------------------------------------------------
# the augmentations tuned for the embedded shapes data


class ShapesTransform:
    """SimCLR's pipeline plus the invariances the shapes data set calls for: in that data a
    shape's colour and rotation are random, so a full random hue shift and a rotation by a
    multiple of 90 degrees change only nuisances. (On photos, rotation would change the
    content; choosing augmentations is choosing what the features must ignore.)"""

    def __init__(self, base: augment.SimCLRTransform, hue: float = 0.5, rot90: bool = True):
        self.base, self.hue, self.rot90 = base, hue, rot90

    def __call__(self, x, generator=None):
        x = self.base(x, generator=generator)
        if self.hue > 0:
            x = augment.random_hue(x, self.hue, generator=generator)
        return augment.random_rot90(x, generator) if self.rot90 else x

    def __repr__(self) -> str:
        return f"ShapesTransform(base={self.base!r}, hue={self.hue}, rot90={self.rot90})"


def shapes_augment(image_size: int = 32, strength: float = 1.0, crop_scale=(0.3, 1.0), hue: float = 0.5,
                   rot90: bool = True, **kwargs) -> ShapesTransform:
    """The preset for the embedded shapes data: SimCLR's crop, flip, colour jitter at
    ``strength`` and grayscale, then a random hue (``hue`` turns) and rotation."""
    base = augment.simclr_augment(image_size, strength, crop_scale=crop_scale, **kwargs)
    return ShapesTransform(base, hue=hue, rot90=rot90)


def preset_augment(preset: str, image_size: int = 32, strength: float = 0.5, crop_scale=(0.08, 1.0)):
    """One view's augmentation by the name a notebook's settings give it: ``"shapes"``
    (``shapes_augment``: SimCLR's pipeline plus a random hue and rot90) or ``"simclr"``
    (``augment.simclr_augment``)."""
    if preset not in ("simclr", "shapes"):
        raise ValueError(f"preset must be 'simclr' or 'shapes', got {preset!r}")
    make = shapes_augment if preset == "shapes" else augment.simclr_augment
    return make(image_size, strength, crop_scale=tuple(crop_scale))
