"""Learning without negatives: BYOL (Grill et al. 2020, arXiv:2006.07733) and SimSiam
(Chen & He 2020, arXiv:2011.10566).

Both regress one view's prediction onto the other view's projection. Nothing in the loss
pushes different images apart, so something else must keep the network from mapping
every image to the same point (collapse): the *predictor* on the online branch and the
*stop-gradient* on the target branch. BYOL's target is also a slow exponential moving
average (EMA) of the online network; SimSiam shows the EMA is optional.

Shape legend: B batch, D width, C/H/W image.

    online:  x -> encoder f -> projector g -> predictor q -> p   (trained)
    target:  x -> encoder f' -> projector g'             -> z   (EMA of f, g; no gradient)
"""
from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment
from ..models import eval_mode
from .base import Method
from .heads import BYOLPredictionHead, BYOLProjectionHead, SimSiamProjectionHead
from .momentum import check_momentum, cosine_momentum, momentum_copy, update_momentum

__all__ = ["BYOL", "SimSiam", "regression_loss", "symmetric_regression_loss", "byol_transforms",
           "embedding_std", "effective_rank", "collapse_monitor",
           # the EMA target, written once in methods.momentum for every method that has one
           "cosine_momentum", "momentum_copy", "update_momentum"]


# --------------------------------------------------------------------------------------
# the loss


def regression_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's normalised regression loss (arXiv:2006.07733, Eq. 2), averaged over the batch:

        || p/||p|| - z/||z|| ||^2  =  2 - 2 cos(p, z)      (in [0, 4])

    p: (B, D) online predictions; z: (B, D) target projections. The loss does NOT detach
    ``z``: the caller applies the stop-gradient (BYOL computes z under ``no_grad``), so
    that the notebook can remove it on purpose.
    """
    for name, t in (("p", p), ("z", z)):
        if not torch.is_tensor(t):
            raise TypeError(f"regression_loss expects tensors; {name} is a {type(t).__name__} "
                            f"(use torch.tensor({name}) or torch.stack({name}))")
    if p.dim() != 2 or z.dim() != 2:
        raise ValueError(f"regression_loss expects p and z of shape (B, D); got {tuple(p.shape)} "
                         f"and {tuple(z.shape)}")
    if p.shape != z.shape:
        raise ValueError(f"regression_loss: p and z must have the same shape (B, D); got "
                         f"{tuple(p.shape)} and {tuple(z.shape)}")
    cos = F.cosine_similarity(p.float(), z.float(), dim=1, eps=1e-8)  # (B,)
    return (2 - 2 * cos).mean()


def symmetric_regression_loss(p1, p2, z1, z2) -> torch.Tensor:
    """BYOL's symmetrised loss L + L~ (arXiv:2006.07733, Sec. 3.1): view 1's prediction
    regresses onto view 2's target and vice versa. All (B, D). In [0, 8]."""
    return regression_loss(p1, z2) + regression_loss(p2, z1)


# --------------------------------------------------------------------------------------
# collapse metrics


def embedding_std(z: torch.Tensor) -> float:
    """Standard deviation of the L2-normalised embeddings over the batch, averaged over
    the D dimensions (SimSiam, arXiv:2011.10566, Sec. 4.1). z: (B, D).

    A healthy spread gives about 1/sqrt(D) (a unit vector spread evenly over D dims);
    a collapsed output, the same vector for every image, gives 0."""
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"embedding_std expects z of shape (B, D) with B >= 2, got {tuple(z.shape)}")
    return F.normalize(z.float(), dim=1).std(dim=0).mean().item()


def effective_rank(z: torch.Tensor, eps: float = 1e-12) -> float:
    """exp(entropy) of the normalised singular values of the embedding matrix z (B, D)
    (Roy & Vetterli 2007; RankMe, arXiv:2210.02885). Between 1 (every row the same
    direction: complete collapse) and min(B, D) (all directions used equally); a
    value far below min(B, D) means dimensional collapse."""
    if z.dim() != 2:
        raise ValueError(f"effective_rank expects z of shape (B, D), got {tuple(z.shape)}")
    s = torch.linalg.svdvals(z.float())
    p = s / (s.sum() + eps)
    return torch.exp(-(p * torch.log(p + eps)).sum()).item()


# --------------------------------------------------------------------------------------
# the methods


def byol_transforms(image_size: int = 32, strength: float = 0.5, blur: bool = False,
                    crop_scale=(0.08, 1.0), preset: str = "simclr"):
    """BYOL's two asymmetric augmentations (arXiv:2006.07733, Table 6), batched: the same
    crop, flip, colour jitter and grayscale; view 1 always blurred, view 2 rarely blurred
    and sometimes solarised. ``blur=False`` drops the blur, as is usual on 32x32 images.

    ``preset="shapes"`` builds both on notebook 03's ``simclr.shapes_augment`` (a full
    random hue and a rotation by a multiple of 90 degrees on top), for the embedded data.
    Returns (transform of view 1, transform of view 2)."""
    if preset not in ("simclr", "shapes"):
        raise ValueError(f"preset must be 'simclr' or 'shapes', got {preset!r}")
    if preset == "shapes":
        from .simclr import shapes_augment as make
    else:
        make = augment.simclr_augment
    common = dict(strength=strength, crop_scale=tuple(crop_scale))
    t1 = make(image_size, **common, blur_p=1.0 if blur else 0.0)
    t2 = make(image_size, **common, blur_p=0.1 if blur else 0.0, solarize_p=0.2)
    return t1, t2


