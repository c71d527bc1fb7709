"""Clustering as a pretext task: SwAV (Caron et al. 2020, arXiv:2006.09882), and multi-crop.

SwAV learns K *prototypes* (cluster centres on the unit sphere) together with the encoder.
Each view's normalised embedding z gets scores against the prototypes, z . c_k; the
Sinkhorn-Knopp algorithm turns one view's scores into a soft *code* q (an assignment to the
prototypes) under an equipartition constraint (every prototype gets an equal share of the
batch), and the *other* view must predict that code from its own scores: the swapped
prediction. Without the equipartition every image can take the same code, and the task
becomes trivial (collapse).

Shape legend: B batch, K prototypes, D width, V views (crops), C/H/W image.

    x -> crops x_v -> encoder -> head -> z_v = normalize(.) -> scores s_v = z_v C^T (B, K)
    codes q_1, q_2 = sinkhorn(s_1), sinkhorn(s_2)        (no gradient)
    loss = mean over assigned i, other crops v != i of  -sum_k q_i log softmax(s_v / t)_k
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from .base import Method
from .heads import ProjectionHead

__all__ = ["sinkhorn", "swav_loss", "MultiCrop", "multi_crop", "SwAV", "encode_crops", "code_usage"]


# --------------------------------------------------------------------------------------
# Sinkhorn-Knopp and the swapped prediction


def _check_scores(scores, name: str = "scores") -> torch.Tensor:
    validate.tensor(name, scores, "(B, K)")
    if scores.dim() != 2 or scores.shape[0] < 1 or scores.shape[1] < 2:
        raise ValueError(f"{name} must have shape (B, K): B samples by K >= 2 prototypes, got "
                         f"{tuple(scores.shape)}")
    if not scores.is_floating_point() or not torch.isfinite(scores).all():
        raise ValueError(f"{name} must be finite floats (scores of normalised embeddings against "
                         "normalised prototypes lie in [-1, 1])")
    return scores


@torch.no_grad()
def sinkhorn(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft codes from prototype scores under equipartition (arXiv:2006.09882, Sec. 3.1, Eq. 3,
    and ``distributed_sinkhorn`` in facebookresearch/swav), without gradient.

    scores: (B, K), z . c_k. Q = exp(scores / epsilon), seen as a K x B transport plan, is
    scaled alternately so that each prototype (row of Q^T) holds 1/K of the mass and each
    sample (column) 1/B; after the last step every sample's code sums to 1 exactly and every
    prototype receives about B/K of the batch. Returns the codes (B, K), rows summing to 1.
    ``iterations=0`` gives plain ``softmax(scores / epsilon)``: no equipartition at all.
    """
    scores = _check_scores(scores)
    epsilon = validate.number("epsilon", epsilon, example="0.05, SwAV's value")
    iterations = validate.integer("iterations", iterations, low=0, example="3, SwAV's value")
    B, K = scores.shape
    logits = scores.float() / epsilon
    Q = torch.exp(logits - logits.max()).t()          # (K, B); the shift cancels in the scaling
    Q /= Q.sum()
    for _ in range(iterations):
        Q /= Q.sum(dim=1, keepdim=True) * K           # each prototype: 1/K of the mass
        Q /= Q.sum(dim=0, keepdim=True) * B           # each sample: 1/B
    if iterations == 0:
        Q /= Q.sum(dim=0, keepdim=True) * B
    return (Q * B).t()                                # (B, K): each code sums to 1


