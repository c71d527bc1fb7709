"""Loss functions of the course, each written from its paper.

=====================  ==============================================================
``nce_loss``           noise-contrastive estimation: data vs noise, binary logistic
                       (Gutmann & Hyvarinen 2010)
``info_nce_loss``      InfoNCE: pick the positive key among candidates (CPC,
                       arXiv:1807.03748; with a queue of negatives, MoCo arXiv:1911.05722)
``nt_xent_loss``       SimCLR's NT-Xent: both views of a batch, 2B - 2 negatives each
                       (arXiv:2002.05709)
``supcon_loss``        supervised contrastive: every same-label embedding is a positive
                       (arXiv:2004.11362)
=====================  ==============================================================

Shape legend: B batch, D embedding width, K number of negatives (queue length).
"""
from __future__ import annotations

import contextlib

import math

import torch
import torch.nn.functional as F


def _full_precision(t: torch.Tensor):
    """Similarities in float32 even under bfloat16 autocast: at t = 0.1 a bf16 cosine's
    rounding error (about 0.004) becomes an error of 0.04 in the logits."""
    if t.is_cuda:
        return torch.autocast("cuda", enabled=False)
    return contextlib.nullcontext()


def _check_temperature(temperature) -> None:
    try:
        value = float(temperature)
        ok = not isinstance(temperature, (str, bytes, bool)) and 0 < value < math.inf  # NaN fails too
    except (TypeError, ValueError, RuntimeError):
        ok = False
    if not ok:
        raise ValueError(f"temperature must be a finite number > 0 (e.g. 0.1; an infinite one makes every "
                         f"logit 0 and the loss log(2B - 1) whatever the input), got {temperature!r}")


