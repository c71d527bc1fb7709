"""Exercise checks of notebooks 05 (BYOL) and 06 (MAE).

    from course_utils.checks import check_update_momentum
    check_update_momentum(my_update_momentum)

Each check runs the learner's function and the package's tested one on the same inputs
(bad inputs included) and prints what differs, case by case.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn as nn

from .core import Case, CheckReport, check_function

# ------------------------------------------------------------------------------ 05 BYOL


def _ema_pair(seed: int):
    """A small online network with BatchNorm (buffers with values) and a different target.

    Seeded inside ``fork_rng``: the notebook's global random state is left as it was."""
    def build(s):
        with torch.random.fork_rng(devices=[]):  # CPU state only, restored on exit
            torch.manual_seed(s)
            net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
            with torch.no_grad():
                net(torch.randn(8, 4))  # gives the running statistics values
        return net
    online, target = build(seed), build(seed + 1)
    for p in target.parameters():
        p.requires_grad_(False)
    return online, target


def _after_update(update: Callable, seed: int, m: float):
    """Run ``update(online, target, m)`` on fresh copies; return the target's state then the
    online's, as a list of tensors (the online network must not change)."""
    online, target = _ema_pair(seed)
    online, target = copy.deepcopy(online), copy.deepcopy(target)
    update(online, target, m)
    return [v.detach().clone() for v in target.state_dict().values()] + \
           [v.detach().clone() for v in online.state_dict().values()]


def check_update_momentum(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 05: ``fn(online, target, m)`` updates ``target`` in place,
    t <- m * t + (1 - m) * o for every floating-point parameter and buffer, copies integer
    buffers, leaves ``online`` unchanged, and raises ValueError for m outside [0, 1]."""
    from ..methods.byol import update_momentum

    def reference(seed, m):
        return _after_update(update_momentum, seed, m)

    def learner(seed, m):
        return _after_update(fn, seed, m)

    learner.__name__ = getattr(fn, "__name__", "your function")
    cases = [
        Case("m=0 copies the online network", (0, 0.0)),
        Case("m=1 keeps the target", (0, 1.0)),
        Case("m=0.99, a typical BYOL value", (1, 0.99)),
        Case("m=0.5, BatchNorm running statistics averaged too", (2, 0.5)),
        Case("m=-0.1 is a bad input", (0, -0.1), raises=ValueError),
        Case("m=1.5 is a bad input", (0, 1.5), raises=ValueError),
    ]
    return check_function(learner, reference, cases, name="update_momentum", show=show)


def check_regression_loss(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 05: ``fn(p, z)``, the mean over the batch of || p/|p| - z/|z| ||^2."""
    from ..methods.byol import regression_loss

    g = torch.Generator().manual_seed(0)
    p, z = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    cases = [
        Case("random p and z", (p, z)),
        Case("z = 3p (scale must not matter): 0", (p, 3 * p)),
        Case("z = -p: 4", (p, -p)),
        Case("a batch of one", (p[:1], z[:1])),
        Case("mismatched shapes are a bad input", (p, z[:, :4]), raises=ValueError),
    ]
    return check_function(fn, regression_loss, cases, name="regression_loss", show=show)


# ------------------------------------------------------------------------------- 06 MAE


def check_random_masking(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 06: ``fn(x, mask_ratio, noise)`` -> (x_visible (B, N_keep, D), mask (B, N)
    float 0 keep 1 remove, ids_restore (B, N)), keeping the tokens of smallest noise."""
    from ..methods.mae import random_masking

    def tokens(B, N, D, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(B, N, D, generator=g), torch.rand(B, N, generator=g)

    x, noise = tokens(2, 16, 4, 0)
    x2, noise2 = tokens(3, 10, 2, 1)
    cases = [
        Case("16 patches, mask ratio 0.75", (x, 0.75, noise)),
        Case("mask ratio 0: every patch visible", (x, 0.0, noise)),
        Case("10 patches, mask ratio 0.5", (x2, 0.5, noise2)),
        Case("10 patches at 0.9 keep exactly 1 (10 * (1 - 0.9) = 0.9999999999999998 in floats)",
             (x2, 0.9, noise2)),
        Case("mask ratio 1.0 is a bad input (nothing left to see)", (x, 1.0, noise), raises=ValueError),
        Case("mask ratio -0.1 is a bad input", (x, -0.1, noise), raises=ValueError),
    ]
    return check_function(fn, random_masking, cases, name="random_masking", show=show)


def check_patchify(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 06: ``fn(images, patch_size)`` -> patches (B, N, p*p*C), row by row, values
    inside a patch in (row, column, channel) order, for any channel count."""
    from ..methods.mae import patchify

    def images(C, H, W, seed=0):
        return torch.rand(2, C, H, W, generator=torch.Generator().manual_seed(seed))

    cases = [
        Case("RGB 8x8, patch 4", (images(3, 8, 8), 4)),
        Case("one channel 8x8, patch 2", (images(1, 8, 8), 2)),
        Case("5 channels 6x6, patch 3 (no hard-coded 3 channels)", (images(5, 6, 6), 3)),
        Case("a 4x8 rectangle, patch 2", (images(3, 4, 8), 2)),
        Case("10x10 with patch 4 is a bad input", (images(3, 10, 10), 4), raises=ValueError),
    ]
    return check_function(fn, patchify, cases, name="patchify", show=show)
