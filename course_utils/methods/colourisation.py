"""Colourisation (Zhang, Isola & Efros 2016, arXiv:1603.08511): predict the colour of every
region of an image from its brightness, a pretext task of notebook 01.

Shape legend: B batch, Q colour bins, C/H/W image, D width.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from ..models import ResNet18CIFAR, SmallCNN, TinyViT
from .pretext import PretextTask, _check_images


# YUV (ITU-R BT.601): Y is the luma (brightness); U and V are colour differences
# U = 0.492 (B - Y), V = 0.877 (R - Y), zero for every grey.
RGB_TO_YUV = ((0.299, 0.587, 0.114),
              (-0.14713, -0.28886, 0.436),
              (0.615, -0.51499, -0.10001))
U_MAX, V_MAX = 0.436, 0.615  # the largest |U| and |V| of any RGB colour in [0, 1]


def _colour_matrix(x, inverse: bool = False):
    m = torch.tensor(RGB_TO_YUV, dtype=torch.float64)
    m = torch.linalg.inv(m) if inverse else m
    return m.to(device=x.device, dtype=x.dtype)


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] -> YUV (B, 3, H, W): Y in [0, 1], U in [-0.436, 0.436],
    V in [-0.615, 0.615]."""
    _check_images(x, "rgb_to_yuv")
    if x.shape[1] != 3:
        raise ValueError(f"rgb_to_yuv needs 3 channels (B, 3, H, W), got {x.shape[1]}")
    return torch.einsum("ij,bjhw->bihw", _colour_matrix(x), x)


def yuv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_yuv`: YUV (B, 3, H, W) -> RGB (B, 3, H, W) (not clamped)."""
    _check_images(x, "yuv_to_rgb")
    if x.shape[1] != 3:
        raise ValueError(f"yuv_to_rgb needs 3 channels (B, 3, H, W), got {x.shape[1]}")
    return torch.einsum("ij,bjhw->bihw", _colour_matrix(x, inverse=True), x)


def luminance_image(x: torch.Tensor) -> torch.Tensor:
    """The grey version of RGB images: Y in all three channels, (B, 3, H, W)."""
    return rgb_to_yuv(x)[:, :1].expand(-1, 3, -1, -1)


def uv_to_bins(uv: torch.Tensor, bins: int) -> torch.Tensor:
    """Quantise colours: the (U, V) plane is cut into ``bins`` x ``bins`` equal cells.
    uv: (B, 2, h, w) -> class index (B, h, w) in [0, bins**2), index = iu * bins + iv."""
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got {bins!r}")
    if uv.dim() != 4 or uv.shape[1] != 2:
        raise ValueError(f"uv must have shape (B, 2, h, w), got {tuple(uv.shape)}")
    iu = ((uv[:, 0] + U_MAX) / (2 * U_MAX) * bins).floor().long().clamp(0, bins - 1)
    iv = ((uv[:, 1] + V_MAX) / (2 * V_MAX) * bins).floor().long().clamp(0, bins - 1)
    return iu * bins + iv


def bin_centres(bins: int, device=None) -> torch.Tensor:
    """The (U, V) centre of every colour bin, (bins**2, 2), in the order of :func:`uv_to_bins`."""
    if not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got {bins!r}")
    c = (torch.arange(bins, device=device, dtype=torch.float32) + 0.5) / bins * 2 - 1   # in (-1, 1)
    u, v = torch.meshgrid(c * U_MAX, c * V_MAX, indexing="ij")
    return torch.stack([u.flatten(), v.flatten()], dim=1)


def feature_map(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The encoder's last spatial features before global pooling: (B, D, h, w).
    Known encoders: SmallCNN and ResNet18CIFAR (h = H/8), TinyViT (h = H/patch)."""
    if isinstance(encoder, SmallCNN):
        return encoder.features[:-2](encoder.normalize(x))
    if isinstance(encoder, ResNet18CIFAR):
        return encoder.layers(encoder.stem(encoder.normalize(x)))
    if isinstance(encoder, TinyViT):
        tokens = encoder.forward_tokens(encoder.embed(x))                # (B, N, D)
        side = encoder.image_size // encoder.patch_size
        return tokens.transpose(1, 2).reshape(len(x), -1, side, side)
    raise ValueError(f"feature_map knows SmallCNN, ResNet18CIFAR and TinyViT, not {type(encoder).__name__}")


class Colorization(PretextTask):
    """Predict the colour of every region of an image from its luminance.

    The encoder sees only Y (copied to 3 channels); a 1x1-convolution head on its feature
    map, upsampled to ``out_size`` x ``out_size``, classifies each region's mean (U, V)
    into one of ``bins``**2 colour bins. Classification rather than regression, as the
    paper argues (Sec. 2.1): an L2 loss rewards the grey average of the plausible colours.
    (The paper also re-weights rare colours; left out here.) Evaluate the encoder on
    luminance too (:class:`GrayscaleInput`): it never saw colour."""

    def __init__(self, encoder: nn.Module, bins: int = 8, out_size: int = 8, hidden_dim: int = 256):
        super().__init__(encoder)
        bin_centres(bins)  # validates bins
        validate.integer("hidden_dim", hidden_dim, example="256")
        if not isinstance(out_size, int) or out_size < 1:
            raise ValueError(f"out_size must be a positive int, got {out_size!r}")
        self.bins, self.out_size = bins, out_size
        self.head = nn.Sequential(nn.Conv2d(encoder.num_features, hidden_dim, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden_dim, bins * bins, 1))

    def colour_logits(self, x):
        """RGB (B, 3, H, W) -> colour-bin logits (B, Q, out_size, out_size), seeing only Y."""
        fmap = feature_map(self.encoder, luminance_image(x))             # (B, D, h, w)
        logits = self.head(fmap)                                         # (B, Q, h, w)
        return F.interpolate(logits, size=self.out_size, mode="bilinear", align_corners=False)

    def pretext_logits(self, x, generator=None):
        logits = self.colour_logits(x)                                   # (B, Q, s, s)
        uv = F.adaptive_avg_pool2d(rgb_to_yuv(x)[:, 1:], self.out_size)  # (B, 2, s, s)
        targets = uv_to_bins(uv, self.bins)                              # (B, s, s)
        return logits.permute(0, 2, 3, 1).reshape(-1, self.bins ** 2), targets.reshape(-1)

    @torch.no_grad()
    def colorize(self, x, temperature: float = 0.38):
        """Colour images from their luminance: Y plus the *annealed mean* of the predicted
        colours (the paper's Eq. 5, T = 0.38). x: (B, 3, H, W) -> RGB (B, 3, H, W)."""
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        probs = (self.colour_logits(x) / temperature).softmax(1)          # (B, Q, s, s)
        uv = torch.einsum("bqhw,qc->bchw", probs, bin_centres(self.bins, x.device))
        uv = F.interpolate(uv, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return yuv_to_rgb(torch.cat([rgb_to_yuv(x)[:, :1], uv], 1)).clamp(0, 1)


class GrayscaleInput(nn.Module):
    """An encoder evaluated on the luminance of its input, as colourisation networks are
    (Zhang et al. Sec. 3.2): ``forward_features(x) = encoder(luminance_image(x))``.

    A wrapper for evaluation only: build and save methods around the bare encoder (from
    ``models.build_encoder``), which ``methods.base.load`` can rebuild; wrap it after
    loading (as ``lessons.nb08.wrap_for_evaluation`` does for ``input="luminance"``)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder, self.num_features = encoder, encoder.num_features

    def forward_features(self, x):
        return self.encoder.forward_features(luminance_image(x))

    forward = forward_features
