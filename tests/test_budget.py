"""Time budgets (budget.py, train(minutes=...)) and mixed precision by device capability.

The budgeted run must be exactly the fixed-epoch run of the planned length, and an
interrupted budgeted run must resume bit-exactly with the plan it stored: both are checked
against plain ``train(epochs=...)`` on the CPU. The measuring itself is replaced by fixed
figures where the test needs a known plan, so nothing here depends on this machine's speed.
"""
import math

import pytest
import torch

from course_utils import budget, runtime
from course_utils import train as tr
from course_utils.lessons.common import Lesson
from test_train import TinyMethod, toy_data


def test_plan_fits_whole_epochs_in_the_budget():
    # 60 s, 100 steps of 0.1 s per epoch: 10 s an epoch
    assert budget.plan_epochs(1, 0.1, 100, scale=1).epochs == 6
    assert budget.plan_epochs(1, 0.1, 100, measure_s=5, scale=1).epochs == 5      # 55 s left
    # an evaluation of 2 s after every epoch: 12 s an epoch; 4 x 12 = 48 <= 55 < 60 = 5 x 12
    plan = budget.plan_epochs(1, 0.1, 100, eval_s=2, eval_every=1, measure_s=5, scale=1)
    assert (plan.epochs, plan.evals) == (4, 4) and plan.planned_s == pytest.approx(53)
    # evaluating every 3 epochs and after the last: 5 epochs -> evaluations after 3 and 5
    assert budget.evals_in(5, 3) == 2 and budget.evals_in(6, 3) == 2 and budget.evals_in(5, None) == 0
    assert budget.plan_epochs(1, 0.1, 100, max_epochs=2, scale=1).epochs == 2
    assert budget.plan_epochs(1, 10.0, 100, scale=1).epochs == 1                 # too slow: still one epoch
    assert budget.plan_epochs(1, 0.1, 100, scale=3).epochs == 18                 # COURSE_TIME_SCALE=3


def test_time_scale_reads_the_environment(monkeypatch):
    monkeypatch.delenv("COURSE_TIME_SCALE", raising=False)
    assert budget.time_scale() == 1.0
    monkeypatch.setenv("COURSE_TIME_SCALE", "0.2")
    assert budget.time_scale() == 0.2
    assert budget.plan_epochs(1, 0.1, 100).budget_s == pytest.approx(12)
    for bad in ("fast", "0", "-1", "inf", "nan"):
        monkeypatch.setenv("COURSE_TIME_SCALE", bad)
        with pytest.raises(ValueError, match="COURSE_TIME_SCALE"):
            budget.time_scale()


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=2, minutes=1), "not both"), (dict(), "not neither"), (dict(minutes=0), "minutes"),
    (dict(minutes="3"), "minutes"), (dict(minutes=math.inf), "minutes"), (dict(minutes=1, max_epochs=0), "max_epochs"),
])
def test_bad_lengths_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        tr.train(TinyMethod(), toy_data(), batch_size=16, progress=False, device="cpu", **kw)


def run(ckpt=None, **kw):
    torch.manual_seed(0)
    method = TinyMethod()
    return method, tr.train(method, toy_data(), batch_size=16, lr=1e-2, checkpoint=ckpt, progress=False,
                            device="cpu", **kw)


def test_a_budgeted_run_is_the_fixed_run_of_its_planned_length():
    """Measuring runs on a copy and restores the random state: the run is unchanged by it."""
    method, h = run(minutes=0.01)
    plan = h["plan"]
    assert plan["epochs"] >= 1 and plan["step_s"] > 0 and plan["budget_s"] == pytest.approx(0.6)
    assert len(h["epoch_loss"]) == plan["epochs"] and h["seconds"] > 0
    fixed, h2 = run(epochs=plan["epochs"])
    assert h["step_loss"] == h2["step_loss"]
    assert all(torch.equal(a, b) for a, b in zip(method.state_dict().values(), fixed.state_dict().values()))


@pytest.fixture
def fixed_speed(monkeypatch):
    """0.05 s a step, 4 steps an epoch: 0.2 s an epoch, so 0.01 minutes (0.6 s) plan 3 epochs."""
    calls = []

    def measure(*args, **kwargs):
        calls.append(1)
        return 0.05, 0.0, 0.0
    monkeypatch.setattr(budget, "measure", measure)
    return calls


