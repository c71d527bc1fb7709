"""Loss functions of the course, each written from its paper.

Shape legend: B batch, D embedding width.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(z1: torch.Tensor, z2: torch.Tensor, name: str) -> None:
    if z1.dim() != 2 or z2.dim() != 2:
        raise ValueError(f"{name} expects z1 and z2 of shape (B, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape != z2.shape:
        raise ValueError(f"{name}: z1 and z2 must have the same shape (B, D); got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)} (the two views of one batch must line up)")
    if z1.shape[0] < 2:
        raise ValueError(f"{name} needs a batch of at least 2 (there are no negatives otherwise); got B={z1.shape[0]}")


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR
    (Chen et al. 2020, arXiv:2002.05709, Eq. 1 and Algorithm 1).

    z1, z2: (B, D) projections of two views of the same B images. Each of the 2B
    embeddings has one positive (its other view) and 2B - 2 negatives (every other
    embedding of both views). Returns the mean loss over all 2B anchors.

    The batch size is read from the tensors (a short last batch works), only the
    diagonal (self-similarity) is masked, and it is masked with -inf, which is exact
    in every float type.
    """
    _check_pair(z1, z2, "nt_xent_loss")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    B = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)                  # (2B, D)
    logits = z @ z.T / temperature                               # (2B, 2B) cosine / t
    self_mask = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))        # i is never its own candidate
    targets = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)]).to(z.device)  # i <-> i + B
    return F.cross_entropy(logits.float(), targets)
