"""Momentum (EMA) networks, written once for every method that has one (MoCo's key
encoder, BYOL's target, and later DINO's teacher).

    target = momentum_copy(online)                 # same architecture and weights, no gradients
    update_momentum(online, target, m)             # theta_t <- m theta_t + (1 - m) theta_o
    m = cosine_momentum(step, total_steps, base)   # BYOL's schedule from base up to 1

m = 0 copies the online network, m = 1 keeps the target as it is.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn


def check_momentum(m, name: str = "momentum") -> None:
    """m must be a plain number in [0, 1] (a tensor is not accepted: pass ``float(m)``)."""
    if isinstance(m, torch.Tensor):
        raise ValueError(f"{name} must be a plain number in [0, 1], got a tensor; pass float({name})")
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0.0 <= m <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (0 copies the online network, 1 keeps the target), "
                         f"got {m!r}")


def momentum_copy(module: nn.Module) -> nn.Module:
    """The momentum network: a deep copy (same constructor arguments, same weights) with
    gradients off. Never ``type(module)()``, which loses the arguments it was built with."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, m: float, buffers: bool = True) -> None:
    """EMA in place: target <- m * target + (1 - m) * online (MoCo arXiv:1911.05722 Eq. 2;
    BYOL arXiv:2006.07733 Eq. 1). ``lerp_`` is exact at both ends.

    ``buffers=True`` (BYOL here): floating-point buffers such as BatchNorm's running mean
    and variance follow the same EMA, so the target stays one consistent averaged network;
    integer buffers (BatchNorm's step counter) are copied. BYOL's reference code averages
    the parameters only. ``buffers=False`` (MoCo, as in its code): only the parameters
    are averaged and the target keeps the statistics of its own forward passes."""
    check_momentum(m, "m")
    online_state, target_state = _paired_state(online, target, buffers)
    for name, t in target_state.items():
        o = online_state[name]
        if t.is_floating_point():
            t.lerp_(o.detach().to(t.dtype), 1.0 - m)
        else:
            t.copy_(o)


def _paired_state(online: nn.Module, target: nn.Module, buffers: bool):
    """Parameters (and buffers) of both networks by name; they must have the same layout."""
    def state(net):
        return dict(net.named_parameters()) | (dict(net.named_buffers()) if buffers else {})
    online_state, target_state = state(online), state(target)
    if online_state.keys() != target_state.keys():
        missing = sorted(online_state.keys() ^ target_state.keys())[:3]
        raise ValueError(f"online and target networks differ in their parameters/buffers (e.g. {missing}); "
                         "build the target with momentum_copy(online)")
    for name, t in target_state.items():
        if t.shape != online_state[name].shape:
            raise ValueError(f"parameter {name!r} has shape {tuple(online_state[name].shape)} online but "
                             f"{tuple(t.shape)} in the target; build the target with momentum_copy(online)")
    return online_state, target_state


def cosine_momentum(step: int, total_steps: int, base: float = 0.996) -> float:
    """BYOL's target decay rate at step k of K (arXiv:2006.07733, Sec. 3.3):

        tau_k = 1 - (1 - tau_base) * (cos(pi k / K) + 1) / 2

    rising from ``base`` at k = 0 to 1 at k = K (the target freezes at the end)."""
    check_momentum(base, "base")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= step <= total_steps:
        raise ValueError(f"step must be in [0, total_steps={total_steps}], got {step}")
    return 1 - (1 - base) * (math.cos(math.pi * step / total_steps) + 1) / 2
