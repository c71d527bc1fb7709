"""Encoders and heads.

Every encoder takes float images in [0, 1] of shape (B, C, H, W) and exposes

* ``forward_features(x) -> (B, D)``: the representation that evaluation uses, and
* ``num_features``: D.

``forward`` is ``forward_features``; heads (projection, prediction, classifier) are
separate modules, as in timm, so a method wraps an encoder without changing it.

Shape legend: B batch, C/H/W image, N tokens or patches, D width.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Per-channel statistics used to centre inputs inside each encoder, so that every data
# set can be fed as plain [0, 1] pixels. Values of CIFAR-10; close enough for the rest.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


class Normalize(nn.Module):
    """Fixed per-channel normalisation (a buffer, so it moves with ``.to(device)``)."""

    def __init__(self, in_channels: int = 3, mean=MEAN, std=STD):
        super().__init__()
        mean = list(mean)[:in_channels] if in_channels <= len(mean) else [0.5] * in_channels
        std = list(std)[:in_channels] if in_channels <= len(std) else [0.25] * in_channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


def _check_images(x: torch.Tensor, in_channels: int, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} expects images of shape (B, {in_channels}, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects float images in [0, 1]; got dtype {x.dtype} "
                         "(convert with x.float() / 255)")


def _conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """A fast 4-stage CNN for 2 CPU cores: 32x32 -> 16 -> 8 -> 4 -> global average pool.

    ``width`` sets the first stage's channels; each stage doubles it (D = 8 * width).
    """

    def __init__(self, in_channels: int = 3, width: int = 32):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        w = width
        self.in_channels, self.num_features = in_channels, 8 * w
        self.normalize = Normalize(in_channels)
        self.features = nn.Sequential(
            _conv_bn(in_channels, w), nn.MaxPool2d(2),            # (B, w, H/2, W/2)
            _conv_bn(w, 2 * w), nn.MaxPool2d(2),                  # (B, 2w, H/4, W/4)
            _conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),              # (B, 4w, H/8, W/8)
            _conv_bn(4 * w, 8 * w),                               # (B, 8w, H/8, W/8)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),                # (B, 8w)
        )

    def forward_features(self, x):
        _check_images(x, self.in_channels, "SmallCNN")
        return self.features(self.normalize(x))  # (B, D)

    forward = forward_features


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2015, arXiv:1512.03385)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18CIFAR(nn.Module):
    """ResNet-18 for small images: a 3x3 stride-1 stem and no max-pool (as in SimCLR's
    CIFAR-10 experiments, arXiv:2002.05709 Appendix B.9). D = 512."""

    def __init__(self, in_channels: int = 3, width: int = 64):
        super().__init__()
        self.in_channels, self.num_features = in_channels, 8 * width
        self.normalize = Normalize(in_channels)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        layers, cin = [], width
        for i, cout in enumerate([width, 2 * width, 4 * width, 8 * width]):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward_features(self, x):
        _check_images(x, self.in_channels, "ResNet18CIFAR")
        return self.pool(self.layers(self.stem(self.normalize(x))))  # (B, 512)

    forward = forward_features


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):  # x: (B, N, D)
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """A small Vision Transformer (Dosovitskiy et al. 2020, arXiv:2010.11929).

    Patch size 4 on 32x32 images gives N = 64 patches. ViT-Tiny is dim 192, depth 12,
    3 heads; the defaults here are smaller so it trains on a CPU. ``forward_features``
    returns the mean of the final tokens (B, D). ``forward_tokens`` exposes the token
    path so that MAE can run the encoder on a subset of patches.
    """

    def __init__(self, image_size: int = 32, patch_size: int = 4, in_channels: int = 3,
                 dim: int = 128, depth: int = 4, num_heads: int = 4, mlp_ratio: float = 4.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be divisible by patch_size ({patch_size})")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.num_patches = (image_size // patch_size) ** 2
        self.num_features = dim
        self.normalize = Normalize(in_channels)
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def embed(self, x):
        """Images (B, C, H, W) -> patch tokens with positions (B, N, D)."""
        _check_images(x, self.in_channels, "TinyViT")
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"TinyViT was built for {self.image_size}x{self.image_size} images, "
                             f"got {tuple(x.shape[-2:])}")
        tokens = self.patch_embed(self.normalize(x)).flatten(2).transpose(1, 2)  # (B, N, D)
        return tokens + self.pos_embed

    def forward_tokens(self, tokens):
        """Run the blocks on any set of tokens (B, N', D) -> (B, N', D)."""
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward_features(self, x):
        return self.forward_tokens(self.embed(x)).mean(dim=1)  # (B, D)

    forward = forward_features


class PixelEncoder(nn.Module):
    """The raw-pixel baseline: flattening as an 'encoder' (D = C * H * W)."""

    def __init__(self, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        self.num_features = in_channels * image_size * image_size

    def forward_features(self, x):
        return x.flatten(1).float()  # (B, C*H*W)

    forward = forward_features


class ProjectionHead(nn.Module):
    """MLP projection head g(h) of SimCLR (arXiv:2002.05709, Sec. 2.1): the loss is computed
    on z = g(h); the representation h before it is what evaluation uses."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, num_layers: int = 2,
                 batch_norm: bool = True):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers, d = [], in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(d, hidden_dim, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(hidden_dim)] if batch_norm else []
            layers += [nn.ReLU(inplace=True)]
            d = hidden_dim
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, h):  # (B, in_dim) -> (B, out_dim)
        return self.net(h)


ENCODERS = {"small_cnn": SmallCNN, "resnet18": ResNet18CIFAR, "vit_tiny": TinyViT, "pixels": PixelEncoder}


def build_encoder(name: str, **kwargs) -> nn.Module:
    """``build_encoder("small_cnn")``, ``"resnet18"``, ``"vit_tiny"`` or ``"pixels"``."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return ENCODERS[name](**kwargs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def save_encoder(path, encoder: nn.Module, name: str, kwargs: dict | None = None, **info) -> None:
    """Save an encoder so that another notebook (08) can rebuild it with ``load_encoder``.

    ``name``/``kwargs`` are what ``build_encoder`` needs; ``info`` holds anything else worth
    keeping (training seconds, accuracies, the method's name)."""
    from .train import save_checkpoint  # atomic write

    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    save_checkpoint(path, {"encoder": encoder.state_dict(), "encoder_name": name,
                           "encoder_kwargs": dict(kwargs or {}), "info": info})


def load_encoder(path, device=None) -> tuple[nn.Module, dict]:
    """Rebuild an encoder saved by ``save_encoder``; returns (encoder in eval mode, info)."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved encoder at {path}; run the notebook that trains it first")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "encoder_name" not in state:
        raise ValueError(f"{path} was not written by save_encoder")
    encoder = build_encoder(state["encoder_name"], **state["encoder_kwargs"])
    encoder.load_state_dict(state["encoder"])
    return encoder.to(device or "cpu").eval(), state["info"]
