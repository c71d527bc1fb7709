"""Exercise checks of notebooks 02 (InfoNCE), 03 (SimCLR) and 04 (MoCo).

    from course_utils.checks import check_nt_xent
    check_nt_xent(my_nt_xent)

Each check runs the learner's function and the package's tested one (itself tested
against a slow loop written from the paper) on the same inputs, bad inputs included,
and prints what differs, case by case.
"""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, CheckReport, check_function


def _randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------- 02 InfoNCE


def check_nt_xent(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 02: ``fn(z1, z2, temperature)``, SimCLR's NT-Xent (arXiv:2002.05709, Eq. 1):
    mean over the 2B embeddings of -log softmax of the positive among the 2B - 1 others,
    cosine similarities over ``temperature``; ValueError for bad inputs.

    Every case is compared with the package's ``losses.nt_xent_loss``; the value cases
    also with the slow loop of SimCLR's Algorithm 1 (``infonce.nt_xent_slow``)."""
    from ..infonce import nt_xent_slow
    from ..losses import nt_xent_loss

    z1, z2 = _randn(4, 8, seed=0), _randn(4, 8, seed=1)
    lengths = torch.linspace(0.1, 10, 4).unsqueeze(1)
    cases = [
        Case("B=4, D=8, temperature 0.5", (z1, z2, 0.5)),
        Case("temperature 0.1 (sharper)", (z1, z2, 0.1)),
        Case("embeddings of very different lengths (cosine ignores length)", (z1 * lengths, z2, 0.5)),
        Case("all embeddings equal: log(2B - 1) = log 7", (torch.ones(4, 3), torch.ones(4, 3), 0.5)),
        Case("a short last batch, B=3 (read B from the tensors)", (z1[:3], z2[:3], 0.5)),
        Case("B=2, D=16, the smallest batch with a negative",
             (_randn(2, 16, seed=2), _randn(2, 16, seed=3), 1.0)),
        Case("temperature 0 is a bad input", (z1, z2, 0.0), raises=ValueError),
        Case("a negative temperature is a bad input", (z1, z2, -0.5), raises=ValueError),
        Case("z1 and z2 with different batch sizes are a bad input", (z1, z2[:3], 0.5), raises=ValueError),
        Case("1-D inputs (no batch dimension) are a bad input", (z1[0], z2[0], 0.5), raises=ValueError),
    ]
    package = check_function(fn, nt_xent_loss, cases, show=False)
    slow = check_function(fn, nt_xent_slow, [c for c in cases if c.raises is None], show=False)
    results = [(f"{d} [vs package]", ok, msg) for d, ok, msg in package.results]
    results += [(f"{d} [vs Algorithm 1 loop]", ok, msg) for d, ok, msg in slow.results]
    report = CheckReport("nt_xent", results)
    if show:
        print(report)
    return report


# -------------------------------------------------------------------------- 03 SimCLR


def check_supcon(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 03: ``fn(z1, z2, labels, temperature)``, the supervised contrastive loss
    L_out (arXiv:2004.11362, Eq. 2): for each of the 2B anchors, the mean over its
    same-label partners of -log softmax among the 2B - 1 others."""
    from ..losses import supcon_loss

    z1, z2 = _randn(6, 5, seed=0), _randn(6, 5, seed=1)
    cases = [
        Case("labels with repeats", (z1, z2, torch.tensor([0, 1, 0, 2, 1, 0]), 0.1)),
        Case("all labels distinct: exactly NT-Xent", (z1, z2, torch.arange(6), 0.5)),
        Case("one label for the whole batch", (z1, z2, torch.zeros(6, dtype=torch.long), 0.2)),
        Case("temperature 1.0", (z1, z2, torch.tensor([3, 3, 1, 1, 2, 2]), 1.0)),
        Case("labels of the wrong length are a bad input", (z1, z2, torch.arange(5), 0.1), raises=ValueError),
        Case("temperature 0 is a bad input", (z1, z2, torch.arange(6), 0.0), raises=ValueError),
    ]
    return check_function(fn, supcon_loss, cases, name="supcon", show=show)


# ---------------------------------------------------------------------------- 04 MoCo


def check_enqueue(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 04: ``fn(queue, ptr, keys) -> (queue, new_ptr)``, MoCo's FIFO update:
    key b goes into slot (ptr + b) mod K, the pointer moves by B (mod K); the queue may be
    updated in place or returned new; ValueError when the keys do not fit."""
    from ..methods.moco import enqueue

    def reference(queue, ptr, keys):
        new_queue, new_ptr = enqueue(queue.clone(), ptr, keys)
        return new_queue, int(new_ptr)

    def learner(queue, ptr, keys):
        new_queue, new_ptr = fn(queue.clone(), ptr, keys)
        return new_queue, int(new_ptr)

    learner.__name__ = getattr(fn, "__name__", "your function")
    queue = torch.zeros(10, 3)
    cases = [
        Case("K=10, B=4 from slot 0", (queue, 0, _randn(4, 3, seed=0))),
        Case("B=4 from slot 4", (queue, 4, _randn(4, 3, seed=1))),
        Case("B=4 from slot 8: wraps around the end (K is not a multiple of B)",
             (queue, 8, _randn(4, 3, seed=2))),
        Case("B=3 from the last slot, 9", (queue, 9, _randn(3, 3, seed=3))),
        Case("B = K = 10 from slot 7: the whole queue is replaced", (queue, 7, _randn(10, 3, seed=4))),
        Case("B=1", (queue, 5, _randn(1, 3, seed=5))),
        Case("11 keys do not fit a queue of 10: bad input", (queue, 0, _randn(11, 3, seed=6)),
             raises=ValueError),
        Case("keys of width 4 for a queue of width 3: bad input", (queue, 0, _randn(2, 4, seed=7)),
             raises=ValueError),
    ]
    return check_function(learner, reference, cases, name="enqueue", show=show)