def swav_loss(scores: list, temperature: float = 0.1, epsilon: float = 0.05, iterations: int = 3,
              assign=(0, 1)) -> torch.Tensor:
    """SwAV's swapped prediction (arXiv:2006.09882, Eq. 1-2 and Algorithm 1), over multi-crop.

    scores: a list of V tensors (B, K), one per crop, global crops first. The codes come from
    the crops in ``assign`` (the global ones), computed with ``sinkhorn`` (no gradient); every
    other crop predicts each of them: -sum_k q_i,k log softmax(s_v / temperature)_k, averaged
    over the batch, over the V - 1 predicting crops and over the assigned crops."""
    if not isinstance(scores, (list, tuple)) or len(scores) < 2:
        raise ValueError(f"scores must be a list of at least 2 tensors (B, K), one per crop; got "
                         f"{type(scores).__name__}{'' if not isinstance(scores, (list, tuple)) else f' of {len(scores)}'}")
    for v, s in enumerate(scores):
        _check_scores(s, f"scores[{v}]")
        if s.shape != scores[0].shape:
            raise ValueError(f"every crop's scores must have one shape (B, K); scores[{v}] is "
                             f"{tuple(s.shape)}, scores[0] is {tuple(scores[0].shape)}")
    temperature = validate.number("temperature", temperature, example="0.1, SwAV's value")
    if not assign or any(not isinstance(i, int) or not 0 <= i < len(scores) for i in assign):
        raise ValueError(f"assign must name crops 0..{len(scores) - 1} (the global ones, e.g. (0, 1)), got {assign!r}")
    loss = 0.0
    for i in assign:
        q = sinkhorn(scores[i].detach(), epsilon, iterations)                       # (B, K)
        terms = [-(q * F.log_softmax(scores[v].float() / temperature, dim=1)).sum(1).mean()
                 for v in range(len(scores)) if v != i]
        loss = loss + sum(terms) / len(terms)
    return loss / len(assign)


def code_usage(codes: torch.Tensor) -> dict:
    """How the batch spreads over the prototypes, as 0-d tensors (no GPU sync): ``used``
    (prototypes that are some sample's top choice) and ``entropy`` of the mean code (log K
    when even, 0 when one prototype takes everything). codes: (B, K), rows summing to 1."""
    validate.tensor("codes", codes, "(B, K)")
    if codes.dim() != 2:
        raise ValueError(f"codes must have shape (B, K), got {tuple(codes.shape)}")
    mean = codes.float().mean(0)                                                   # (K,)
    entropy = -(mean * torch.log(mean.clamp_min(1e-12))).sum()
    top = torch.zeros_like(mean).scatter_(0, codes.argmax(1), 1.0)                 # 1 where chosen
    return {"used": top.sum(), "entropy": entropy}


# --------------------------------------------------------------------------------------
# multi-crop (arXiv:2006.09882, Sec. 3.2)


class MultiCrop:
    """``crops = MultiCrop(global_t, local_t, n_global, n_local)(x)``: a list of n_global views
    by ``global_t`` (large crops, full size), then n_local by ``local_t`` (small crops at a
    smaller size, so that they cost little). x: (B, C, H, W) -> list of (B, C, S, S)."""

    def __init__(self, global_transform, local_transform=None, n_global: int = 2, n_local: int = 0):
        self.n_global = validate.integer("n_global", n_global, example="2 global crops")
        self.n_local = validate.integer("n_local", n_local, low=0, example="4 local crops")
        if self.n_local and local_transform is None:
            raise ValueError("n_local > 0 needs a local_transform (small crops), e.g. multi_crop(...)")
        self.global_transform, self.local_transform = global_transform, local_transform

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> list:
        crops = [self.global_transform(x, generator=generator) for _ in range(self.n_global)]
        return crops + [self.local_transform(x, generator=generator) for _ in range(self.n_local)]

    def __len__(self) -> int:
        return self.n_global + self.n_local

    def __repr__(self) -> str:
        return (f"MultiCrop({self.global_transform!r}, {self.local_transform!r}, n_global={self.n_global}, "
                f"n_local={self.n_local})")


def multi_crop(image_size: int = 32, n_local: int = 4, local_size: int = 16, global_scale=(0.4, 1.0),
               local_scale=(0.1, 0.4), strength: float = 0.5, preset: str = "simclr", n_global: int = 2) -> MultiCrop:
    """SwAV's and DINO's multi-crop built on the course's augmentations: ``n_global`` crops of
    ``global_scale`` of the image at ``image_size`` and ``n_local`` of ``local_scale`` at
    ``local_size`` (the papers: 2 x 224 px and 6 x 96 px on ImageNet). ``preset="shapes"``
    adds notebook 03's random hue and rot90 (``simclr.shapes_augment``)."""
    from .simclr import preset_augment

    g = preset_augment(preset, image_size, strength, global_scale)
    local_size = validate.integer("local_size", local_size, example="16 for 32x32 images")
    local = preset_augment(preset, local_size, strength, local_scale) if n_local else None
    return MultiCrop(g, local, n_global, n_local)


