"""Contrastive Multiview Coding (Tian, Krishnan & Isola 2019, arXiv:1906.05849): the two views
of an image are not two augmentations but two *channels*: its lightness L and its colour ab
(the Lab colour space), each read by an encoder of its own.

    x (RGB) -> crop, flip -> Lab -> L  (B, 1, H, W) -> encoder f_L  -> head -> z_L (B, P)
                                 -> ab (B, 2, H, W) -> encoder f_ab -> head -> z_ab (B, P)
    loss = L(z_L -> z_ab) + L(z_ab -> z_L)     (the paper's Eq. 3: InfoNCE anchored on each view)

What the two views share (the shape's outline, visible in both) is what the encoders must
keep; what only one view holds (the exact hue, only in ab) is free to be dropped. The paper
draws its negatives from a memory bank; here they are the other images of the batch.

Both encoders read RGB images (``LabView`` converts and picks the channels), so the
evaluation code that reads a method's ``encoder`` needs nothing special: ``encoder`` is the
L encoder, ``ab_encoder`` the other one.

Shape legend: B batch, P projection width, D width, C/H/W image.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import augment, models, validate
from ..losses import _check_temperature
from .base import Method, channels_last
from .clip import clip_loss
from .heads import ProjectionHead

__all__ = ["rgb_to_lab", "lab_views", "LabView", "CMC", "JointEncoder", "cmc_loss", "cmc_augment"]

# sRGB (D65) -> XYZ, and the white point that Lab is relative to
RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
              (0.2126729, 0.7151522, 0.0721750),
              (0.0193339, 0.1191920, 0.9503041))
WHITE = (0.95047, 1.0, 1.08883)
AB_RANGE = 110.0   # |a|, |b| of any sRGB colour stays below about 110 (a of pure magenta: 98, b of yellow: 94)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB images (B, 3, H, W) in [0, 1] -> CIE Lab (B, 3, H, W): L in [0, 100], a and b in
    about [-110, 110]. sRGB's gamma undone, then XYZ (D65), then Lab (CIE 1976)."""
    validate.tensor("x", x, "(B, 3, H, W)")
    if x.dim() != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"rgb_to_lab expects float RGB images (B, 3, H, W) in [0, 1], got "
                         f"{tuple(x.shape)} {x.dtype} (uint8 images: x.float() / 255)")
    linear = torch.where(x > 0.04045, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor(RGB_TO_XYZ, dtype=x.dtype, device=x.device)
    white = torch.tensor(WHITE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,bjhw->bihw", m, linear) / white
    eps = 216 / 24389
    f = torch.where(xyz > eps, xyz.clamp(min=eps) ** (1 / 3), (24389 / 27 * xyz + 16) / 116)
    L = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], dim=1)


def lab_views(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (B, 3, H, W) -> (L (B, 1, H, W), ab (B, 2, H, W)), each scaled to about [0, 1]."""
    lab = rgb_to_lab(x)
    return lab[:, :1] / 100, (lab[:, 1:] / AB_RANGE + 1) / 2


class LabView(nn.Module):
    """An encoder of one Lab view that reads RGB images: ``forward_features(rgb) -> (B, D)``.
    ``view``: "L" (the backbone has 1 input channel) or "ab" (2)."""

    def __init__(self, backbone: nn.Module, view: str = "L"):
        super().__init__()
        if view not in ("L", "ab"):
            raise ValueError(f"view must be 'L' or 'ab', got {view!r}")
        channels = getattr(backbone, "in_channels", None)
        if channels != (1 if view == "L" else 2):
            raise ValueError(f"the {view} view has {1 if view == 'L' else 2} channel(s) but the backbone takes "
                             f"{channels}; build it with in_channels={1 if view == 'L' else 2}, e.g. "
                             f"models.build_encoder('small_cnn', in_channels={1 if view == 'L' else 2})")
        self.backbone, self.view, self.num_features = backbone, view, backbone.num_features

    @property
    def spec(self):
        """The backbone's recipe (so that a method holding this view can be saved and rebuilt)."""
        return getattr(self.backbone, "spec", None)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # RGB (B, 3, H, W) -> (B, D)
        L, ab = lab_views(x)
        return self.backbone.forward_features(L if self.view == "L" else ab)

    forward = forward_features


def cmc_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """CMC's two-view objective (arXiv:1906.05849, Eq. 3) with in-batch negatives:
    L(V1, V2) + L(V2, V1), each the InfoNCE (cross-entropy) of picking the other view of the
    same image among the B of the batch, on cosine similarities / temperature.
    z1, z2: (B, P), row i of each from image i. Equals 2 * ``clip_loss`` at scale 1/temperature."""
    _check_temperature(temperature)
    return 2 * clip_loss(z1, z2, 1 / temperature)


def cmc_augment(image_size: int = 32, crop_scale=(0.3, 1.0), rot90: bool = True):
    """The same crop, flip (and, for the shapes, rotation by 90 degrees) for both views, and no
    colour jitter: the colour is what one of the views is made of."""
    base = augment.simclr_augment(image_size, strength=0.0, crop_scale=tuple(crop_scale), grayscale_p=0.0)

    def transform(x, generator=None):
        x = base(x, generator=generator)
        return augment.random_rot90(x, generator) if rot90 else x
    transform.__qualname__ = f"cmc_augment(image_size={image_size}, crop_scale={tuple(crop_scale)}, rot90={rot90})"
    return transform


class CMC(Method):
    """``encoder``: the L view's backbone, with 1 input channel (``build_encoder("small_cnn",
    in_channels=1)``); the ab view's backbone is built from the same recipe with 2 channels.
    Each view has its own projection head (``head_layers`` 1: linear, 2: MLP).
    ``transform``: applied once to the RGB batch before it is split (default ``cmc_augment()``)."""

    def __init__(self, encoder: nn.Module, transform=None, temperature: float = 0.07, proj_hidden_dim: int = 512,
                 proj_dim: int = 128, head_layers: int = 2):
        spec = getattr(encoder, "spec", None)
        if spec is None:
            raise ValueError("encoder must be built with models.build_encoder (CMC builds the ab view's encoder "
                             "from the same recipe), e.g. build_encoder('small_cnn', in_channels=1)")
        super().__init__(LabView(encoder, "L"), transform or cmc_augment())
        _check_temperature(temperature)
        ab = models.build_encoder(spec["name"], **{**spec["kwargs"], "in_channels": 2})
        self.ab_encoder = LabView(ab.to(next(encoder.parameters()).device), "ab")
        d = encoder.num_features
        self.projection_head = ProjectionHead(d, proj_hidden_dim, proj_dim, head_layers)
        self.ab_projection_head = ProjectionHead(d, proj_hidden_dim, proj_dim, head_layers)
        self.temperature = temperature

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # RGB -> z_L, z_ab (B, P) each
        return (self.projection_head(self.encoder.forward_features(x)),
                self.ab_projection_head(self.ab_encoder.forward_features(x)))

    def training_step(self, batch):
        x, _ = batch
        z_l, z_ab = self.project(channels_last(self.transform(x)))
        return cmc_loss(z_l, z_ab, self.temperature)


class JointEncoder(nn.Module):
    """Both views' features side by side, (B, D_L + D_ab): how the paper evaluates CMC."""

    def __init__(self, method: CMC):
        super().__init__()
        self.encoders = nn.ModuleList([method.encoder, method.ab_encoder])
        self.num_features = sum(e.num_features for e in self.encoders)

    def forward_features(self, x):
        return torch.cat([e.forward_features(x) for e in self.encoders], dim=1)

    forward = forward_features
