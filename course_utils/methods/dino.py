"""Self-distillation without labels: DINO (Caron et al. 2021, arXiv:2104.14294).

A student network and a teacher (an EMA of the student, no gradient) both map a crop to a
distribution over K output dimensions. The student, shown every crop (global and local),
must match the teacher's distribution of the *other* global crops (cross-entropy). Two
operations on the teacher's output keep this from collapsing (Sec. 3.1 and Fig. 7):

* **centering**: subtract a running mean c of the teacher's logits, so that no single
  dimension can win for every image (alone this would push towards uniform outputs);
* **sharpening**: a low teacher temperature (0.04 against the student's 0.1), which pushes
  each output towards one dimension (alone this would collapse onto one dimension).

Shape legend: B batch, K output dimensions, D width, V crops, C/H/W image.

    P_t(x) = softmax((g_t(x) - c) / tau_t)      P_s(x) = softmax(g_s(x) / tau_s)
    loss = mean over global i, crops v != i of  -sum_k P_t(x_i)_k log P_s(x_v)_k
    c <- m c + (1 - m) mean over the batch of the teacher's logits   (after each step)
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from ..models import TinyViT
from .base import Method
from .momentum import check_momentum, cosine_momentum, momentum_copy, update_momentum
from .swav import encode_crops, multi_crop

__all__ = ["teacher_probs", "dino_loss", "update_center", "entropy", "kl_divergence", "DINOHead",
           "DINO", "vit_features"]


# --------------------------------------------------------------------------------------
# the loss and its centre


def _check_logits(t, name: str, K: int | None = None) -> torch.Tensor:
    validate.tensor(name, t, "(B, K)")
    if t.dim() != 2 or t.shape[1] < 2 or (K is not None and t.shape[1] != K):
        want = f"(B, {K})" if K is not None else "(B, K) with K >= 2"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    return t


def teacher_probs(teacher_logits: torch.Tensor, center: torch.Tensor, temperature: float = 0.04) -> torch.Tensor:
    """The teacher's target: centred, then sharpened (arXiv:2104.14294, Algorithm 1):
    softmax((t - c) / temperature) along K. teacher_logits: (B, K); center: (K,) or (1, K)."""
    _check_logits(teacher_logits, "teacher_logits")
    validate.tensor("center", center, "(K,)")
    K = teacher_logits.shape[1]
    if center.numel() != K:
        raise ValueError(f"center must have K = {K} entries (one per output dimension), got shape "
                         f"{tuple(center.shape)}; start it as torch.zeros({K})")
    temperature = validate.number("temperature", temperature, example="0.04, DINO's teacher")
    return F.softmax((teacher_logits.float() - center.reshape(1, K).float()) / temperature, dim=1)


def dino_loss(student: list, teacher: list, center: torch.Tensor, student_temp: float = 0.1,
              teacher_temp: float = 0.04) -> torch.Tensor:
    """DINO's loss (arXiv:2104.14294, Eq. 3 and Algorithm 1; ``DINOLoss`` in facebookresearch/dino).

    student: list of V logits (B, K), global crops first; teacher: list of the G global crops'
    logits (B, K) (G <= V, the same crops in the same order). For each teacher crop i and each
    student crop v != i: -sum_k P_t(x_i)_k log P_s(x_v)_k, averaged over the batch and the
    pairs. The teacher side carries no gradient (it is detached here)."""
    for name, group in (("student", student), ("teacher", teacher)):
        if not isinstance(group, (list, tuple)) or not group:
            raise ValueError(f"{name} must be a non-empty list of logits (B, K), one per crop; got {type(group).__name__}")
    if len(teacher) > len(student) or len(student) < 2:
        raise ValueError(f"the student needs at least 2 crops and at least as many as the teacher (its global "
                         f"crops come first); got {len(student)} student and {len(teacher)} teacher crops")
    shape = student[0].shape
    for name, group in (("student", student), ("teacher", teacher)):
        for v, t in enumerate(group):
            _check_logits(t, f"{name}[{v}]")
            if t.shape != shape:
                raise ValueError(f"every crop's logits must share one shape (B, K) = {tuple(shape)}; "
                                 f"{name}[{v}] is {tuple(t.shape)}")
    validate.number("student_temp", student_temp, example="0.1")
    log_p = [F.log_softmax(s.float() / student_temp, dim=1) for s in student]
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        q = teacher_probs(t.detach(), center, teacher_temp)
        for v, lp in enumerate(log_p):
            if v != i:                                    # never the same crop on both sides
                total, pairs = total + (-(q * lp).sum(dim=1)).mean(), pairs + 1
    return total / pairs


@torch.no_grad()
def update_center(center: torch.Tensor, teacher_logits: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """The new centre (arXiv:2104.14294, Eq. 4): m c + (1 - m) mean over the batch of the
    *teacher's* logits (never the student's). center: (K,); teacher_logits: (B, K), all the
    teacher's crops concatenated. Returns a new tensor (K,)."""
    validate.tensor("center", center, "(K,)")
    _check_logits(teacher_logits, "teacher_logits", center.numel())
    check_momentum(momentum, "momentum")
    return momentum * center.reshape(-1) + (1 - momentum) * teacher_logits.detach().float().mean(0).to(center.dtype)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the rows of probs (B, K): 0 for one-hot rows, log K for uniform."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(1).mean()


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean KL(p || q) over the rows of two distributions (B, K); 0 when they agree."""
    return (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(1).mean()


# --------------------------------------------------------------------------------------
# the head and the ViT on small crops


class DINOHead(nn.Module):
    """DINO's projection head (arXiv:2104.14294, Sec. 3.1 and Appendix): a 3-layer MLP with
    GELU to a ``bottleneck_dim`` code, L2-normalised, then a linear layer to K outputs whose
    weight rows are normalised too (the paper's weight-normalised last layer with its scale
    fixed at 1). x: (B, D) -> logits (B, K), each in [-1, 1]."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, bottleneck_dim: int = 256, out_dim: int = 65536):
        super().__init__()
        for name, v in (("hidden_dim", hidden_dim), ("bottleneck_dim", bottleneck_dim), ("out_dim", out_dim)):
            validate.integer(name, v, low=2 if name == "out_dim" else 1)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        self.last = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.last, std=0.02)

    def forward(self, x):
        z = F.normalize(self.mlp(x), dim=1)                 # (B, bottleneck)
        return z @ F.normalize(self.last, dim=1).t()        # (B, K)


