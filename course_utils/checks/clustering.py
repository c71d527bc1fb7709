"""Exercise checks of notebook 10 (SwAV and DINO).

    from course_utils.checks import check_sinkhorn
    check_sinkhorn(my_sinkhorn)

Each check runs the learner's function and the package's tested one on the same inputs
(bad inputs included) and prints what differs, case by case.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .core import Case, CheckReport, check_function


def _scores(B: int, K: int, seed: int) -> torch.Tensor:
    """Scores of unit embeddings against unit prototypes, in [-1, 1], as SwAV has them."""
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(B, 8, generator=g), dim=1)
    c = F.normalize(torch.randn(K, 8, generator=g), dim=1)
    return z @ c.t()


def check_sinkhorn(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 10: ``fn(scores, epsilon, iterations)`` -> codes (B, K): Q = exp(scores / eps)^T,
    scaled to total 1, then per iteration rows (prototypes) to 1/K and columns (samples) to
    1/B; returns (B * Q)^T. Raises ValueError for epsilon <= 0."""
    from ..methods.swav import sinkhorn

    cases = [
        Case("8 samples, 4 prototypes, 3 iterations", (_scores(8, 4, 0), 0.05, 3)),
        Case("a uniform score matrix gives uniform codes 1/K", (torch.zeros(6, 3), 0.05, 3)),
        Case("one iteration, epsilon 0.1", (_scores(10, 5, 1), 0.1, 1)),
        Case("more prototypes than samples (4 x 12), 5 iterations", (_scores(4, 12, 2), 0.05, 5)),
        Case("epsilon = 0 is a bad input", (_scores(8, 4, 0), 0.0, 3), raises=ValueError),
    ]
    return check_function(fn, sinkhorn, cases, name="sinkhorn", show=show, atol=1e-5, rtol=1e-3)


def check_teacher_probs(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 10: ``fn(teacher_logits, center, temperature)`` -> softmax((t - c) / temperature)
    along K, (B, K); raises ValueError for temperature <= 0."""
    from ..methods.dino import teacher_probs

    g = torch.Generator().manual_seed(0)
    t, c = torch.randn(6, 5, generator=g), torch.randn(5, generator=g)
    cases = [
        Case("random logits and centre, temperature 0.04", (t, c, 0.04)),
        Case("centre 0, temperature 1: a plain softmax", (t, torch.zeros(5), 1.0)),
        Case("a centre with a large first entry (centering must subtract it)", (t, torch.tensor([3.0, 0, 0, 0, 0]), 0.1)),
        Case("the same centre for every row: shape (K,)", (t[:1], c, 0.5)),
        Case("temperature 0 is a bad input", (t, c, 0.0), raises=ValueError),
    ]
    return check_function(fn, teacher_probs, cases, name="teacher_probs", show=show)
