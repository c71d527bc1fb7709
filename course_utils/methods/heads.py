"""Heads: the small MLPs that methods put on top of an encoder, built by one class.

``MLPHead(in_dim, hidden_dim, out_dim, num_layers, batch_norm, last_batch_norm)`` is
Linear -> [BatchNorm] -> ReLU repeated ``num_layers - 1`` times, then a last Linear
(optionally followed by a BatchNorm without learned scale, as SimSiam's projector has).
The named heads below only fix the paper's shape and defaults.

Shape legend: B batch, D width.
"""
from __future__ import annotations

import torch.nn as nn


class MLPHead(nn.Module):
    """(B, in_dim) -> (B, out_dim). With ``batch_norm`` the hidden Linear layers have no
    bias (BatchNorm's shift replaces it); ``last_batch_norm`` ends with BatchNorm(affine=False)."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, num_layers: int = 2,
                 batch_norm: bool = True, last_batch_norm: bool = False):
        super().__init__()
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        for name, value in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        layers, d = [], in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(d, hidden_dim, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(hidden_dim)] if batch_norm else []
            layers += [nn.ReLU(inplace=True)]
            d = hidden_dim
        layers.append(nn.Linear(d, out_dim, bias=not last_batch_norm))
        layers += [nn.BatchNorm1d(out_dim, affine=False)] if last_batch_norm else []
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, h):  # (B, in_dim) -> (B, out_dim)
        return self.net(h)


class ProjectionHead(MLPHead):
    """SimCLR's projection head g(h) (arXiv:2002.05709, Sec. 2.1): Linear-BN-ReLU-Linear
    with 2 layers, a linear map with 1. The loss is computed on z = g(h); the
    representation h before it is what evaluation uses."""


class BYOLProjectionHead(MLPHead):
    """BYOL's projector g (arXiv:2006.07733, Sec. 3.3): Linear -> BatchNorm -> ReLU -> Linear,
    4096 hidden and 256 output units in the paper."""

    def __init__(self, in_dim: int, hidden_dim: int = 4096, out_dim: int = 256):
        super().__init__(in_dim, hidden_dim, out_dim, num_layers=2, batch_norm=True)


class BYOLPredictionHead(MLPHead):
    """BYOL's predictor q (arXiv:2006.07733, Sec. 3.3): the projector's shape, mapping a
    projection to a prediction of the other view's target projection. SimSiam
    (arXiv:2011.10566, Sec. 4.1) uses it with a bottleneck, hidden = in_dim / 4."""

    def __init__(self, in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256):
        super().__init__(in_dim, hidden_dim, out_dim, num_layers=2, batch_norm=True)


class SimSiamProjectionHead(MLPHead):
    """SimSiam's projector (arXiv:2011.10566, Sec. 4.1): 3 layers with BatchNorm on every
    layer, including the output."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 2048):
        super().__init__(in_dim, hidden_dim, out_dim, num_layers=3, batch_norm=True, last_batch_norm=True)


def moco_projection_head(in_dim: int, hidden_dim: int = 512, out_dim: int = 128, mlp: bool = True) -> MLPHead:
    """MoCo v2's head (arXiv:2003.04297, Sec. 3): a 2-layer MLP without BatchNorm; MoCo v1's
    (arXiv:1911.05722) is linear (``mlp=False``)."""
    return MLPHead(in_dim, hidden_dim, out_dim, num_layers=2 if mlp else 1, batch_norm=False)


def classifier_head(in_dim: int, hidden_dim: int, out_dim: int) -> MLPHead:
    """The small MLP each pretext task (notebook 01) puts on the encoder: Linear-BN-ReLU-Linear."""
    return MLPHead(in_dim, hidden_dim, out_dim, num_layers=2, batch_norm=True)


class ProjectedEncoder(nn.Module):
    """An encoder-like view whose ``forward_features`` is z = g(f(x)), the head's output
    instead of the representation h = f(x), so that ``evaluate`` can measure it too (and
    show why evaluation uses h: SimCLR, arXiv:2002.05709 Sec. 4.2)."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.num_features = encoder.num_features if isinstance(head, nn.Identity) else head.out_dim

    def forward_features(self, x):  # (B, ...) -> (B, num_features)
        return self.head(self.encoder.forward_features(x))

    forward = forward_features
