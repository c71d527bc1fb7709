"""Barlow Twins (Zbontar et al. 2021, arXiv:2103.03230): redundancy reduction.

The two views' embeddings are standardised along the batch, and their cross-correlation
matrix C (D x D) is pushed towards the identity:

    L = sum_i (1 - C_ii)^2  +  lambda * sum_i sum_{j != i} C_ij^2
        invariance             redundancy reduction

The diagonal says "each dimension agrees across the views"; the off-diagonal says "two
different dimensions carry different information". A collapsed network (one output for
every image) has zero variance and cannot make C_ii = 1, so nothing else is needed to
prevent collapse: no negatives, no predictor, no momentum target.

Shape legend: B batch, D width, C/H/W image.

    x -> two views x1, x2 -> encoder f -> h1, h2 -> projector g -> z1, z2 (B, D)
    C = (standardised z1)^T (standardised z2) / B                       (D, D)
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import augment, validate
from ..losses import _check_pair
from .base import Method
from .heads import MLPHead

__all__ = ["BarlowTwins", "BarlowTwinsProjectionHead", "barlow_twins_loss", "barlow_twins_terms",
           "cross_correlation", "off_diagonal", "scaled_lambda", "check_pair"]

PAPER_LAMBDA, PAPER_DIM, PAPER_BATCH = 5e-3, 8192, 2048   # arXiv:2103.03230, Sec. 3 (ImageNet)


def check_pair(z1, z2, who: str) -> None:
    """The two views' embeddings: tensors of one shape (B, D) with B >= 2 and D >= 1 (the
    contrastive losses' check, with the reason a batch of one fails here)."""
    _check_pair(z1, z2, who, why="no statistics along the batch, no standard deviation; use batches "
                                 "of 2 or more images, drop_last=True")


def off_diagonal(c: torch.Tensor) -> torch.Tensor:
    """The D(D-1) entries of a square matrix c (D, D) off its diagonal, as one vector,
    row by row (the trick of the official code: drop the last entry, and the diagonal then
    starts every row of a (D-1, D+1) view)."""
    n, m = c.shape
    if n != m:
        raise ValueError(f"off_diagonal expects a square matrix, got shape {tuple(c.shape)}")
    return c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def _standardise(z: torch.Tensor, eps: float) -> torch.Tensor:
    """Each column of z (B, D) to mean 0 and (biased) variance 1 along the batch."""
    z = z.float()
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """C (D, D) with C_ij = sum_b z1n_bi z2n_bj / B, z1n and z2n standardised along the
    BATCH (dim 0), as BatchNorm without affine parameters does (the official code).

    The variance is the biased one (divide by B), so that identical views give C_ii = 1
    exactly; ``eps`` inside the square root keeps a constant dimension finite (its C_ii
    is then 0, not NaN). The batch size comes from the tensor, so the loss is the same
    for a batch and for that batch repeated twice."""
    check_pair(z1, z2, "cross_correlation")
    eps = validate.number("eps", eps, low_ok=True, example="1e-5")
    B = z1.shape[0]
    return _standardise(z1, eps).T @ _standardise(z2, eps) / B          # (D, D)


def barlow_twins_terms(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> dict:
    """The two sums of the loss, unweighted: ``invariance`` = sum_i (1 - C_ii)^2 and
    ``redundancy`` = sum_{i != j} C_ij^2 (0-d tensors), with ``c`` itself."""
    c = cross_correlation(z1, z2, eps)
    return {"invariance": (1 - torch.diagonal(c)).pow(2).sum(), "redundancy": off_diagonal(c).pow(2).sum(), "c": c}


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float = PAPER_LAMBDA,
                      eps: float = 1e-5) -> torch.Tensor:
    """The Barlow Twins loss (arXiv:2103.03230, Eq. 1 and Algorithm 1):
    sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2. z1, z2: (B, D). ``lambd`` > 0
    (the paper: 5e-3 for D = 8192; for other widths see ``scaled_lambda``)."""
    lambd = validate.number("lambd", lambd, example="5e-3, or scaled_lambda(dim, batch_size)")
    t = barlow_twins_terms(z1, z2, eps)
    return t["invariance"] + lambd * t["redundancy"]


def scaled_lambda(dim: int, batch_size: int) -> float:
    """lambda for width ``dim`` and batch ``batch_size`` that keeps the paper's balance.

    Even for independent dimensions an off-diagonal C_ij estimated from B images is not 0:
    its square is about 1/B. The redundancy term's floor is therefore about
    lambda * D (D - 1) / B, against at most D for the invariance term. Keeping their ratio
    lambda (D - 1) / B at the paper's (5e-3 * 8191 / 2048, about 0.02) gives
    lambda = 0.02 * B / (D - 1): the paper's 5e-3 at D = 8192, B = 2048."""
    dim = validate.integer("dim", dim, low=2, example="128")
    batch_size = validate.integer("batch_size", batch_size, low=2, example="256")
    return PAPER_LAMBDA * (PAPER_DIM - 1) / PAPER_BATCH * batch_size / (dim - 1)


class BarlowTwinsProjectionHead(MLPHead):
    """The projector of arXiv:2103.03230 (Sec. 3): three Linear layers of width 8192, the
    first two followed by BatchNorm and ReLU. (B, in_dim) -> (B, out_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int = 8192, out_dim: int = 8192):
        super().__init__(in_dim, hidden_dim, out_dim, num_layers=3, batch_norm=True)


class BarlowTwins(Method):
    """encoder f, projector g; loss = barlow_twins_loss(g(f(x1)), g(f(x2)), lambd).

    ``lambd=None`` takes ``scaled_lambda(proj_dim, batch_size)`` with ``batch_size`` the
    batch you train with (the loss is invariant to it; only the balance of the two terms
    depends on it). Logs the two terms and the mean |C_ij| off the diagonal."""

    def __init__(self, encoder: nn.Module, proj_hidden_dim: int = 8192, proj_dim: int = 8192,
                 lambd: float | None = PAPER_LAMBDA, batch_size: int = PAPER_BATCH, transform=None):
        super().__init__(encoder, transform or augment.simclr_augment())
        self.projection_head = BarlowTwinsProjectionHead(encoder.num_features, proj_hidden_dim, proj_dim)
        self.lambd = scaled_lambda(proj_dim, batch_size) if lambd is None else \
            validate.number("lambd", lambd, example="5e-3, or None for scaled_lambda(proj_dim, batch_size)")

    def project(self, x):  # (B, C, H, W) -> z = g(f(x)), (B, proj_dim)
        return self.projection_head(self.encoder.forward_features(x))

    def training_step(self, batch):
        x, _ = batch
        x1, x2 = self.views(x)
        z1, z2 = self.project(x1), self.project(x2)          # one pass per view, as the paper (B, D) each
        t = barlow_twins_terms(z1, z2)
        loss = t["invariance"] + self.lambd * t["redundancy"]
        off = off_diagonal(t["c"].detach()).abs().mean()
        return {"loss": loss, "invariance": t["invariance"].detach(), "redundancy": t["redundancy"].detach(),
                "mean_abs_offdiag": off}
