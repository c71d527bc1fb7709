"""Exercise checks of notebook 09 (redundancy reduction: Barlow Twins and VICReg).

    from course_utils.checks import check_covariance_term
    check_covariance_term(my_covariance_term)

Each check runs the learner's function and the package's tested one on the same inputs
(bad inputs included) and prints what differs, case by case.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..lessons.nb09 import decorrelated
from .core import Case, CheckReport, check_function


def _pair(B: int, D: int, seed: int, noise: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(B, D, generator=g) * (1 + torch.rand(D, generator=g)) + 3 * torch.rand(D, generator=g)
    return z1, z1 + noise * torch.randn(B, D, generator=g)


def check_covariance_term(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 09: ``fn(z)`` -> VICReg's c(z) (arXiv:2105.04906, Eq. 3-4), a 0-d tensor: the
    covariance matrix of z (B, D) along the batch, divided by B - 1, its off-diagonal entries
    squared, summed and divided by D. Raises ValueError for a batch of one."""
    from ..methods.vicreg import covariance_term

    z, _ = _pair(16, 6, 0)
    redundant = torch.cat([z[:, :3], z[:, :3]], dim=1)       # every dimension has a twin
    cases = [
        Case("16 samples, 6 dimensions, not centred", (z,)),
        Case("uncorrelated dimensions: c(z) = 0", (decorrelated(8, 4),)),
        Case("each dimension repeated: large off-diagonal covariance", (redundant,)),
        Case("a batch of 2", (z[:2],)),
        Case("a batch of 1 is a bad input (no covariance)", (z[:1],), raises=ValueError),
    ]
    return check_function(fn, covariance_term, cases, name="covariance_term", show=show, atol=1e-5, rtol=1e-4)


def check_barlow_twins_loss(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 09: ``fn(z1, z2, lambd)`` -> the Barlow Twins loss (arXiv:2103.03230, Eq. 1), a
    0-d tensor: standardise each column of z1 and z2 along the batch (mean 0, biased
    variance 1, eps = 1e-5 inside the square root), C = z1n^T z2n / B, then
    sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2. The same batch twice over must give
    the same loss (divide by the batch size you are given). Raises ValueError for a batch
    of one or lambd <= 0."""
    from ..methods.barlow_twins import barlow_twins_loss

    z1, z2 = _pair(16, 6, 1)
    d = decorrelated(16, 8)
    cases = [
        Case("16 samples, 6 dimensions, lambda 5e-3", (z1, z2, 5e-3)),
        Case("the same batch twice over (32 rows): the same loss", (z1.repeat(2, 1), z2.repeat(2, 1), 5e-3)),
        Case("identical, decorrelated views: loss 0", (d, d.clone(), 0.1)),
        Case("opposite views z2 = -z1: C_ii = -1, invariance term 4 per dimension", (d, -d, 0.1)),
        Case("64 samples, 4 dimensions, lambda 1 (redundancy weighs as much as invariance)", (*_pair(64, 4, 2), 1.0)),
        Case("a batch of 1 is a bad input", (z1[:1], z2[:1], 5e-3), raises=ValueError),
        Case("lambd = 0 is a bad input", (z1, z2, 0.0), raises=ValueError),
    ]
    return check_function(fn, barlow_twins_loss, cases, name="barlow_twins_loss", show=show, atol=1e-4, rtol=1e-4)