def encode_crops(encode, crops: list) -> list:
    """Run ``encode`` once per crop size (the globals together, the locals together, as the
    papers do) and give back one output per crop, in order. crops: list of (B, C, S, S)."""
    out, i = [None] * len(crops), 0
    while i < len(crops):
        j = i
        while j < len(crops) and crops[j].shape == crops[i].shape:
            j += 1
        for k, y in enumerate(encode(torch.cat(crops[i:j])).chunk(j - i)):
            out[i + k] = y
        i = j
    return out


# --------------------------------------------------------------------------------------
# the method


class SwAV(Method):
    """SwAV (arXiv:2006.09882): encoder -> MLP head -> L2-normalised z; K prototypes (a linear
    layer without bias whose rows are renormalised to unit length before every step); codes
    by ``sinkhorn`` on the global crops; the swapped prediction ``swav_loss``.

    ``transform``: a ``MultiCrop`` (default: 2 global crops and no local ones), any callable
    returning a list of crops, or one callable used for two views. ``freeze_prototypes_steps``:
    the prototypes get no gradient for the first steps (the paper freezes them for the first
    epoch). ``sinkhorn_iterations=0`` removes the equipartition (the collapse experiment).
    Logs: ``prototypes_used`` and ``code_entropy`` of the first crop's codes (``code_usage``).
    The paper's queue (for batches smaller than K) is left out: here K is small.
    """

    def __init__(self, encoder: nn.Module, transform=None, proj_hidden_dim: int = 2048, proj_dim: int = 128,
                 num_prototypes: int = 3000, temperature: float = 0.1, epsilon: float = 0.05,
                 sinkhorn_iterations: int = 3, freeze_prototypes_steps: int = 0):
        super().__init__(encoder, transform or multi_crop(n_local=0))
        validate.integer("num_prototypes", num_prototypes, low=2, example="3000 on ImageNet, 30 for 8 classes")
        validate.number("temperature", temperature, example="0.1")
        validate.number("epsilon", epsilon, example="0.05")
        validate.integer("sinkhorn_iterations", sinkhorn_iterations, low=0, example="3")
        self.freeze_steps = validate.integer("freeze_prototypes_steps", freeze_prototypes_steps, low=0)
        self.projection_head = ProjectionHead(encoder.num_features, proj_hidden_dim, proj_dim, 2)
        self.prototypes = nn.Linear(proj_dim, num_prototypes, bias=False)
        self.temperature, self.epsilon, self.iterations = temperature, epsilon, sinkhorn_iterations
        self.step = 0

    def crops(self, x) -> list:
        out = self.transform(x)
        return list(out) if isinstance(out, (list, tuple)) else [out, self.transform(x)]

    def project(self, x):  # (B, C, H, W) -> z (B, proj_dim), on the unit sphere
        return F.normalize(self.projection_head(self.encoder.forward_features(x)), dim=1)

    def scores(self, z):  # (B, proj_dim) -> (B, K): z . c_k
        w = self.prototypes.weight
        return z @ (w.detach() if self.step < self.freeze_steps else w).t()

    def training_step(self, batch):
        x, _ = batch
        with torch.no_grad():                                     # prototypes back on the sphere
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        crops = self.crops(x)
        scores = encode_crops(lambda c: self.scores(self.project(c)), crops)
        loss = swav_loss(scores, self.temperature, self.epsilon, self.iterations, assign=(0, 1))
        usage = code_usage(sinkhorn(scores[0].detach(), self.epsilon, self.iterations))
        return {"loss": loss, "prototypes_used": usage["used"], "code_entropy": usage["entropy"]}

    def after_step(self, step: int, total_steps: int) -> None:
        self.step = step + 1
