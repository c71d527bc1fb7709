import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils import train as tr


class TinyMethod(nn.Module):
    """Linear classifier on flattened pixels, with a random draw per step (as augmentations do)."""

    def __init__(self, width=4 * 4 * 3):
        super().__init__()
        self.net = nn.Linear(width, 3)

    def training_step(self, x, y):
        x = x + 0.01 * torch.randn_like(x)  # uses the global RNG, like an augmentation
        return F.cross_entropy(self.net(x.flatten(1)), y)


def toy_data(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 4, 4), dtype=torch.uint8, generator=g), torch.randint(0, 3, (n,), generator=g)


def run(epochs, ckpt=None, **kw):
    torch.manual_seed(0)
    m = TinyMethod()
    return m, tr.train(m, toy_data(), epochs=epochs, batch_size=16, lr=1e-2, checkpoint=ckpt, progress=False,
                       device="cpu", **kw)


def test_loss_goes_down_and_history_is_complete():
    _, h = run(5)
    assert len(h["step_loss"]) == 5 * 4 and len(h["epoch_loss"]) == 5 and len(h["epoch_time"]) == 5
    assert h["epoch_loss"][-1] < h["epoch_loss"][0]


def interrupt_at_step_9(step, total):
    if step == 9:  # in the middle of epoch 3 of 4, as if the learner pressed stop
        raise KeyboardInterrupt


def test_resume_continues_exactly(tmp_path):
    _, full = run(4)
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    method = TinyMethod()
    method.after_step = interrupt_at_step_9
    with pytest.raises(KeyboardInterrupt):
        tr.train(method, toy_data(), epochs=4, batch_size=16, lr=1e-2, checkpoint=ckpt, progress=False)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2  # the last finished epoch is kept
    m, resumed = run(4, ckpt)        # a fresh model, resumed from the file
    assert resumed["step_loss"] == full["step_loss"]  # same losses, bit for bit, on CPU


def test_finished_checkpoint_returns_at_once(tmp_path, capsys):
    ckpt = tmp_path / "run.pt"
    m1, h1 = run(2, ckpt)
    m2, h2 = run(2, ckpt)
    assert h1 == h2
    assert torch.equal(m1.net.weight, m2.net.weight)


def test_checkpoint_from_a_different_model_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    run(1, ckpt)
    other = TinyMethod()
    other.net = nn.Linear(48, 5)
    with pytest.raises(ValueError, match="different model.*Delete the file"):
        tr.train(other, toy_data(), epochs=1, batch_size=16, checkpoint=ckpt, progress=False)


@pytest.mark.parametrize("change, message", [
    ({"batch_size": 8}, "batch_size 16 in the checkpoint but 8 now"),
    ({"n": 48}, "n 64 in the checkpoint but 48 now"),
    ({"seed": 1}, "seed 0 in the checkpoint but 1 now"),
])
def test_checkpoint_from_another_run_is_refused(tmp_path, change, message):
    """Same model, other data or batches: resuming would silently mix two runs."""
    ckpt = tmp_path / "run.pt"
    run(1, ckpt)
    kw = {"batch_size": 16, "seed": 0, **change}
    images, labels = toy_data(kw.pop("n", 64))
    with pytest.raises(ValueError, match=f"another run \\({message}\\).*Delete the file"):
        tr.train(TinyMethod(), (images, labels), epochs=1, checkpoint=ckpt, progress=False, device="cpu", **kw)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    ckpt = tmp_path / "run.pt"
    run(1, ckpt)
    before = ckpt.read_bytes()

    def boom(obj, f, *a, **k):  # writes half a file, then is interrupted
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(tr.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        tr.save_checkpoint(ckpt, {"x": 1})
    assert ckpt.read_bytes() == before


def test_non_finite_loss_stops_clearly():
    class Exploding(TinyMethod):
        def training_step(self, x, y):
            return super().training_step(x, y) * float("inf")

    with pytest.raises(FloatingPointError, match="Lower lr"):
        tr.train(Exploding(), toy_data(), epochs=1, batch_size=16, progress=False)


def test_eval_fn_and_after_step_are_called():
    calls = []

    class WithHook(TinyMethod):
        def after_step(self, step, total):
            calls.append((step, total))

    h = tr.train(WithHook(), toy_data(), epochs=2, batch_size=16, progress=False,
                 eval_fn=lambda m: {"acc": 0.5})
    assert calls[0] == (0, 8) and calls[-1] == (7, 8)
    assert h["eval"] == [{"epoch": 1, "acc": 0.5}, {"epoch": 2, "acc": 0.5}]


def test_bad_arguments():
    with pytest.raises(ValueError, match="epochs"):
        tr.train(TinyMethod(), toy_data(), epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        tr.train(TinyMethod(), toy_data(), epochs=1, batch_size=1000)
    with pytest.raises(ValueError, match="lr"):
        tr.train(TinyMethod(), toy_data(), epochs=1, lr=-1)
    with pytest.raises(ValueError, match="data"):
        tr.train(TinyMethod(), [1, 2, 3], epochs=1)


def test_cosine_schedule_shape():
    f = tr.cosine_schedule(100, warmup_steps=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.0, abs=1e-9)
