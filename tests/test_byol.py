"""BYOL / SimSiam: the regression loss against a slow loop, collapse metrics, and the methods
(the EMA target and its schedule: test_momentum.py)."""
import copy
import math

import pytest
import torch
import torch.nn as nn

from course_utils.methods import byol
from course_utils.methods.byol import (
    BYOL,
    SimSiam,
    collapse_monitor,
    effective_rank,
    embedding_std,
    regression_loss,
    symmetric_regression_loss,
)
from course_utils.methods.momentum import cosine_momentum
from course_utils.models import SmallCNN


def _pz(B=6, D=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)


def slow_regression_loss(p, z):
    """Eq. 2 of arXiv:2006.07733, one sample at a time: || p/|p| - z/|z| ||^2, averaged."""
    total = 0.0
    for i in range(len(p)):
        pn = [v / math.sqrt(sum(u * u for u in p[i].tolist())) for v in p[i].tolist()]
        zn = [v / math.sqrt(sum(u * u for u in z[i].tolist())) for v in z[i].tolist()]
        total += sum((a - b) ** 2 for a, b in zip(pn, zn))
    return total / len(p)


# ---------------------------------------------------------------------------- the loss

def test_regression_loss_matches_slow_loop():
    p, z = _pz()
    assert regression_loss(p, z).item() == pytest.approx(slow_regression_loss(p, z), rel=1e-5)


def test_regression_loss_analytic_cases():
    p, _ = _pz()
    assert regression_loss(p, p).item() == pytest.approx(0.0, abs=1e-6)        # same direction
    assert regression_loss(p, 3 * p).item() == pytest.approx(0.0, abs=1e-6)    # scale ignored
    assert regression_loss(p, -p).item() == pytest.approx(4.0, abs=1e-5)       # opposite
    e = torch.eye(4)
    assert regression_loss(e[:2], e[2:]).item() == pytest.approx(2.0, abs=1e-6)  # orthogonal


def test_symmetric_loss_pairs_crosswise_and_differs_from_same_view():
    p1, p2 = _pz(seed=1)
    z1, z2 = _pz(seed=2)
    expected = slow_regression_loss(p1, z2) + slow_regression_loss(p2, z1)
    got = symmetric_regression_loss(p1, p2, z1, z2).item()
    assert got == pytest.approx(expected, rel=1e-5)
    same_view = regression_loss(p1, z1) + regression_loss(p2, z2)  # known wrong: no cross-view
    assert abs(same_view.item() - got) > 1e-2


def test_regression_loss_does_not_detach_itself():
    p, z = _pz()
    z.requires_grad_(True)
    regression_loss(p, z).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


@pytest.mark.parametrize("p, z, match", [
    (torch.randn(4, 3), torch.randn(4, 2), "same shape"),
    (torch.randn(4, 3), torch.randn(5, 3), "same shape"),
    (torch.randn(4), torch.randn(4), r"\(B, D\)"),
])
def test_regression_loss_bad_inputs(p, z, match):
    with pytest.raises(ValueError, match=match):
        regression_loss(p, z)


# ------------------------------------------------------------------- collapse metrics

def test_embedding_std_collapsed_healthy_and_slow_loop():
    z = torch.randn(1, 16).expand(50, 16)
    assert embedding_std(z) == pytest.approx(0.0, abs=1e-6)
    D = 64
    healthy = embedding_std(torch.randn(4000, D, generator=torch.Generator().manual_seed(0)))
    assert healthy == pytest.approx(1 / math.sqrt(D), rel=0.05)
    zz = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    rows = [[v / math.sqrt(sum(u * u for u in r)) for v in r] for r in zz.tolist()]
    stds = []
    for d in range(3):
        col = [r[d] for r in rows]
        mu = sum(col) / len(col)
        stds.append(math.sqrt(sum((c - mu) ** 2 for c in col) / (len(col) - 1)))
    assert embedding_std(zz) == pytest.approx(sum(stds) / 3, rel=1e-5)


def test_effective_rank_ends_and_slow_reference():
    assert effective_rank(torch.randn(1, 8).expand(20, 8)) == pytest.approx(1.0, abs=1e-3)
    assert effective_rank(torch.eye(6)) == pytest.approx(6.0, rel=1e-5)
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    s = torch.linalg.svdvals(z).tolist()
    p = [v / sum(s) for v in s]
    assert effective_rank(z) == pytest.approx(math.exp(-sum(q * math.log(q) for q in p)), rel=1e-4)


