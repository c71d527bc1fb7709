import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils import models
from course_utils import train as tr
from course_utils.methods.base import Method, load


class TinyMethod(Method):
    """Linear classifier on flattened pixels, with a random draw per step (as augmentations do)."""

    def __init__(self, encoder=None, classes: int = 3, noise: float = 0.01):
        super().__init__(encoder if encoder is not None else models.build_encoder("pixels", image_size=4))
        self.net = nn.Linear(self.encoder.num_features, classes)
        self.noise = noise

    def training_step(self, batch):
        x, y = batch
        x = x + self.noise * torch.randn_like(x)  # uses the global RNG, like an augmentation
        return F.cross_entropy(self.net(self.encoder.forward_features(x)), y)


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
    other.net = nn.Linear(48, 5)                 # changed by hand: the recorded config cannot tell
    with pytest.raises(ValueError, match="different model.*Delete the file"):
        tr.train(other, toy_data(), epochs=1, batch_size=16, checkpoint=ckpt, progress=False)


@pytest.mark.parametrize("change, message", [
    ({"batch_size": 8}, "batch_size: 16 in the checkpoint, 8 now"),
    ({"n": 48}, "data.n: 64 in the checkpoint, 48 now"),
    ({"seed": 1}, "seed: 0 in the checkpoint, 1 now"),
    ({"lr": 0.3}, "optimizer.lr: 0.01 in the checkpoint, 0.3 now"),
    ({"epochs": 2}, "epochs: 1 in the checkpoint, 2 now"),
    ({"weight_decay": 0.5}, "optimizer.weight_decay"),
    ({"noise": 0.5}, "method.noise: 0.01 in the checkpoint, 0.5 now"),
    ({"flip": True}, "data.checksum"),
])
def test_checkpoint_from_another_run_is_refused(tmp_path, change, message):
    """A finished checkpoint of other settings (the method's, the data, the optimiser's)
    is never handed back as this run: train names what changed and the fix."""
    ckpt = tmp_path / "run.pt"
    run(1, ckpt)
    kw = {"batch_size": 16, "seed": 0, "lr": 1e-2, "epochs": 1, **change}
    images, labels = toy_data(kw.pop("n", 64))
    if kw.pop("flip", False):
        images = images.flip(-1)                 # the same size and labels, other pixels
    torch.manual_seed(0)
    method = TinyMethod(noise=kw.pop("noise", 0.01))
    with pytest.raises(ValueError, match=f"other settings \\(.*{message}.*\\).*Delete the file"):
        tr.train(method, (images, labels), checkpoint=ckpt, progress=False, device="cpu", **kw)


def test_same_settings_resume_and_the_checkpoint_rebuilds_the_method(tmp_path):
    ckpt = tmp_path / "run.pt"
    m1, _ = run(1, ckpt)
    m2, _ = run(1, ckpt)                          # equal settings: the finished run is loaded
    assert torch.equal(m1.net.weight, m2.net.weight)
    back = load(ckpt)                             # rebuilt from the config saved in the checkpoint
    assert isinstance(back, TinyMethod) and back.noise == 0.01 and not back.training
    x = toy_data()[0][:4].float() / 255
    torch.testing.assert_close(back.net(back(x)), m1.eval().net(m1(x)))


def test_training_step_logs_reach_the_history():
    class Logging(TinyMethod):
        def training_step(self, batch):
            loss = super().training_step(batch)
            return {"loss": loss, "twice": 2 * loss.detach(), "const": 3}

    torch.manual_seed(0)
    h = tr.train(Logging(), toy_data(), epochs=2, batch_size=16, lr=1e-2, progress=False, device="cpu")
    assert h["logs"]["twice"] == pytest.approx([2 * v for v in h["step_loss"]])
    assert h["logs"]["const"] == [3.0] * 8
    assert h["epoch_logs"]["twice"] == pytest.approx([2 * v for v in h["epoch_loss"]])


@pytest.mark.parametrize("out, match", [
    ({"twice": torch.tensor(1.0)}, "without 'loss'"),
    (torch.ones(3, requires_grad=True), "scalar loss.*shape \\(3,\\)"),
    (1.5, "scalar loss tensor.*float"),
])
def test_bad_training_step_results_are_named(out, match):
    class Bad(TinyMethod):
        def training_step(self, batch):
            return out

    with pytest.raises(ValueError, match=match):
        tr.train(Bad(), toy_data(), epochs=1, batch_size=16, progress=False, device="cpu")


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
        def training_step(self, batch):
            return super().training_step(batch) * float("inf")

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
