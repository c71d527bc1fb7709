"""Encoders, the one Transformer block, and ``eval_mode``.

Every image encoder takes float images in [0, 1] of shape (B, C, H, W) and exposes

* ``forward_features(x) -> (B, D)``: the representation that evaluation uses, and
* ``num_features``: D.

``forward`` is ``forward_features``; heads (projection, prediction, classifier) are
separate modules (``methods.heads``), as in timm, so a method wraps an encoder without
changing it. The text encoder ``TinyTransformer`` (notebook 07) reads token ids (B, T)
instead, and its ``forward`` gives next-token logits.

Attention is written out once (``attention``) beside PyTorch's fused
``F.scaled_dot_product_attention`` (flash attention on a GPU); the tests check that the
two agree.

Shape legend: B batch, C/H/W image, N tokens or patches, T sequence length, D (or C) width,
H heads, V vocabulary size.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import validate

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
        w = validate.integer("width", width, example="32 channels")
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
        validate.integer("width", width, example="64 channels")
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


# ------------------------------------------------------------------------------ attention


def causal_mask(T: int, device=None) -> torch.Tensor:
    """(T, T) bool, True where query i may attend to key j, i.e. j <= i (lower triangle)."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
              dropout_p: float = 0.0) -> torch.Tensor:
    """Scaled dot-product attention written out (Vaswani et al. 2017, arXiv:1706.03762, eq. 1).

    q, k, v: (B, H, T, hd) -> (B, H, T, hd); softmax(q k^T / sqrt(hd)) v, with the future
    keys set to -inf before the softmax when ``causal``. Equal to
    ``F.scaled_dot_product_attention(q, k, v, is_causal=causal)`` (tested).
    """
    if q.dim() != 4 or q.shape != k.shape or k.shape != v.shape:
        raise ValueError(f"q, k, v must share one shape (B, H, T, hd); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if not 0 <= dropout_p < 1:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    T, hd = q.shape[-2:]
    att = q @ k.transpose(-2, -1) / math.sqrt(hd)                           # (B, H, T, T)
    if causal:
        att = att.masked_fill(~causal_mask(T, q.device), float("-inf"))     # no peeking ahead
    att = att.softmax(dim=-1)                                               # rows sum to 1
    att = F.dropout(att, dropout_p) if dropout_p > 0 else att
    return att @ v                                                          # (B, H, T, hd)


class SelfAttention(nn.Module):
    """Multi-head self-attention: one linear map makes q, k, v for all heads at once.

    ``flash=True`` calls ``F.scaled_dot_product_attention`` (fused; flash attention on a
    GPU), ``flash=False`` the written-out :func:`attention`; same numbers, same weights."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, flash: bool = True, bias: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.dropout, self.flash = num_heads, dropout, flash
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        B, T, C = x.shape
        H = self.num_heads
        q, k, v = self.qkv(x).split(C, dim=2)                     # 3 x (B, T, C)
        q = q.view(B, T, H, C // H).transpose(1, 2)               # (B, H, T, hd)
        k = k.view(B, T, H, C // H).transpose(1, 2)               # (B, H, T, hd)
        v = v.view(B, T, H, C // H).transpose(1, 2)               # (B, H, T, hd)
        p = self.dropout if self.training else 0.0
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        else:
            y = attention(q, k, v, causal=causal, dropout_p=p)    # (B, H, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)          # heads side by side again
        return self.resid_drop(self.proj(y))                      # (B, T, C)


class TransformerBlock(nn.Module):
    """The one pre-norm Transformer block of the course (ViT, MAE's decoder, the language
    models): x + attn(norm(x)), then x + mlp(norm(x)).

    ``bias``: biases in every linear layer (the ViT's choice) or none (nanoGPT's);
    ``causal`` in ``forward``: each position attends to itself and the past only."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 bias: bool = True, flash: bool = True):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout, flash, bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden, bias=bias), nn.GELU(),
                                 nn.Linear(hidden, dim, bias=bias), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        x = x + self.attn(self.norm1(x), causal)
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
        vit_init(self.blocks)

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


def vit_init(blocks) -> None:
    """Attention weights as ``nn.MultiheadAttention`` starts them (Xavier-uniform q, k, v
    maps, zero biases), the usual start for a ViT."""
    for block in blocks:
        nn.init.xavier_uniform_(block.attn.qkv.weight)
        for linear in (block.attn.qkv, block.attn.proj):
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)


