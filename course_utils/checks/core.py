"""Feedback for the exercises: run a learner's function against the package's tested one.

    from course_utils.checks import check_nt_xent
    check_nt_xent(my_nt_xent)

prints one line per case (a shape, a value, an edge case, a bad input) saying what is
right and, where something differs, what differs: a wrong shape, the largest value
difference and where it is, an exception, or a bad input that was accepted.
Each notebook's exercise checks (the other modules of this package) are built with
:func:`check_function`.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class Case:
    """One input for a check. ``raises``: the exception type a bad input must raise."""
    description: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    raises: type | None = None


@dataclass
class CheckReport:
    name: str
    results: list  # (description, passed, message)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.results)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        lines = [f"Checking {self.name}:"]
        lines += [f"  {'ok  ' if ok else 'FAIL'} {desc}: {msg}" for desc, ok, msg in self.results]
        n_ok = sum(ok for _, ok, _ in self.results)
        verdict = "all correct, well done!" if self.passed else "look at the FAIL lines above"
        lines.append(f"{n_ok}/{len(self.results)} cases pass: {verdict}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows the report, not the object
        p.text(str(self))


def compare(got: Any, expected: Any, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """None if ``got`` matches ``expected``, else a sentence saying what differs."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected {len(expected)} outputs, got {type(got).__name__}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare(g, e, atol, rtol)
            if msg:
                return f"output {i}: {msg}"
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"shape is {tuple(got.shape)}, expected {tuple(expected.shape)}"
        if got.dtype.is_floating_point != expected.dtype.is_floating_point:
            return f"dtype is {got.dtype}, expected {expected.dtype}"
        if not got.dtype.is_floating_point:
            bad = (got != expected.to(got.device)).sum().item()
            return None if bad == 0 else f"{bad} of {got.numel()} entries differ"
        g, e = got.detach().float().cpu(), expected.detach().float().cpu()
        if torch.isnan(g).any() and not torch.isnan(e).any():
            return "contains NaN"
        diff = (g - e).abs()
        tol = atol + rtol * e.abs()
        if (diff > tol).any():
            i = int(diff.flatten().argmax())
            where = f" at index {tuple(int(j) for j in torch.unravel_index(torch.tensor(i), g.shape))}" if g.dim() else ""
            return (f"values differ: largest difference {diff.max().item():.3g}{where} "
                    f"(got {g.flatten()[i].item():.5g}, expected {e.flatten()[i].item():.5g})")
        return None
    if isinstance(expected, float):
        ok = isinstance(got, (int, float)) and abs(got - expected) <= atol + rtol * abs(expected)
        return None if ok else f"got {got!r}, expected {expected:.5g}"
    return None if got == expected else f"got {got!r}, expected {expected!r}"


def check_function(fn: Callable, reference: Callable, cases: list[Case], name: str | None = None,
                   atol: float = 1e-5, rtol: float = 1e-4, show: bool = True,
                   time_limit: float = 10.0) -> CheckReport:
    """Run ``fn`` and ``reference`` on every case and report what differs, case by case.
    A case where ``fn`` runs longer than ``time_limit`` seconds (an endless loop, say) is
    stopped and reported as not finished, so that one case cannot hang the whole check
    (where the operating system allows: a timer signal in the main thread, not on Windows)."""
    if not callable(fn):
        raise TypeError(f"pass your function itself (without calling it), got {type(fn).__name__}")
    results = []
    for case in cases:
        results.append((case.description, *_run_case(fn, reference, case, atol, rtol, time_limit)))
        if results[-1][2] == "not implemented yet":       # a stub: one line says it, not one per case
            results = [("your function (write it, then run this cell again)", False, "not implemented yet")]
            break
    report = CheckReport(name or getattr(fn, "__name__", "your function"), results)
    if show:
        print(report)
    return report


def _fresh(value):
    """A copy of every tensor in ``value`` (also inside tuples, lists and dicts); the rest as is."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, tuple):
        return type(value)(*map(_fresh, value)) if hasattr(value, "_fields") else tuple(map(_fresh, value))
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


def _fresh_inputs(case: Case):
    """Each call gets its own copies of the case's tensors: cases share tensors, and a function
    that edits its inputs in place must not change what later calls (or cases) see."""
    return _fresh(case.args), _fresh(case.kwargs)


class CaseTimeout(BaseException):
    """Raised inside a learner's function that ran past the time limit. A BaseException, so
    that an ``except Exception`` in the learner's own loop cannot swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    usable = (seconds and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def stop(signum, frame):
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _timed_out(seconds) -> tuple[bool, str]:
    return False, (f"did not finish within {seconds:g} s (an endless loop?); "
                   "interrupting is not needed: the other cases still ran")


def _run_case(fn, reference, case: Case, atol, rtol, time_limit: float = 10.0):
    if case.raises is not None:
        args, kwargs = _fresh_inputs(case)
        try:
            with _time_limit(time_limit):
                fn(*args, **kwargs)
        except CaseTimeout:
            return _timed_out(time_limit)
        except NotImplementedError:
            return False, "not implemented yet"
        except case.raises as err:
            return True, f"raises {type(err).__name__} as it should"
        except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
            return False, f"raises {type(err).__name__} ({err}); expected {case.raises.__name__}"
        return False, f"accepts this bad input; it should raise {case.raises.__name__}"
    args, kwargs = _fresh_inputs(case)
    expected = reference(*args, **kwargs)
    args, kwargs = _fresh_inputs(case)
    try:
        with _time_limit(time_limit):
            got = fn(*args, **kwargs)
    except CaseTimeout:
        return _timed_out(time_limit)
    except NotImplementedError:
        return False, "not implemented yet"
    except Exception as err:  # noqa: BLE001
        return False, f"raised {type(err).__name__}: {err}"
    msg = compare(got, expected, atol, rtol)
    return (True, "matches") if msg is None else (False, msg)
