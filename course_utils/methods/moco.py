"""MoCo: momentum contrast (He et al. 2019, arXiv:1911.05722; MoCo v2: Chen et al. 2020,
arXiv:2003.04297).

SimCLR takes its negatives from the current batch, so it needs large batches. MoCo keeps
a FIFO **queue** of keys from past batches (K of them, independent of the batch size) and
encodes keys with a **momentum encoder**: a slowly moving average of the query encoder,
so that keys enqueued a few hundred steps apart stay comparable.

    query:  x1 -> encoder f_q -> head g_q -> q   (trained by gradient descent)
    key:    x2 -> encoder f_k -> head g_k -> k   (no gradient; theta_k <- m theta_k + (1-m) theta_q)
    loss:   InfoNCE with logits [q.k, q.queue] / t, target 0; then enqueue k, dequeue the oldest

Shape legend: B batch, D embedding width, K queue length, C/H/W image.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment, validate
from ..losses import _check_temperature, info_nce_loss
from .base import Method
from .heads import moco_projection_head
from .momentum import check_momentum, momentum_copy, update_momentum

__all__ = ["MoCo", "KeyQueue", "enqueue", "grouped_forward", "moco_v2_augment", "momentum_copy",
           "momentum_update"]


def momentum_update(query_module: nn.Module, key_module: nn.Module, m: float) -> None:
    """theta_k <- m theta_k + (1 - m) theta_q for every parameter (arXiv:1911.05722, Eq. 2):
    ``methods.momentum.update_momentum`` without the buffers. As in MoCo's code, the key
    encoder keeps BatchNorm statistics of its own, from its own forward passes."""
    check_momentum(m, "momentum")
    update_momentum(query_module, key_module, m, buffers=False)


# --------------------------------------------------------------------------------------
# the queue


def enqueue(queue: torch.Tensor, ptr: int, keys: torch.Tensor) -> tuple[torch.Tensor, int]:
    """FIFO update of a ring buffer (arXiv:1911.05722, Algorithm 1, ``enqueue``/``dequeue``).

    queue: (K, D) the stored keys; ptr: the slot of the oldest key (the next one to
    overwrite); keys: (B, D) the newest keys, B <= K. Writes key b into slot (ptr + b) mod K,
    in place, so the batch wraps around the end of the buffer and K need not be a multiple
    of B. Returns (queue, new ptr = (ptr + B) mod K)."""
    if queue.dim() != 2 or keys.dim() != 2:
        raise ValueError(f"enqueue expects queue (K, D) and keys (B, D); got {tuple(queue.shape)} and "
                         f"{tuple(keys.shape)}")
    K, D = queue.shape
    B = keys.shape[0]
    if keys.shape[1] != D:
        raise ValueError(f"keys have width {keys.shape[1]} but the queue stores width {D}")
    if B > K:
        raise ValueError(f"a batch of {B} keys does not fit in a queue of length K={K}; "
                         "use queue_size >= batch_size")
    if not 0 <= int(ptr) < K:
        raise ValueError(f"ptr must be in [0, K={K}), got {ptr}")
    slots = (int(ptr) + torch.arange(B, device=queue.device)) % K   # (B,) wraps around the end
    queue[slots] = keys.detach().to(queue.dtype)
    return queue, (int(ptr) + B) % K


class KeyQueue(nn.Module):
    """MoCo's dictionary: K keys of width D in a ring buffer, initialised with random unit
    vectors as in MoCo's code. Buffers, so it moves with ``.to(device)`` and is saved in
    checkpoints. ``negatives()`` returns a copy (the loss must not hold the buffer that the
    next enqueue overwrites)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got size={size}, dim={dim}")
        self.register_buffer("queue", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return self.queue.shape[0]

    def negatives(self) -> torch.Tensor:  # (K, D)
        return self.queue.clone()

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        _, ptr = enqueue(self.queue, int(self.ptr), keys)
        self.ptr.fill_(ptr)


# --------------------------------------------------------------------------------------
# shuffled BatchNorm on one device


def grouped_forward(net: nn.Module, x: torch.Tensor, groups: int = 1, perm: torch.Tensor | None = None):
    """Run ``net`` on x (B, ...) in ``groups`` separate chunks, so BatchNorm normalises each
    chunk with its own statistics ("ghost" or split BatchNorm), optionally after shuffling
    the batch by ``perm`` (B,), and return the outputs in the original order.

    This is MoCo's shuffling BN (arXiv:1911.05722, Sec. 3.3) on a single device: keys are
    computed in different groups than their queries, so BatchNorm's batch statistics cannot
    carry a signal that tells the positive key from the negatives."""
    if groups < 1 or groups > x.shape[0]:
        raise ValueError(f"groups must be in [1, B={x.shape[0]}], got {groups}")
    if perm is not None:
        x = x[perm]
    out = torch.cat([net(chunk) for chunk in x.chunk(groups)]) if groups > 1 else net(x)
    if perm is not None:
        out = out[torch.argsort(perm)]
    return out


# --------------------------------------------------------------------------------------
# the method


def moco_v2_augment(image_size: int = 32, blur: bool = False, crop_scale=(0.2, 1.0), strength: float = 0.5):
    """MoCo v2's augmentation (arXiv:2003.04297, Sec. 3, = SimCLR's): crop (0.2, 1), flip,
    colour jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale p = 0.2, blur p = 0.5 (left
    out by default on 32x32 images)."""
    return augment.simclr_augment(image_size, strength, crop_scale=crop_scale, blur_p=0.5 if blur else 0.0)


class MoCo(Method):
    """MoCo v1/v2 (arXiv:1911.05722, 2003.04297) around any encoder with ``forward_features``.

    The defaults are those of MoCo's CIFAR-10 demo for small images (t = 0.1, m = 0.99, a
    symmetric loss, split and shuffled BatchNorm), not the ImageNet paper's (t = 0.2,
    m = 0.999, one direction); on short runs with small data they learn much faster.

    queue_size: K negatives; momentum: m of the key encoder; temperature: t of InfoNCE;
    mlp: MoCo v2's 2-layer MLP head (hidden = proj_hidden_dim, no BatchNorm) instead of v1's
    linear one; shuffle_groups: > 1 computes queries in that many BatchNorm groups and keys
    in the same number of groups of a shuffled batch (shuffling BN on one device); 1 uses
    plain whole-batch BatchNorm (groups of fewer than 16 images are merged). symmetric: both
    views serve as queries, each against the other's key, the two losses are added and both
    keys enqueued (as MoCo's CIFAR-10 demo does): twice the learning signal per image for
    two more key passes. batch_negatives: the other keys of the batch are negatives too (not in MoCo)."""

    def __init__(self, encoder: nn.Module, queue_size: int = 4096, momentum: float = 0.99,
                 temperature: float = 0.1, proj_hidden_dim: int = 512, proj_dim: int = 128,
                 mlp: bool = True, transform=None, shuffle_groups: int = 4, symmetric: bool = True,
                 batch_negatives: bool = False):
        super().__init__(encoder, transform or moco_v2_augment())
        check_momentum(momentum)
        _check_temperature(temperature)
        validate.integer("queue_size", queue_size, example="4096 keys")
        validate.integer("shuffle_groups", shuffle_groups, example="4, or 1 for no shuffling BatchNorm")
        self.projection_head = moco_projection_head(encoder.num_features, proj_hidden_dim, proj_dim, mlp)
        self.key_encoder = momentum_copy(self.encoder)
        self.key_projection_head = momentum_copy(self.projection_head)
        self.queue = KeyQueue(queue_size, proj_dim)
        self.momentum, self.temperature, self.shuffle_groups = momentum, temperature, shuffle_groups
        self.symmetric, self.batch_negatives = symmetric, batch_negatives

    def _query_net(self, x):
        return self.projection_head(self.encoder.forward_features(x))

    def _key_net(self, x):
        return self.key_projection_head(self.key_encoder.forward_features(x))

    def project(self, x):  # (B, C, H, W) -> normalised query embeddings (B, proj_dim)
        return F.normalize(self._query_net(x), dim=1)

    def _queries_and_keys(self, x1, x2):
        """Normalised queries of x1 (with gradient) and keys of x2 (without), (B, D) each.
        BatchNorm groups keep at least 16 images each (smaller ones make noisy statistics)."""
        g = max(1, min(self.shuffle_groups, len(x1) // 16))
        q = F.normalize(grouped_forward(self._query_net, x1, g), dim=1)
        with torch.no_grad():
            perm = torch.randperm(len(x2), device=x2.device) if g > 1 else None
            k = F.normalize(grouped_forward(self._key_net, x2, g, perm), dim=1)
        return q, k

    def training_step(self, batch):
        """The loss, and ``pretext_accuracy``: how often the positive key scored above every
        queued negative (near 1 early on is a warning sign of a shortcut)."""
        x, _ = batch
        per_step = len(x) * (2 if self.symmetric else 1)
        if per_step > len(self.queue):
            raise ValueError(f"queue_size={len(self.queue)} is smaller than the {per_step} keys a step enqueues "
                             f"(batch {len(x)}{', twice for the symmetric loss' if self.symmetric else ''}); "
                             f"use queue_size >= {per_step}")
        x1, x2 = self.views(x)
        negatives = self.queue.negatives()                                            # (K, D)
        q, k = self._queries_and_keys(x1, x2)                                         # (B, D) each
        loss = self._loss(q, k, negatives)
        accuracy = pretext_accuracy(q, k, negatives)
        if self.symmetric:
            q2, k1 = self._queries_and_keys(x2, x1)
            loss = loss + self._loss(q2, k1, negatives)
            k = torch.cat([k, k1])
        self.queue.push(k)
        return {"loss": loss, "pretext_accuracy": accuracy}

    def _loss(self, q, k, negatives):
        if not self.batch_negatives:
            return info_nce_loss(q, k, negatives, self.temperature, normalize=False)
        # the other fresh keys of the batch are negatives too: logits [q.k_all, q.queue], target i
        logits = torch.cat([q @ k.T, q @ negatives.to(q.dtype).T], dim=1) / self.temperature
        return F.cross_entropy(logits.float(), torch.arange(len(q), device=q.device))

    def after_step(self, step: int, total_steps: int) -> None:
        momentum_update(self.encoder, self.key_encoder, self.momentum)
        momentum_update(self.projection_head, self.key_projection_head, self.momentum)


@torch.no_grad()
def pretext_accuracy(q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """The share of queries (B, D) whose positive key (B, D) scores above every negative
    (K, D): MoCo's pretext task solved. A 0-d tensor (reading it every step would stall a GPU)."""
    pos, neg = (q * k).sum(1), (q @ negatives.to(q.dtype).T).amax(1)
    return (pos > neg).float().mean()