class PixelEncoder(nn.Module):
    """The raw-pixel baseline: flattening as an 'encoder' (D = C * H * W)."""

    def __init__(self, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        self.num_features = in_channels * image_size * image_size

    def forward_features(self, x):
        return x.flatten(1).float()  # (B, C*H*W)

    forward = forward_features


class TinyTransformer(nn.Module):
    """A character-level Transformer language model (nanoGPT's ``GPT`` made small).

    ``causal=True``: GPT-style, each position sees itself and the past (for CLM).
    ``causal=False``: BERT-style, each position sees the whole sequence (for MLM).
    ``forward(idx (B, T)) -> logits (B, T, V)``, T <= ``block_size``; the output layer shares
    its weights with the token embedding (weight tying, as in GPT-2 and BERT).
    """

    def __init__(self, vocab_size: int, block_size: int, dim: int = 128, depth: int = 4,
                 num_heads: int = 4, dropout: float = 0.0, causal: bool = True, flash: bool = True):
        super().__init__()
        for name, value in [("vocab_size", vocab_size), ("block_size", block_size), ("dim", dim),
                            ("depth", depth), ("num_heads", num_heads)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.block_size, self.causal = vocab_size, block_size, causal
        self.num_features = dim
        self.tok_emb = nn.Embedding(vocab_size, dim)
        self.pos_emb = nn.Embedding(block_size, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, dropout=dropout, bias=False, flash=flash) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying
        self.apply(_init_weights)
        for name, p in self.named_parameters():    # GPT-2: residual projections scaled by depth
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) -> the final hidden states (B, T, C), before the output layer."""
        _, T = check_token_ids(idx, self.vocab_size, self.block_size)      # idx: (B, T)
        pos = torch.arange(T, device=idx.device)                       # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))           # (B, T, C)
        for block in self.blocks:
            x = block(x, self.causal)                                  # (B, T, C)
        return self.ln_f(x)                                            # (B, T, C)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.hidden(idx))                          # (B, T, V)

    def forward_features(self, idx: torch.Tensor) -> torch.Tensor:
        """One vector per sequence for probing (B, C): the mean of the final hidden states."""
        return self.hidden(idx).mean(dim=1)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameters (shared ones once); without the position embedding by default, as nanoGPT counts."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.pos_emb.weight.numel() if non_embedding else n


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def check_token_ids(idx: torch.Tensor, vocab_size: int, block_size: int | None = None, name: str = "idx"):
    """Token ids (B, T): integer dtype, values in [0, vocab_size), T <= block_size. Returns (B, T)."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        got = f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"{name} must be a LongTensor of token ids with shape (B, T), got {got}")
    B, T = idx.shape
    if T == 0:
        raise ValueError(f"{name} is empty: it needs at least one token")
    if block_size is not None and T > block_size:
        raise ValueError(f"sequence length {T} is longer than the context: the model was built with "
                         f"block_size={block_size}; cut the text into windows of at most {block_size} tokens")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} contains token id {lo if lo < 0 else hi}, outside the vocabulary "
                         f"[0, {vocab_size})")
    return B, T


ENCODERS = {"small_cnn": SmallCNN, "resnet18": ResNet18CIFAR, "vit_tiny": TinyViT, "pixels": PixelEncoder,
            "char_transformer": TinyTransformer}


def build_encoder(name: str, **kwargs) -> nn.Module:
    """``build_encoder("small_cnn", width=16)``; also ``"resnet18"``, ``"vit_tiny"``,
    ``"pixels"`` and ``"char_transformer"``. The recipe is stamped on the encoder
    (``encoder.spec``), so a method's saved config can rebuild it."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    encoder = ENCODERS[name](**kwargs)
    encoder.spec = {"name": name, "kwargs": dict(kwargs)}
    return encoder


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@contextlib.contextmanager
def eval_mode(*modules: nn.Module):
    """``with eval_mode(net): ...`` runs ``net`` in eval mode (BatchNorm's running
    statistics, no dropout) and gives each module back the train/eval mode it had, even
    when the block raises."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield modules[0] if len(modules) == 1 else modules
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
