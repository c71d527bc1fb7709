"""Notebook 01's lesson code: tiles laid out for display, and the camera defects that
hand a pretext task its shortcuts (chromatic aberration for context prediction, colour
shading for jigsaw) with the correction that takes one away.

Shape legend: B batch, T tiles, C/H/W image, t tile side.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..methods.pretext import _check_images


def tiles_to_image(tiles: torch.Tensor, gap: int = 2, fill: float = 1.0) -> torch.Tensor:
    """Lay tiles (B, T, C, t, t) out on a square grid with ``gap`` pixels of ``fill``
    between them, for display: -> (B, C, S, S)."""
    if tiles.dim() != 5:
        raise ValueError(f"tiles must have shape (B, T, C, t, t), got {tuple(tiles.shape)}")
    B, T, C, t, _ = tiles.shape
    grid = math.isqrt(T)
    if grid * grid != T:
        raise ValueError(f"the number of tiles T={T} is not a square")
    size = grid * t + (grid - 1) * gap
    canvas = torch.full((B, C, size, size), fill, dtype=tiles.dtype, device=tiles.device)
    for k in range(T):
        r, c = (k // grid) * (t + gap), (k % grid) * (t + gap)
        canvas[:, :, r:r + t, c:c + t] = tiles[:, k]
    return canvas


def chromatic_aberration(x: torch.Tensor, strength: float = 0.04) -> torch.Tensor:
    """A cheap lens's colour fringes: the red channel magnified by (1 + strength) about
    the image centre and the blue one shrunk by (1 - strength), so colours separate more
    the farther a pixel lies from the centre, pointing away from it. This is the shortcut
    Doersch et al. found their network reading (Sec. 3.1). x: (B, 3, H, W) -> same."""
    _check_images(x, "chromatic_aberration")
    if x.shape[1] != 3:
        raise ValueError(f"chromatic_aberration needs RGB images (B, 3, H, W), got {x.shape[1]} channels")
    if not 0 <= strength < 0.5:
        raise ValueError(f"strength must be in [0, 0.5), got {strength}")
    out = x.clone()
    for channel, scale in ((0, 1 + strength), (2, 1 - strength)):
        theta = torch.tensor([[1 / scale, 0, 0], [0, 1 / scale, 0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(len(x), 2, 3), (len(x), 1, *x.shape[-2:]), align_corners=False)
        out[:, channel:channel + 1] = F.grid_sample(x[:, channel:channel + 1], grid, mode="bilinear",
                                                    padding_mode="border", align_corners=False)
    return out


def _shading_gain(x: torch.Tensor, strength: float, name: str) -> torch.Tensor:
    _check_images(x, name)
    if x.shape[1] != 3:
        raise ValueError(f"{name} needs RGB images (B, 3, H, W), got {x.shape[1]} channels")
    if not 0 <= strength < 1:
        raise ValueError(f"strength must be in [0, 1), got {strength}")
    H, W = x.shape[-2:]
    v = torch.linspace(-1, 1, H, device=x.device, dtype=x.dtype).view(H, 1).expand(H, W)
    u = torch.linspace(-1, 1, W, device=x.device, dtype=x.dtype).view(1, W).expand(H, W)
    return torch.stack([1 + strength * u, 1 - strength * (u * u + v * v) / 2, 1 + strength * v])  # (3, H, W)


def colour_shading(x: torch.Tensor, strength: float = 0.4) -> torch.Tensor:
    """A cheap camera's colour shading: a colour cast that depends on the position in the
    frame (red gain grows to the right, blue gain downwards, green falls off towards the
    corners). Every part of the image then carries its position in its colours, a
    low-level cue that solves jigsaw puzzles without looking at the content.
    x: (B, 3, H, W) in [0, 1] -> same, clamped to [0, 1]."""
    return (x * _shading_gain(x, strength, "colour_shading")).clamp(0, 1)


def flat_field(x: torch.Tensor, strength: float = 0.4) -> torch.Tensor:
    """Undo :func:`colour_shading` by dividing by the camera's gain map (flat-field
    correction, as photographers calibrate it). Exact except where shading clipped at 1."""
    return (x / _shading_gain(x, strength, "flat_field")).clamp(0, 1)
