"""Training in a known time: how many epochs fit in a budget of minutes, measured here.

    plan = plan_epochs(minutes=3, step_s=0.2, steps_per_epoch=156, eval_s=1.5, eval_every=3)
    plan.epochs                      # whole epochs that fit (at least one)

``train(..., minutes=3)`` measures ``step_s`` (and ``eval_s``) on a throwaway copy of the
method, so the run itself is exactly the run ``train(..., epochs=plan.epochs)`` would make:
same batches, same schedule, same result, on any machine; only the number of epochs
depends on how fast the machine is. The plan is stored in the checkpoint, so a resumed
run keeps it.

``COURSE_TIME_SCALE`` (a number, default 1) multiplies every budget: 0.2 for a quick
look, 10 for a long run.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass

import torch

from .runtime import rng_state, set_rng_state, sync


def time_scale() -> float:
    """``COURSE_TIME_SCALE`` as a number > 0 (default 1): the factor on every budget."""
    text = os.environ.get("COURSE_TIME_SCALE", "").strip()
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise ValueError(f"COURSE_TIME_SCALE={text!r} is not a number > 0; use e.g. COURSE_TIME_SCALE=0.2 "
                         "for a quick look, 10 for a long run, or unset it (1)")
    return value


def check_minutes(minutes, name: str = "minutes") -> float:
    if isinstance(minutes, (str, bytes, bool)) or not isinstance(minutes, (int, float)) \
            or not 0 < minutes < math.inf:
        raise ValueError(f"{name} must be a finite number of minutes > 0 (e.g. 3 or 0.5), got {minutes!r}")
    return float(minutes)


@dataclass
class Plan:
    """How a run fills its budget. ``budget_s`` is minutes x 60 x time scale; ``step_s`` and
    ``eval_s`` were measured before the run; ``epochs`` is what fits."""
    minutes: float
    time_scale: float
    budget_s: float
    step_s: float
    eval_s: float
    measure_s: float
    steps_per_epoch: int
    epochs: int
    evals: int

    @property
    def planned_s(self) -> float:
        """The time the plan expects: measuring, training and evaluating."""
        return self.measure_s + self.epochs * self.steps_per_epoch * self.step_s + self.eval_s * self.evals

    def as_dict(self) -> dict:
        return {**asdict(self), "planned_s": self.planned_s}

    def __str__(self):
        ev = f", {self.evals} evaluation(s) of {self.eval_s:.1f} s" if self.evals else ""
        scale = f" x {self.time_scale:g} (COURSE_TIME_SCALE)" if self.time_scale != 1 else ""
        return (f"budget {self.minutes:g} min{scale}: {self.step_s * 1000:.0f} ms per step, "
                f"{self.steps_per_epoch} steps per epoch{ev} -> {self.epochs} epoch(s)")


def evals_in(epochs: int, eval_every: int | None) -> int:
    """Evaluations a run of ``epochs`` makes: every ``eval_every`` epochs, and after the last."""
    if not eval_every:
        return 0
    return epochs // eval_every + (1 if epochs % eval_every else 0)


def plan_epochs(minutes: float, step_s: float, steps_per_epoch: int, eval_s: float = 0.0,
                eval_every: int | None = None, measure_s: float = 0.0, max_epochs: int | None = None,
                scale: float | None = None) -> Plan:
    """The most whole epochs (at least one, at most ``max_epochs``) whose training steps and
    evaluations fit in what is left of ``minutes`` after ``measure_s`` seconds of measuring."""
    scale = time_scale() if scale is None else scale
    budget_s = check_minutes(minutes) * 60 * scale
    left = budget_s - measure_s
    left += 1e-9 * budget_s                         # 0.6 s / 0.2 s is 3 epochs, not 2.9999
    epochs = max(1, int(left / max(steps_per_epoch * step_s, 1e-12)))
    if max_epochs is not None:
        epochs = min(epochs, max_epochs)
    while epochs > 1 and epochs * steps_per_epoch * step_s + evals_in(epochs, eval_every) * eval_s > left:
        epochs -= 1
    return Plan(float(minutes), scale, budget_s, step_s, eval_s, measure_s, steps_per_epoch, epochs,
                evals_in(epochs, eval_every))


def measure(step_fn, method, optimizer, make_batches, eval_fn=None, warmup: int = 3, steps: int = 20,
            max_seconds: float = 10.0) -> tuple[float, float, float]:
    """(seconds per training step, seconds per ``eval_fn`` call, seconds spent measuring),
    timed on a deep copy of ``method`` with its own optimiser. The random state is restored
    afterwards, so measuring leaves no trace on the run that follows.

    ``step_fn(method, optimizer, batch)`` is one training step; ``make_batches()`` returns a
    fresh iterator of batches. ``warmup`` untimed steps come first (caches, autotuning);
    timing stops after ``steps`` steps or ``max_seconds``, whichever comes first.
    """
    start, state = time.perf_counter(), rng_state()
    probe = copy.deepcopy(method)
    probe_opt = clone_optimizer(optimizer, method, probe)
    try:
        it, times = make_batches(), []
        while len(times) < warmup + steps:
            t0 = time.perf_counter()
            batch = next(it, None)
            if batch is None:
                it = make_batches()
                continue
            step_fn(probe, probe_opt, batch)
            sync()
            times.append(time.perf_counter() - t0)
            if len(times) == 1 and times[0] > max_seconds:
                warmup = 1                  # a slow step: one warm-up is all the budget allows
            if len(times) > warmup and sum(times[warmup:]) > max_seconds:
                break
        timed = sorted(times[warmup:] or times)
        step_s = timed[len(timed) // 2]         # the median: one step slowed by something else does not count
        eval_s = 0.0
        if eval_fn is not None:
            t0 = time.perf_counter()
            eval_fn(probe)
            sync()
            eval_s = time.perf_counter() - t0
    finally:
        set_rng_state(state)
        del probe, probe_opt
    return step_s, eval_s, time.perf_counter() - start


def clone_optimizer(optimizer: torch.optim.Optimizer, model: torch.nn.Module, copy_of_model: torch.nn.Module):
    """An optimiser of the same kind and settings (per parameter group) for a copy of ``model``."""
    twin = dict(zip((id(p) for p in model.parameters()), copy_of_model.parameters()))
    groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [twin[id(p)] for p in g["params"]]}
              for g in optimizer.param_groups]
    return type(optimizer)(groups)  # every setting is in the groups
