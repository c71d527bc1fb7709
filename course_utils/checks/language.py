"""Exercise checks of notebook 07 (masked and causal language modelling).

    from course_utils.checks import check_mlm_corrupt, check_sequence_log_likelihood
    check_mlm_corrupt(my_mlm_corrupt)

``check_sequence_log_likelihood`` compares the learner's function with the package's on
fixed inputs. ``check_mlm_corrupt`` cannot compare outputs (the corruption is random), so
it checks the properties BERT's corruption must have, on a large batch, each within a
tolerance of five standard deviations of its sampling noise.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..language import IGNORE_INDEX, sequence_log_likelihood
from .core import Case, CheckReport, check_function


def check_sequence_log_likelihood(fn: Callable, show: bool = True) -> CheckReport:
    """``fn(logits (B, T, V), targets (B, T)) -> (B,)``: the sum over each sequence of
    log softmax(logits)[target], skipping targets equal to -100; ValueError on mismatched shapes."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 5, generator=g) * 2
    targets = torch.randint(0, 5, (3, 6), generator=g)
    some_ignored = targets.clone()
    some_ignored[0, :2], some_ignored[2, 5] = IGNORE_INDEX, IGNORE_INDEX
    row_ignored = targets.clone()
    row_ignored[1] = IGNORE_INDEX
    cases = [
        Case("random logits, every position a target", (logits, targets)),
        Case("some targets are -100 (skipped)", (logits, some_ignored)),
        Case("a sequence with no target at all: 0", (logits, row_ignored)),
        Case("uniform logits: -T log V", (torch.zeros(2, 4, 7), torch.randint(0, 7, (2, 4), generator=g))),
        Case("large logits (use log_softmax, not log(softmax))", (logits * 100, targets)),
        Case("targets of the wrong shape are a bad input", (logits, targets[:, :4]), raises=ValueError),
    ]
    return check_function(fn, sequence_log_likelihood, cases, name="sequence_log_likelihood", show=show)


def _call(fn, *args):
    """(result, None) or (None, message) for a learner's call."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "not implemented yet"
    except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
        return None, f"raised {type(err).__name__}: {err}"


def _near(got: float, p: float, n: int, what: str) -> tuple[bool, str]:
    tol = 5 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-9
    ok = abs(got - p) <= tol
    return ok, f"{what} {got:.3f}" + ("" if ok else f", expected {p:.3f} (+- {tol:.3f})")


def _pair_problem(out, shape) -> str | None:
    """None if ``out`` is (inputs, targets), two tensors of ``shape``; else what is wrong."""
    if isinstance(out, (tuple, list)) and len(out) == 2 and all(
            isinstance(t, torch.Tensor) and t.shape == shape for t in out):
        return None
    if isinstance(out, torch.Tensor):
        got = f"one tensor of shape {tuple(out.shape)}"
    elif isinstance(out, (tuple, list)):
        got = f"a {type(out).__name__} of {len(out)} items"
    else:
        got = "None (did you forget return?)" if out is None else type(out).__name__
    return f"should return (inputs, targets), two tensors of shape {tuple(shape)}; got {got}"


def _corruption_results(fn, ids, mask_id, V, mask_prob):
    """The property checks of one call ``fn(ids, mask_id, V, mask_prob)``: list of (desc, ok, msg)."""
    label = f"mask_prob={mask_prob}"
    out, err = _call(fn, ids.clone(), mask_id, V, mask_prob)
    if err is None:
        err = _pair_problem(out, ids.shape)
    if err:
        return [(f"{label}: runs and returns (inputs, targets)", False, err)]
    inputs, targets = (t.long() for t in out)
    chosen = targets >= 0                      # a target id; anything negative means "no target"
    results = []
    other = targets[(targets < 0) & (targets != IGNORE_INDEX)]
    wrong_ignore = (f"unchosen positions hold {int(other[0])}; use -100, the one ignore index "
                    "(F.cross_entropy's default)") if len(other) else None
    ok = torch.equal(targets[chosen], ids[chosen]) and wrong_ignore is None
    results.append((f"{label}: targets are the original ids where chosen, -100 elsewhere", ok,
                    "yes" if ok else wrong_ignore or "some targets differ from the original ids"))
    changed = int((inputs[~chosen] != ids[~chosen]).sum())
    results.append((f"{label}: unchosen positions are left unchanged", changed == 0,
                    "yes" if changed == 0 else f"{changed} unchosen inputs changed"))
    n = int(chosen.sum())
    results.append((f"{label}: fraction chosen", *_near(n / ids.numel(), mask_prob, ids.numel(), "chosen")))
    if 0 < mask_prob:
        masked = chosen & (inputs == mask_id)
        randomised = chosen & (inputs != mask_id) & (inputs != ids)
        for what, got, p in [("[MASK]", masked, 0.8), ("random token", randomised, 0.1 * (1 - 1 / V))]:
            results.append((f"{label}: chosen positions that became a {what}",
                            *_near(int(got.sum()) / max(n, 1), p, max(n, 1), "fraction")))
    return results


def check_mlm_corrupt(fn: Callable, show: bool = True) -> CheckReport:
    """``fn(ids (B, T), mask_id, num_tokens, mask_prob) -> (inputs, targets)``, BERT's corruption:
    choose a ``mask_prob`` fraction of positions at random; of those 80% -> mask_id, 10% -> a random
    id in [0, num_tokens), 10% unchanged; targets = original ids where chosen, -100 elsewhere;
    ValueError for mask_prob outside [0, 1]."""
    V, mask_id = 20, 20
    ids = torch.randint(0, V, (64, 500), generator=torch.Generator().manual_seed(0))
    results = []
    for p in (0.15, 0.4, 0.0, 1.0):
        results += _corruption_results(fn, ids, mask_id, V, p)
    many = torch.zeros(2000, 10, dtype=torch.long)
    out, err = _call(fn, many.clone(), 1, 1, 0.3)
    if err is None:
        err = _pair_problem(out, many.shape)
    if err is None:
        freq = (out[1] != IGNORE_INDEX).float().mean(dim=0)     # (T,) how often each position is chosen
        ok = bool((freq - 0.3).abs().max() < 0.06)
        freqs = [round(f, 2) for f in freq.tolist()]
        err = "yes" if ok else f"position frequencies {freqs}, expected ~0.3 each"
        second, err2 = _call(fn, many.clone(), 1, 1, 0.3)
        if err2 is None:
            err2 = _pair_problem(second, many.shape)
        if err2 is not None:
            ok, err = False, f"a second call with the same inputs {err2}"
        elif ok and torch.equal(second[1], out[1]):
            ok, err = False, "two calls chose the same positions: draw new random numbers each call"
    else:
        ok = False
    results.append(("every position is equally likely to be chosen, differently each call", ok, err))
    for bad in (-0.1, 1.5):
        _, err = _call(fn, ids[:2], mask_id, V, bad)
        ok = err is not None and err.startswith("raised ValueError")
        msg = "raises ValueError as it should" if ok else (err or "accepts it; it should raise ValueError")
        results.append((f"mask_prob={bad} is a bad input", ok, msg))
    report = CheckReport("mlm_corrupt", results)
    if show:
        print(report)
    return report