def vit_features(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``encoder.forward_features(x)``, also for a ``TinyViT`` given crops smaller than the
    images it was built for: its position embeddings are resized (bicubic) to the crop's
    patch grid, as DINO does for its 96-pixel local crops. x: (B, C, S, S) -> (B, D)."""
    if not isinstance(encoder, TinyViT) or x.shape[-1] == encoder.image_size:
        return encoder.forward_features(x)
    p, n = encoder.patch_size, encoder.image_size // encoder.patch_size
    if x.dim() != 4 or x.shape[-1] != x.shape[-2] or x.shape[-1] % p:
        raise ValueError(f"crops for a ViT with patch size {p} must be square with a side divisible by {p}; "
                         f"got {tuple(x.shape)}")
    m = x.shape[-1] // p
    tokens = encoder.patch_embed(encoder.normalize(x)).flatten(2).transpose(1, 2)       # (B, m*m, D)
    pos = encoder.pos_embed.reshape(1, n, n, -1).permute(0, 3, 1, 2)                    # (1, D, n, n)
    pos = F.interpolate(pos, size=(m, m), mode="bicubic", align_corners=False)
    return encoder.forward_tokens(tokens + pos.flatten(2).transpose(1, 2)).mean(dim=1)


# --------------------------------------------------------------------------------------
# the method


class DINO(Method):
    """DINO (arXiv:2104.14294): student = encoder + ``DINOHead``; teacher = their EMA
    (``methods.momentum``, cosine schedule from ``momentum_base``); the teacher sees the
    global crops only, the student every crop of the ``MultiCrop`` transform.

    ``centering=False`` keeps the centre at 0, ``sharpening=False`` sets the teacher's
    temperature to the student's: the paper's collapse experiments (Fig. 7).
    ``warmup_teacher_temp`` (if given) rises linearly to ``teacher_temp`` over the first
    ``warmup_fraction`` of the steps (the paper: 0.04 to 0.07 over 30 epochs).
    Logs: the teacher's entropy, the KL between teacher and student, and their sum, the loss.
    """

    def __init__(self, encoder: nn.Module, transform=None, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 out_dim: int = 65536, student_temp: float = 0.1, teacher_temp: float = 0.04,
                 warmup_teacher_temp: float | None = None, warmup_fraction: float = 0.0,
                 center_momentum: float = 0.9, momentum_base: float = 0.996, centering: bool = True,
                 sharpening: bool = True):
        super().__init__(encoder, transform or multi_crop(n_local=0))
        validate.number("student_temp", student_temp, example="0.1")
        validate.number("teacher_temp", teacher_temp, example="0.04")
        validate.number("warmup_fraction", warmup_fraction, low_ok=True, high=1.0)
        check_momentum(center_momentum, "center_momentum")
        check_momentum(momentum_base, "momentum_base")
        self.head = DINOHead(encoder.num_features, hidden_dim, bottleneck_dim, out_dim)
        self.teacher_encoder, self.teacher_head = momentum_copy(self.encoder), momentum_copy(self.head)
        self.register_buffer("center", torch.zeros(out_dim))
        self.student_temp, self.final_teacher_temp = student_temp, teacher_temp
        self.warmup_teacher_temp, self.warmup_fraction = warmup_teacher_temp, warmup_fraction
        self.teacher_temp = teacher_temp if warmup_teacher_temp is None else warmup_teacher_temp
        self.center_momentum, self.momentum_base, self.momentum = center_momentum, momentum_base, momentum_base
        self.centering, self.sharpening = centering, sharpening

    def student(self, x):  # crop (B, C, S, S) -> logits (B, K)
        return self.head(vit_features(self.encoder, x))

    @torch.no_grad()
    def teacher(self, x):  # global crop (B, C, H, W) -> logits (B, K), no gradient
        return self.teacher_head(vit_features(self.teacher_encoder, x))

    def training_step(self, batch):
        x, _ = batch
        crops = self.transform(x)
        n_global = getattr(self.transform, "n_global", 2)
        s = encode_crops(self.student, crops)
        t = encode_crops(self.teacher, crops[:n_global])
        center = self.center if self.centering else torch.zeros_like(self.center)
        t_temp = self.teacher_temp if self.sharpening else self.student_temp
        loss = dino_loss(s, t, center, self.student_temp, t_temp)
        if self.centering:
            self.center.copy_(update_center(self.center, torch.cat(t), self.center_momentum))
        with torch.no_grad():                 # the meters of Fig. 7, on the first global crop's pairs
            p_t = teacher_probs(t[0], center, t_temp)
            p_s = F.softmax(s[1].detach().float() / self.student_temp, dim=1)
            h, kl = entropy(p_t), kl_divergence(p_t, p_s)
        return {"loss": loss, "teacher_entropy": h, "kl": kl}

    def after_step(self, step: int, total_steps: int) -> None:
        """Teacher <- EMA of the student (tau rises along a cosine); teacher temperature warm-up."""
        self.momentum = cosine_momentum(min(step + 1, total_steps), total_steps, self.momentum_base)
        update_momentum(self.encoder, self.teacher_encoder, self.momentum)
        update_momentum(self.head, self.teacher_head, self.momentum)
        if self.warmup_teacher_temp is not None:
            warm = max(1, round(self.warmup_fraction * total_steps))
            w = min(1.0, (step + 1) / warm)
            self.teacher_temp = self.warmup_teacher_temp + w * (self.final_teacher_temp - self.warmup_teacher_temp)