def _check_pair(z1: torch.Tensor, z2: torch.Tensor, name: str, names=("z1", "z2"),
                min_batch: int = 2, why: str = "there are no negatives otherwise") -> None:
    """Two views' embeddings, one row per image in the same order: tensors of one shape
    (B, D) with B >= min_batch; else a ValueError that names ``name`` and the fix."""
    a, b = names
    for label, z in ((a, z1), (b, z2)):
        if not isinstance(z, torch.Tensor):
            raise ValueError(f"{name} expects {label} as a torch tensor of shape (B, D), got {type(z).__name__}; "
                             f"convert it with torch.as_tensor({label})")
    if z1.dim() != 2 or z2.dim() != 2:
        raise ValueError(f"{name} expects {a} and {b} of shape (B, D); got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    if z1.shape != z2.shape:
        raise ValueError(f"{name}: {a} and {b} must have the same shape (B, D); got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)} (the two views of one batch must line up)")
    if z1.shape[0] < min_batch:
        raise ValueError(f"{name} needs a batch of at least {min_batch} ({why}); "
                         f"got a batch of {z1.shape[0]}")


def nce_loss(pos_logits: torch.Tensor, neg_logits: torch.Tensor) -> torch.Tensor:
    """Noise-contrastive estimation as binary logistic regression (Gutmann & Hyvarinen 2010,
    JMLR 13, Eq. 8): every data sample should be classified "data", every noise sample "noise".

    pos_logits: (B,) logits G(x) of the B data samples; neg_logits: (B, K) logits of K noise
    samples each. G is the log-odds "data vs noise"; at the optimum it equals
    log p_data(x) - log(K p_noise(x)). Returns the mean over B of
    -log sigmoid(G(x)) - sum_k log(1 - sigmoid(G(x_k))).
    """
    if pos_logits.dim() != 1:
        raise ValueError(f"nce_loss expects pos_logits of shape (B,), got {tuple(pos_logits.shape)}")
    if neg_logits.dim() != 2 or neg_logits.shape[0] != pos_logits.shape[0]:
        raise ValueError(f"nce_loss expects neg_logits of shape (B, K) with B={pos_logits.shape[0]}, "
                         f"got {tuple(neg_logits.shape)}")
    # -log sigmoid(g) = softplus(-g);  -log(1 - sigmoid(g)) = softplus(g): stable for any g
    return (F.softplus(-pos_logits.float()) + F.softplus(neg_logits.float()).sum(1)).mean()


def info_nce_loss(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor | None = None,
                  temperature: float = 0.07, normalize: bool = True) -> torch.Tensor:
    """InfoNCE (van den Oord et al. 2018, arXiv:1807.03748, Eq. 4): cross-entropy of picking
    the positive key among the candidates, with similarity sim(q, k) / temperature.

    query: (B, D); key: (B, D), key i is query i's positive.
    negatives: None -> the other B - 1 keys of the batch are each query's negatives
               (a (B, B) logit matrix, targets on the diagonal);
               (K, D) -> the same K negatives for every query, e.g. MoCo's queue
               (arXiv:1911.05722, Algorithm 1: logits [q.k+, q.queue], target 0).
    With ``normalize`` (the default) similarities are cosines. Returns the mean over B.
    """
    _check_pair(query, key, "info_nce_loss", names=("query", "key"),
                min_batch=2 if negatives is None else 1)
    _check_temperature(temperature)
    if negatives is not None and negatives.dim() == 2 and negatives.shape[0] == 0:
        raise ValueError("info_nce_loss needs at least one negative; got negatives of shape (0, D)")
    with _full_precision(query):
        return _info_nce(query.float(), key.float(), None if negatives is None else negatives.float(),
                         temperature, normalize)


def _info_nce(query, key, negatives, temperature, normalize):
    if normalize:
        query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
    if negatives is None:
        logits = query @ key.T                                              # (B, B)
        targets = torch.arange(len(query), device=query.device)
    else:
        if negatives.dim() != 2 or negatives.shape[1] != query.shape[1]:
            raise ValueError(f"info_nce_loss expects negatives of shape (K, D) with D={query.shape[1]}, "
                             f"got {tuple(negatives.shape)}")
        if normalize:
            negatives = F.normalize(negatives, dim=1)
        pos = (query * key).sum(dim=1, keepdim=True)                        # (B, 1)
        logits = torch.cat([pos, query @ negatives.to(query.dtype).T], 1)    # (B, 1 + K)
        targets = torch.zeros(len(query), dtype=torch.long, device=query.device)
    return F.cross_entropy(logits.float() / temperature, targets)


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
    _check_temperature(temperature)
    B = z1.shape[0]
    with _full_precision(z1):
        z = F.normalize(torch.cat([z1, z2]).float(), dim=1)      # (2B, D)
        logits = z @ z.T / temperature                           # (2B, 2B) cosine / t
    self_mask = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))        # i is never its own candidate
    targets = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)]).to(z.device)  # i <-> i + B
    return F.cross_entropy(logits, targets)


def supcon_loss(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor,
                temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss, L^sup_out (Khosla et al. 2020, arXiv:2004.11362, Eq. 2).

    z1, z2: (B, D) two views; labels: (B,). For each of the 2B anchors, every other
    embedding with the same label is a positive (its other view included) and the
    log-probabilities of the positives are averaged. With all labels distinct it is
    exactly ``nt_xent_loss``. Returns the mean over the 2B anchors.
    """
    _check_pair(z1, z2, "supcon_loss")
    _check_temperature(temperature)
    if labels.shape != (z1.shape[0],):
        raise ValueError(f"supcon_loss expects labels of shape (B,) = ({z1.shape[0]},), "
                         f"got {tuple(labels.shape)}")
    B = z1.shape[0]
    with _full_precision(z1):
        z = F.normalize(torch.cat([z1, z2]).float(), dim=1)      # (2B, D)
        logits = z @ z.T / temperature
    y = torch.cat([labels, labels]).to(z.device)                 # (2B,)
    self_mask = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits.log_softmax(dim=1).masked_fill(self_mask, 0.0)   # (2B, 2B), 0 on the diagonal
    positives = (y[:, None] == y[None, :]) & ~self_mask                # at least the other view
    return -((log_prob * positives).sum(1) / positives.sum(1)).mean()