def test_collapse_metrics_bad_inputs():
    with pytest.raises(ValueError, match="B >= 2"):
        embedding_std(torch.randn(1, 4))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        effective_rank(torch.randn(4))


# -------------------------------------------------------------------------- the methods

def _images(B=8, size=16, seed=0):
    return torch.rand(B, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _byol(**kw):
    torch.manual_seed(0)
    return BYOL(SmallCNN(width=4), proj_hidden_dim=16, proj_dim=8, pred_hidden_dim=16,
                transform=byol.byol_transforms(16), **kw)


def test_byol_step_trains_online_only_and_ema_follows():
    method = _byol(momentum_base=0.9)
    out = method.training_step((_images(), None))
    loss = out["loss"]
    assert out["momentum"] == 0.9
    assert loss.dim() == 0 and torch.isfinite(loss) and 0 <= loss.item() <= 8
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.parameters())
    assert all(p.grad is None and not p.requires_grad for p in method.target_encoder.parameters())
    pairs = [(method.target_encoder, method.encoder), (method.target_projection_head, method.projection_head)]
    before = [[p.clone() for p in target.parameters()] for target, _ in pairs]
    with torch.no_grad():
        for _, online in pairs:
            for p in online.parameters():
                p.add_(1.0)
    method.after_step(0, 10)
    assert method.momentum == pytest.approx(cosine_momentum(1, 10, 0.9))
    m = method.momentum
    for (target, online), old in zip(pairs, before):  # both target networks follow their online twins
        for b, t, o in zip(old, target.parameters(), online.parameters()):
            torch.testing.assert_close(t, m * b + (1 - m) * o)
    method.after_step(9, 10)
    assert method.momentum == 1.0


def test_byol_without_predictor_and_bad_momentum():
    method = _byol(use_predictor=False)
    assert isinstance(method.prediction_head, nn.Identity)
    assert torch.isfinite(method.training_step((_images(), None))["loss"])
    with pytest.raises(ValueError, match="momentum_base"):
        _byol(momentum_base=1.5)


def test_byol_trains_with_the_course_loop(tmp_path):
    from course_utils.train import train

    method = _byol()
    data = (torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8), torch.zeros(16, dtype=torch.long))
    images = _images()
    history = train(method, data, epochs=2, batch_size=8, device="cpu", progress=False,
                    checkpoint=tmp_path / "byol.pt", eval_fn=collapse_monitor(images))
    assert len(history["step_loss"]) == 4 and set(history["eval"][0]) >= {"std", "erank", "epoch"}
    assert method.momentum == 1.0  # the schedule reached K


def test_simsiam_loss_is_negative_cosine_and_stop_gradient_matters():
    torch.manual_seed(0)
    x = _images()

    def grads(stop_gradient):
        torch.manual_seed(0)
        m = SimSiam(SmallCNN(width=4), proj_hidden_dim=16, proj_dim=8, pred_hidden_dim=4,
                    transform=lambda v: v, stop_gradient=stop_gradient)
        z = m.project(x)
        p = m.prediction_head(z)
        expected = -torch.nn.functional.cosine_similarity(p, z.detach(), dim=1).mean()
        loss = m.training_step((x, None))  # identical views: both terms equal
        torch.testing.assert_close(loss, expected)
        loss.backward()
        return torch.cat([q.grad.flatten() for q in m.projection_head.parameters() if q.grad is not None])

    assert not torch.allclose(grads(True), grads(False))


def test_collapse_monitor_restores_mode():
    method = _byol()
    method.train()
    out = collapse_monitor(_images())(method)
    assert method.training and set(out) == {"std", "std_h", "erank", "erank_h"}


def test_byol_transforms_are_asymmetric():
    t1, t2 = byol.byol_transforms(16)
    assert t1.solarize_p == 0 and t2.solarize_p == 0.2
    assert t1(_images()).shape == (8, 3, 16, 16)


def test_deepcopy_of_byol_keeps_target_frozen():
    method = copy.deepcopy(_byol())
    assert not any(p.requires_grad for p in method.target_projection_head.parameters())


def test_byol_transforms_shapes_preset_and_bad_preset():
    t1, t2 = byol.byol_transforms(16, strength=1.0, crop_scale=(0.5, 1.0), preset="shapes")
    assert t2.base.solarize_p == 0.2 and t1.base.crop_scale == (0.5, 1.0)
    assert t2(_images()).shape == (8, 3, 16, 16)
    with pytest.raises(ValueError, match="preset"):
        byol.byol_transforms(16, preset="imagenet")
