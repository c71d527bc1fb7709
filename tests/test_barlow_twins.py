"""Barlow Twins: the loss against a slow loop written from Algorithm 1 of arXiv:2103.03230,
analytic cases, known-wrong versions, bad inputs, and the method itself."""
import math

import pytest
import torch

from course_utils.methods import barlow_twins as bt
from course_utils.methods.barlow_twins import (
    BarlowTwins,
    barlow_twins_loss,
    barlow_twins_terms,
    cross_correlation,
    off_diagonal,
    scaled_lambda,
)
from course_utils.methods.base import load
from course_utils.models import build_encoder


def _zz(B=7, D=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(B, D, generator=g)
    return z1, 0.6 * z1 + 0.8 * torch.randn(B, D, generator=g)


def slow_barlow_twins(z1, z2, lambd, eps=1e-5):
    """Algorithm 1, one number at a time: standardise each column along the batch, then
    C_ij = sum_b a_bi b_bj / B, then sum (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2."""
    a, b = z1.tolist(), z2.tolist()
    B, D = len(a), len(a[0])

    def standardise(rows):
        out = [[0.0] * D for _ in range(B)]
        for j in range(D):
            col = [rows[n][j] for n in range(B)]
            mean = sum(col) / B
            var = sum((v - mean) ** 2 for v in col) / B
            for n in range(B):
                out[n][j] = (col[n] - mean) / math.sqrt(var + eps)
        return out

    a, b = standardise(a), standardise(b)
    loss = 0.0
    for i in range(D):
        for j in range(D):
            c = sum(a[n][i] * b[n][j] for n in range(B)) / B
            loss += (1 - c) ** 2 if i == j else lambd * c ** 2
    return loss


def _decorrelated():
    """Four images, three dimensions: the columns of a Hadamard matrix without its constant
    column, so each column has mean 0, variance 1, and they are orthogonal: C = I."""
    return torch.tensor([[1., 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]])


# ---------------------------------------------------------------------------- the loss

@pytest.mark.parametrize("lambd", [5e-3, 0.1, 1.0])
def test_loss_matches_slow_loop(lambd):
    z1, z2 = _zz()
    assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(slow_barlow_twins(z1, z2, lambd), rel=1e-5)


def test_identical_decorrelated_views_give_zero_loss_and_identity():
    z = _decorrelated()
    torch.testing.assert_close(cross_correlation(z, z, eps=0.0), torch.eye(3))
    t = barlow_twins_terms(z, z, eps=0.0)
    assert t["invariance"].item() == pytest.approx(0.0, abs=1e-7)
    assert t["redundancy"].item() == pytest.approx(0.0, abs=1e-7)
    assert barlow_twins_loss(z, 5 * z + 3, eps=0.0).item() == pytest.approx(0.0, abs=1e-6)  # affine per column


def test_known_values_anticorrelated_and_redundant():
    z = _decorrelated()
    # opposite views: C = -I, so each of the D diagonal terms is (1 - (-1))^2 = 4
    assert barlow_twins_loss(z, -z, eps=0.0).item() == pytest.approx(12.0, abs=1e-5)
    # two copies of one column: C = all ones, diagonal perfect, D(D-1) = 2 entries of 1
    r = torch.stack([z[:, 0], z[:, 0]], dim=1)
    t = barlow_twins_terms(r, r, eps=0.0)
    assert t["invariance"].item() == pytest.approx(0.0, abs=1e-6)
    assert t["redundancy"].item() == pytest.approx(2.0, abs=1e-5)
    assert barlow_twins_loss(r, r, lambd=0.5, eps=0.0).item() == pytest.approx(1.0, abs=1e-5)


def test_loss_is_the_same_for_a_batch_and_the_batch_twice():
    z1, z2 = _zz()
    once = barlow_twins_loss(z1, z2)
    twice = barlow_twins_loss(torch.cat([z1, z1]), torch.cat([z2, z2]))
    torch.testing.assert_close(once, twice)


def test_standardising_along_features_is_wrong():
    z1, z2 = _zz()

    def along_features(z):  # the known bug: each ROW standardised
        return (z - z.mean(1, keepdim=True)) / z.std(1, unbiased=False, keepdim=True)

    c_wrong = along_features(z1).T @ along_features(z2) / z1.shape[0]
    assert not torch.allclose(c_wrong, cross_correlation(z1, z2), atol=1e-3)
    # and the right one makes every diagonal entry a correlation: |C_ii| <= 1
    assert cross_correlation(z1, z2).diagonal().abs().max() <= 1 + 1e-5


def test_forgetting_to_exclude_the_diagonal_is_wrong():
    z1, z2 = _zz()
    c = cross_correlation(z1, z2)
    wrong = (1 - c.diagonal()).pow(2).sum() + 5e-3 * c.pow(2).sum()  # diagonal counted twice
    assert not torch.isclose(wrong, barlow_twins_loss(z1, z2), atol=1e-4)


def test_off_diagonal_keeps_every_entry_but_the_diagonal():
    c = torch.arange(16.).view(4, 4)
    expected = torch.tensor([c[i, j] for i in range(4) for j in range(4) if i != j])
    torch.testing.assert_close(off_diagonal(c), expected)
    with pytest.raises(ValueError, match="square"):
        off_diagonal(torch.zeros(2, 3))


def test_a_constant_dimension_stays_finite():
    z1, z2 = _zz()
    z1[:, 0] = 3.0
    loss = barlow_twins_loss(z1, z2)
    assert torch.isfinite(loss)
    assert cross_correlation(z1, z2)[0, 0].item() == pytest.approx(0.0, abs=1e-6)


def test_gradient_flows_to_both_views():
    z1, z2 = (t.requires_grad_() for t in _zz())
    barlow_twins_loss(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("z1, z2, match", [
    (torch.zeros(1, 4), torch.zeros(1, 4), "batch of 1"),
    (torch.zeros(4, 3), torch.zeros(4, 5), "same shape"),
    (torch.zeros(4, 3), torch.zeros(5, 3), "same shape"),
    (torch.zeros(4, 3, 2), torch.zeros(4, 3, 2), r"\(B, D\)"),
    ([[0.0, 1.0]], torch.zeros(1, 2), "torch tensor"),
])
def test_bad_embeddings_are_named(z1, z2, match):
    with pytest.raises(ValueError, match=match):
        barlow_twins_loss(z1, z2)


@pytest.mark.parametrize("lambd", [0.0, -1.0, float("nan"), float("inf"), "5e-3"])
def test_bad_lambda_is_named(lambd):
    z1, z2 = _zz()
    with pytest.raises(ValueError, match="lambd"):
        barlow_twins_loss(z1, z2, lambd)
    with pytest.raises(ValueError, match="lambd"):
        BarlowTwins(build_encoder("small_cnn", width=4), 16, 16, lambd=lambd)


def test_scaled_lambda_is_the_papers_at_its_width_and_keeps_the_balance():
    assert scaled_lambda(8192, 2048) == pytest.approx(5e-3)
    a, b = scaled_lambda(128, 256), scaled_lambda(512, 256)
    assert a * 127 / 256 == pytest.approx(b * 511 / 256)            # lambda (D - 1) / B fixed
    assert scaled_lambda(128, 512) == pytest.approx(2 * a)
    with pytest.raises(ValueError, match="dim"):
        scaled_lambda(1, 256)


# ---------------------------------------------------------------------------- the method

def _method(**kwargs):
    torch.manual_seed(0)
    return BarlowTwins(build_encoder("small_cnn", width=4), proj_hidden_dim=32, proj_dim=16, **kwargs)


def test_training_step_logs_both_terms_and_trains_the_encoder():
    m = _method(lambd=None, batch_size=8)
    assert m.lambd == pytest.approx(scaled_lambda(16, 8))
    out = m.training_step((torch.rand(8, 3, 32, 32), torch.zeros(8)))
    assert set(out) >= {"loss", "invariance", "redundancy", "mean_abs_offdiag"}
    torch.testing.assert_close(out["loss"].detach(), out["invariance"] + m.lambd * out["redundancy"])
    out["loss"].backward()
    assert all(p.grad is not None for p in m.encoder.parameters())


def test_save_and_load_rebuild_the_method(tmp_path):
    m = _method(lambd=0.05)
    m.save(tmp_path / "bt.pt")
    back = load(tmp_path / "bt.pt")
    assert isinstance(back, BarlowTwins) and back.lambd == pytest.approx(0.05)
    for a, b in zip(m.state_dict().values(), back.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_projector_has_the_papers_shape():
    head = bt.BarlowTwinsProjectionHead(8, 32, 16)
    linears = [layer for layer in head.net if isinstance(layer, torch.nn.Linear)]
    assert [layer.out_features for layer in linears] == [32, 32, 16]
    assert head(torch.randn(4, 8)).shape == (4, 16)