class BYOL(Method):
    """BYOL (arXiv:2006.07733): online encoder + projector + predictor, target encoder +
    projector as an EMA of the online ones (``methods.momentum``), symmetric regression loss.

    ``transform``: a pair (view 1, view 2) of BYOL's asymmetric augmentations (default
    ``byol_transforms()``), or one callable used for both views.
    ``use_predictor=False`` removes the predictor (the collapse experiment).
    ``momentum_base``: tau_base of the cosine schedule; ``after_step`` updates the target
    (parameters and BatchNorm statistics alike: one consistent averaged network).
    """

    def __init__(self, encoder: nn.Module, proj_hidden_dim: int = 4096, proj_dim: int = 256,
                 pred_hidden_dim: int = 4096, momentum_base: float = 0.996, transform=None,
                 use_predictor: bool = True):
        super().__init__(encoder, transform or byol_transforms())
        check_momentum(momentum_base, "momentum_base")
        self.projection_head = BYOLProjectionHead(encoder.num_features, proj_hidden_dim, proj_dim)
        self.prediction_head = (BYOLPredictionHead(proj_dim, pred_hidden_dim, proj_dim)
                                if use_predictor else nn.Identity())
        self.target_encoder = momentum_copy(self.encoder)
        self.target_projection_head = momentum_copy(self.projection_head)
        self.momentum_base, self.momentum = momentum_base, momentum_base

    def project(self, x):  # (B, C, H, W) -> online projection (B, proj_dim)
        return self.projection_head(self.encoder.forward_features(x))

    @torch.no_grad()
    def target_project(self, x):  # (B, C, H, W) -> target projection (B, proj_dim), no gradient
        return self.target_projection_head(self.target_encoder.forward_features(x))

    def training_step(self, batch):
        x, _ = batch
        x1, x2 = self.views(x)
        p1, p2 = self.prediction_head(self.project(x1)), self.prediction_head(self.project(x2))
        z1, z2 = self.target_project(x1), self.target_project(x2)  # stop-gradient: no_grad
        return {"loss": symmetric_regression_loss(p1, p2, z1, z2), "momentum": self.momentum}

    def after_step(self, step: int, total_steps: int) -> None:
        """After the optimiser step k (0-based): target <- EMA with tau at k + 1."""
        self.momentum = cosine_momentum(min(step + 1, total_steps), total_steps, self.momentum_base)
        update_momentum(self.encoder, self.target_encoder, self.momentum)
        update_momentum(self.projection_head, self.target_projection_head, self.momentum)


class SimSiam(Method):
    """SimSiam (arXiv:2011.10566, Algorithm 1): BYOL without the EMA. One network f (encoder
    + projector) and a bottleneck predictor h; loss = D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2
    with D = -cosine, the same direction of gradient as BYOL's 2 - 2 cos (in [-1, 1]).

    ``stop_gradient=False`` removes the stop-gradient (the paper's Fig. 2: it collapses).
    """

    def __init__(self, encoder: nn.Module, proj_hidden_dim: int = 2048, proj_dim: int = 2048,
                 pred_hidden_dim: int = 512, transform=None, stop_gradient: bool = True):
        super().__init__(encoder, transform or augment.simclr_augment())
        self.projection_head = SimSiamProjectionHead(encoder.num_features, proj_hidden_dim, proj_dim)
        self.prediction_head = BYOLPredictionHead(proj_dim, pred_hidden_dim, proj_dim)
        self.stop_gradient = stop_gradient

    def project(self, x):  # (B, C, H, W) -> (B, proj_dim)
        return self.projection_head(self.encoder.forward_features(x))

    def training_step(self, batch):
        x, _ = batch
        x1, x2 = self.views(x)
        z1, z2 = self.project(x1), self.project(x2)
        p1, p2 = self.prediction_head(z1), self.prediction_head(z2)
        if self.stop_gradient:
            z1, z2 = z1.detach(), z2.detach()
        return (regression_loss(p1, z2) + regression_loss(p2, z1)) / 4 - 1  # = -(cos + cos) / 2


# --------------------------------------------------------------------------------------
# watching for collapse during training


def collapse_monitor(images: torch.Tensor, knn=None):
    """An ``eval_fn`` for ``train``: collapse metrics of ``method`` on fixed ``images``
    (B, C, H, W) float in [0, 1], in eval mode: the std of the normalised projections
    (``std``) and of the encoder features (``std_h``), their effective ranks (``erank``,
    ``erank_h``), and optionally ``knn`` accuracy from an eval_fn such as
    ``evaluate.knn_monitor``."""
    def eval_fn(method):
        with eval_mode(method), torch.no_grad():
            x = images.to(next(method.parameters()).device)
            h = method.encoder.forward_features(x)
            z = method.projection_head(h)
        out = {"std": embedding_std(z), "std_h": embedding_std(h),
               "erank": effective_rank(z), "erank_h": effective_rank(h)}
        return out | (knn(method) if knn is not None else {})
    return eval_fn
