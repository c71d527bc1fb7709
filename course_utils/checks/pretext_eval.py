"""Exercise checks of notebooks 01 (pretext tasks) and 08 (evaluation protocols).

    from course_utils.checks import check_rotate_batch, check_label_subset
    check_rotate_batch(my_rotate_batch)
    check_label_subset(my_label_subset)

Each prints one line per case and returns a :class:`checks.core.CheckReport`.
"""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, CheckReport, check_function


def check_rotate_batch(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 01: ``fn(x)`` with x (B, C, H, H) must return (images (4B, C, H, H),
    labels (4B,)): block r holds every image turned r * 90 degrees counter-clockwise
    (``torch.rot90(x, r, dims=(2, 3))``), labelled r; non-square or non-4-D input raises
    ValueError."""
    from ..methods.pretext import rotate_batch

    g = torch.Generator().manual_seed(0)
    marker = torch.zeros(1, 1, 4, 4)
    marker[0, 0, 0, 1] = 1.0  # an asymmetric image: every rotation looks different
    cases = [
        Case("one asymmetric 4x4 image", (marker,)),
        Case("a batch of 3 RGB 8x8 images", (torch.rand(3, 3, 8, 8, generator=g),)),
        Case("a batch of one 1-channel image", (torch.rand(1, 1, 5, 5, generator=g),)),
        Case("non-square images are a bad input", (torch.rand(2, 3, 8, 6),), raises=ValueError),
        Case("a 3-D tensor (no batch axis) is a bad input", (torch.rand(3, 8, 8),), raises=ValueError),
    ]
    return check_function(fn, rotate_batch, cases, name="rotate_batch", show=show)


def _subset_case(fn, labels, fraction, seed, description):
    """Check the properties a class-balanced subset must have (the draw itself is random)."""
    try:
        idx = fn(labels.clone(), fraction, seed)  # a copy: editing it in place cannot fool the check
    except NotImplementedError:
        return description, False, "not implemented yet"
    except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
        return description, False, f"raised {type(err).__name__}: {err}"
    if not isinstance(idx, torch.Tensor) or idx.dim() != 1 or idx.dtype != torch.long:
        got = getattr(idx, "dtype", type(idx))
        return description, False, f"expected a 1-D int64 tensor of indices, got {got}"
    if len(idx) and (idx.min() < 0 or idx.max() >= len(labels)):
        return description, False, "an index lies outside [0, N)"
    if len(idx.unique()) != len(idx):
        return description, False, "some index appears twice (sample without replacement)"
    for c in labels[labels >= 0].unique().tolist():
        n_c = int((labels == c).sum())
        want, got = max(1, int(fraction * n_c + 0.5)), int((labels[idx] == c).sum())
        if got != want:
            return description, False, (f"class {c}: {got} examples chosen, expected "
                                         f"max(1, int({fraction} * {n_c} + 0.5)) = {want}")
    if (labels[idx] < 0).any():
        return description, False, "an unlabelled example (label -1) was chosen"
    try:
        again = fn(labels.clone(), fraction, seed)
    except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
        return description, False, (f"a second call with the same seed raised {type(err).__name__}: {err}")
    if not isinstance(again, torch.Tensor) or again.shape != idx.shape:
        got = f"shape {tuple(again.shape)}" if isinstance(again, torch.Tensor) else type(again).__name__
        return description, False, (f"a second call with the same seed returned {got}, the first "
                                    f"a tensor of shape {tuple(idx.shape)}")
    if not torch.equal(again.sort().values, idx.sort().values):
        return description, False, ("the same seed gave a different subset "
                                    "(use a torch.Generator seeded with seed)")
    if fraction < 1:  # another seed must draw another subset (the chance of the same one is negligible here)
        try:
            other = fn(labels.clone(), fraction, seed + 1)
        except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
            return description, False, f"a call with seed {seed + 1} raised {type(err).__name__}: {err}"
        if isinstance(other, torch.Tensor) and torch.equal(other.sort().values, idx.sort().values):
            return description, False, (f"seeds {seed} and {seed + 1} chose the same subset: draw at random "
                                        "(a permutation from the seeded generator), not the first examples")
    return description, True, ("right count per class, no repeats, reproducible"
                               + (", random" if fraction < 1 else ""))


def _bad_input_case(fn, args, description):
    try:
        fn(*args)
    except NotImplementedError:
        return description, False, "not implemented yet"
    except ValueError:
        return description, True, "raises ValueError as it should"
    except Exception as err:  # noqa: BLE001
        return description, False, f"raises {type(err).__name__} ({err}); expected ValueError"
    return description, False, "accepts this bad input; it should raise ValueError"


def check_label_subset(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 08: ``fn(labels, fraction, seed)`` must return the indices (1-D int64) of a
    class-balanced subset: from each class with n_c examples, max(1, int(fraction * n_c + 0.5))
    (rounded half up) drawn at random without replacement, the same for the same seed and
    another for another seed; never an example
    labelled -1; ValueError for a fraction outside (0, 1]."""
    g = torch.Generator().manual_seed(0)
    balanced = torch.arange(100) % 4
    skewed = torch.cat([torch.zeros(90), torch.ones(9), torch.full((3,), 2)]).long()
    skewed = skewed[torch.randperm(102, generator=g)]
    partly = torch.cat([torch.arange(40) % 5, torch.full((10,), -1)])
    results = [
        _subset_case(fn, balanced, 0.1, 0, "10% of 4 balanced classes"),
        _subset_case(fn, skewed, 0.1, 1, "10% of skewed classes (90 / 9 / 3 examples): at least 1 each"),
        _subset_case(fn, balanced, 1.0, 2, "100% keeps every example"),
        _subset_case(fn, partly, 0.5, 3, "50%, with some unlabelled (-1) examples"),
        _bad_input_case(fn, (balanced, 0.0, 0), "fraction 0 is a bad input"),
        _bad_input_case(fn, (balanced, 1.5, 0), "fraction 1.5 is a bad input"),
    ]
    report = CheckReport(getattr(fn, "__name__", "label_subset"), results)
    if show:
        print(report)
    return report


def _features(n, d, classes, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def check_knn_predict(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 00: ``fn(train_features, train_labels, test_features, k, temperature)``
    must return the predicted labels (N_test,) of the cosine, temperature-weighted kNN."""
    from ..evaluate import knn_predict

    def reference(a, b, c, k, temperature):
        return knn_predict(a, b, c, k=k, temperature=temperature, num_classes=int(b.max()) + 1)

    xtr, ytr = _features(50, 6, 4, 0)
    xte, _ = _features(20, 6, 4, 1)
    cases = [
        Case("k=1 is the nearest neighbour's label", (xtr, ytr, xte, 1, 0.07)),
        Case("k=10, t=0.07 (weighted vote)", (xtr, ytr, xte, 10, 0.07)),
        Case("k=10, t=1.0 (flatter weights)", (xtr, ytr, xte, 10, 1.0)),
        Case("features of very different lengths (cosine ignores length)",
             (xtr * torch.linspace(0.1, 10, 50).unsqueeze(1), ytr, xte, 5, 0.1)),
        Case("k larger than the training set", (xtr[:3], ytr[:3], xte, 10, 0.07)),
        Case("k=0 is a bad input", (xtr, ytr, xte, 0, 0.07), raises=ValueError),
    ]
    return check_function(fn, reference, cases, name="knn_predict", show=show)