def interrupted(ckpt, at_step, **length):
    """A run stopped in the middle, at ``at_step``, as if the learner pressed stop."""
    def stop(step, total):
        if step == at_step:
            raise KeyboardInterrupt
    torch.manual_seed(0)
    method = TinyMethod()
    method.after_step = stop
    with pytest.raises(KeyboardInterrupt):
        tr.train(method, toy_data(), batch_size=16, lr=1e-2, checkpoint=ckpt, progress=False, **length)


def test_an_interrupted_budgeted_run_resumes_exactly_with_its_plan(tmp_path, fixed_speed):
    _, full = run(epochs=3)
    ckpt = tmp_path / "run.pt"
    interrupted(ckpt, at_step=6, minutes=0.01)
    assert torch.load(ckpt, weights_only=False)["history"]["plan"]["epochs"] == 3
    fixed_speed.clear()
    _, resumed = run(ckpt, minutes=0.01)
    assert fixed_speed == []                           # the stored plan is used, not measured again
    assert resumed["step_loss"] == full["step_loss"]   # bit for bit, on CPU


def test_a_changed_budget_or_time_scale_is_not_answered_with_the_old_run(tmp_path, fixed_speed, monkeypatch):
    ckpt = tmp_path / "run.pt"
    run(ckpt, minutes=0.01)
    with pytest.raises(ValueError, match="minutes"):
        run(ckpt, minutes=0.02)
    monkeypatch.setenv("COURSE_TIME_SCALE", "2")
    with pytest.raises(ValueError, match="time_scale"):
        run(ckpt, minutes=0.01)


def test_mixed_precision_follows_the_device_capability(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))   # T4
    assert runtime.amp_dtype(cuda) == torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))   # A100
    assert runtime.amp_dtype(cuda) == torch.bfloat16
    assert runtime.amp_dtype("cpu") is None and runtime.amp_dtype("mps") is None
    assert runtime.grad_scaler("cpu", torch.float16).is_enabled()
    assert not runtime.grad_scaler("cpu", torch.bfloat16).is_enabled()
    assert not runtime.grad_scaler("cpu", None).is_enabled()
    assert isinstance(runtime.autocast("cpu"), type(runtime.autocast("cpu", enabled=False)))  # nothing on CPU


def test_float16_trains_with_a_scaler_whose_state_is_in_the_checkpoint(tmp_path, monkeypatch):
    """What a T4 does, on the CPU: float16 autocast and a gradient scaler, resumed exactly."""
    monkeypatch.setattr(tr, "amp_dtype", lambda device: torch.float16)
    ckpt = tmp_path / "run.pt"
    _, full = run(epochs=2)
    interrupted(ckpt, at_step=5, epochs=2)
    state = torch.load(ckpt, weights_only=False)
    assert state["scaler"]["scale"] > 0 and "float16" in state["config"]["run"]["amp"]
    _, resumed = run(ckpt, epochs=2)
    assert resumed["step_loss"] == full["step_loss"]
    monkeypatch.setattr(tr, "amp_dtype", lambda device: None)     # float32 now: another run
    with pytest.raises(ValueError, match="amp"):
        run(ckpt, epochs=2)


def test_the_runner_uses_the_settings_budget_and_keeps_a_time_table(tmp_path, monkeypatch, fixed_speed):
    from types import SimpleNamespace

    monkeypatch.setenv("COURSE_RUNS", str(tmp_path))
    s = SimpleNamespace(epochs=None, minutes=0.01, batch_size=16, lr=1e-2, eval_every=1, probe_epochs=2)
    x, y = toy_data()
    lesson = Lesson(s, torch.device("cpu"), "99")
    torch.manual_seed(0)
    result = lesson.run("tiny", TinyMethod(), data=(x, y), monitor=None, evaluate=False, quiet=True)
    assert result.history["plan"]["epochs"] == 3 and len(result.history["epoch_loss"]) == 3
    fixed = lesson.run("tiny fixed", TinyMethod(), data=(x, y), epochs=1, monitor=None, evaluate=False, quiet=True)
    assert len(fixed.history["epoch_loss"]) == 1
    table = lesson.time_table()
    assert "tiny" in table and "tiny fixed" in table and "runs together" in table
    assert [t["budget_s"] for t in lesson.times] == [pytest.approx(0.6), None]


def test_the_notebook_clock_starts_at_setup(monkeypatch):
    monkeypatch.setattr(runtime, "STARTED", None)
    assert runtime.elapsed() == 0.0
    runtime.setup(quiet=True)
    first = runtime.elapsed()
    assert 0 <= first < 5 and Lesson(None, torch.device("cpu"), "99").started == runtime.STARTED
