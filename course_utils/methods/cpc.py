"""Contrastive Predictive Coding (van den Oord, Li & Vinyals 2018, arXiv:1807.03748) on images,
as in CPC v2 (Henaff et al. 2019, arXiv:1905.09272): an image is a grid of overlapping
patches, read from the top row down like a sequence.

    x (B, 3, H, W) -> patches (B, R, C, 3, p, p) -> encoder g_enc -> z (B, R, C, D)
    each column, top to bottom, is a sequence: GRU g_ar over z_1..z_t -> context c_t (D_c)
    for k = 1..K:  score(z, c_t) = z^T W_k c_t      (one linear map W_k per distance k)
    InfoNCE (Eq. 4): pick z_{t+k} of the same column among every latent k rows ahead in the batch

The context has seen only the rows above, so it must predict what lies below: a far row is
harder to predict than the next, and the accuracy falls with k. Evaluation reads the mean of
the patch latents (``PatchGrid.forward_features``), as CPC v2 does.

Shape legend: B batch, R rows and C columns of patches, T steps of a sequence, D latent width,
D_c context width, K the farthest step predicted, N_k the (sequence, step) pairs at distance k.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from .base import Method, channels_last

__all__ = ["patch_grid", "PatchGrid", "cpc_logits", "cpc_loss", "CPC"]


def patch_grid(x: torch.Tensor, patch: int = 8, stride: int = 4) -> torch.Tensor:
    """Overlapping patches: images (B, C, H, W) -> (B, R, Cols, C, patch, patch), R = (H - patch) // stride + 1."""
    validate.tensor("x", x, "(B, C, H, W)")
    validate.integer("patch", patch, example="8 pixels")
    validate.integer("stride", stride, example="4 pixels")
    if x.dim() != 4 or x.shape[-1] < patch or x.shape[-2] < patch:
        raise ValueError(f"x must be images (B, C, H, W) at least {patch} pixels a side, got {tuple(x.shape)}")
    p = x.unfold(2, patch, stride).unfold(3, patch, stride)      # (B, C, R, Cols, patch, patch)
    return p.permute(0, 2, 3, 1, 4, 5).contiguous()


class PatchGrid(nn.Module):
    """A patch encoder over the grid: ``forward_grid(x) -> (B, R, Cols, D)``; ``forward_features(x)
    -> (B, D)``, the mean over the grid. ``backbone``: any image encoder (it reads patch x patch images)."""

    def __init__(self, backbone: nn.Module, patch: int = 8, stride: int = 4):
        super().__init__()
        self.backbone, self.patch, self.stride = backbone, patch, stride
        self.num_features = backbone.num_features

    @property
    def spec(self):
        return getattr(self.backbone, "spec", None)

    def forward_grid(self, x: torch.Tensor) -> torch.Tensor:
        p = patch_grid(x, self.patch, self.stride)                    # (B, R, Cols, C, p, p)
        B, R, Cols = p.shape[:3]
        z = self.backbone.forward_features(channels_last(p.flatten(0, 2)))   # (B R Cols, D)
        return z.view(B, R, Cols, -1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_grid(x).mean(dim=(1, 2))                 # (B, D)

    forward = forward_features


def _check_sequences(z, c, predictors):
    validate.tensor("z", z, "(B, T, D)")
    validate.tensor("c", c, "(B, T, D_c)")
    if z.dim() != 3 or c.dim() != 3 or z.shape[:2] != c.shape[:2]:
        raise ValueError(f"z (B, T, D) and c (B, T, D_c) must share B and T; got {tuple(z.shape)} and {tuple(c.shape)}")
    K = len(predictors)
    if K < 1 or K >= z.shape[1]:
        raise ValueError(f"predictors must hold K >= 1 maps W_1..W_K with K < T (a step k ahead must exist); "
                         f"got K={K} for T={z.shape[1]}: use fewer predictors or longer sequences")


def cpc_logits(z: torch.Tensor, c: torch.Tensor, W: nn.Module, k: int) -> torch.Tensor:
    """Scores z_j^T W_k c_t of every context against every latent k steps ahead, (N_k, N_k):
    row n = context (b, t), column m = latent (b', t' + k); the positives are on the diagonal."""
    B, T, D = z.shape
    pred = W(c[:, :T - k]).reshape(-1, D)                            # (N_k, D): W_k c_t
    target = z[:, k:].reshape(-1, D)                                 # (N_k, D): z_{t+k}
    return pred.float() @ target.float().t()


def cpc_loss(z: torch.Tensor, c: torch.Tensor, predictors) -> tuple[torch.Tensor, list[float]]:
    """CPC's InfoNCE (arXiv:1807.03748, Eq. 4), averaged over k = 1..K and over the contexts,
    with every latent k steps ahead in the batch (other steps, other sequences) as a negative.

    z: (B, T, D) latents; c: (B, T, D_c) contexts, c_t summarising z_1..z_t; ``predictors``:
    K modules D_c -> D (W_1..W_K). Returns (loss, [accuracy at k for k = 1..K]), accuracy the
    share of contexts whose best-scoring latent is the true one."""
    _check_sequences(z, c, predictors)
    losses, accuracies = [], []
    for k, W in enumerate(predictors, start=1):
        logits = cpc_logits(z, c, W, k)
        targets = torch.arange(len(logits), device=logits.device)
        losses.append(F.cross_entropy(logits, targets))
        accuracies.append((logits.argmax(1) == targets).float().mean().detach())
    return torch.stack(losses).mean(), accuracies


class CPC(Method):
    """``encoder``: a backbone for one patch (e.g. ``build_encoder("small_cnn", width=16)``),
    wrapped in a ``PatchGrid``; a GRU reads each column of latents top to bottom
    (``context_dim``) and ``K`` linear maps predict 1..K rows ahead. ``transform``: an
    optional augmentation of the whole image. The step logs ``acc_k`` for every k."""

    def __init__(self, encoder: nn.Module, patch: int = 8, stride: int = 4, context_dim: int = 128, K: int = 3,
                 transform=None):
        super().__init__(PatchGrid(encoder, patch, stride), transform)
        validate.integer("K", K, example="3 rows ahead")
        validate.integer("context_dim", context_dim, example="128")
        D = encoder.num_features
        self.context = nn.GRU(D, context_dim, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(context_dim, D, bias=False) for _ in range(K))
        self.K = K

    def sequences(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images -> (z, c), each column a sequence: (B Cols, R, D) and (B Cols, R, D_c)."""
        grid = self.encoder.forward_grid(x)                          # (B, R, Cols, D)
        z = grid.transpose(1, 2).flatten(0, 1)                        # (B Cols, R, D): top to bottom
        c, _ = self.context(z)                                        # (B Cols, R, D_c)
        return z, c

    def training_step(self, batch):
        x, _ = batch
        x = self.transform(x) if self.transform is not None else x
        z, c = self.sequences(x)
        if self.K >= z.shape[1]:
            raise ValueError(f"K={self.K} rows ahead, but the images have only {z.shape[1]} rows of patches; "
                             "use a smaller K, or a smaller stride")
        loss, accuracies = cpc_loss(z, c, self.predictors)
        return {"loss": loss, **{f"acc_{k}": a for k, a in enumerate(accuracies, start=1)}}
