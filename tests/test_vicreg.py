"""VICReg: the three terms against slow loops written from Algorithm 1 of arXiv:2105.04906,
analytic cases, known-wrong versions, bad inputs, the method, and the spectrum helper."""
import math

import pytest
import torch

from course_utils.methods.base import load
from course_utils.methods.byol import effective_rank
from course_utils.methods.vicreg import (
    VICReg,
    covariance_term,
    embedding_spectrum,
    invariance_term,
    variance_term,
    vicreg_loss,
    vicreg_terms,
)
from course_utils.models import build_encoder


def _zz(B=9, D=4, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    z1 = scale * torch.randn(B, D, generator=g)
    return z1, z1 + 0.3 * torch.randn(B, D, generator=g)


def _columns(z):
    return [[row[j] for row in z.tolist()] for j in range(z.shape[1])]


def slow_variance(z, gamma=1.0, eps=1e-4):
    total = 0.0
    for col in _columns(z):
        mean = sum(col) / len(col)
        var = sum((v - mean) ** 2 for v in col) / (len(col) - 1)
        total += max(0.0, gamma - math.sqrt(var + eps))
    return total / z.shape[1]


def slow_covariance(z):
    cols = _columns(z)
    B, D = z.shape
    means = [sum(c) / B for c in cols]
    total = 0.0
    for i in range(D):
        for j in range(D):
            if i != j:
                cov = sum((cols[i][n] - means[i]) * (cols[j][n] - means[j]) for n in range(B)) / (B - 1)
                total += cov ** 2
    return total / D


def slow_vicreg(z1, z2, lam=25.0, mu=25.0, nu=1.0):
    a, b = z1.flatten().tolist(), z2.flatten().tolist()
    sim = sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)
    return (lam * sim + mu * (slow_variance(z1) + slow_variance(z2))
            + nu * (slow_covariance(z1) + slow_covariance(z2)))


# ---------------------------------------------------------------------------- the loss

def test_terms_match_slow_loops():
    z1, z2 = _zz()
    assert variance_term(z1).item() == pytest.approx(slow_variance(z1), rel=1e-5)
    assert covariance_term(z1).item() == pytest.approx(slow_covariance(z1), rel=1e-5)
    assert invariance_term(z1, z2).item() == pytest.approx(((z1 - z2) ** 2).mean().item(), rel=1e-6)


@pytest.mark.parametrize("coeffs", [(25.0, 25.0, 1.0), (1.0, 0.0, 0.0), (0.0, 3.0, 2.0)])
def test_loss_matches_slow_loop(coeffs):
    z1, z2 = _zz(seed=1)
    assert vicreg_loss(z1, z2, *coeffs).item() == pytest.approx(slow_vicreg(z1, z2, *coeffs), rel=1e-5)


def test_analytic_cases():
    # columns of a Hadamard matrix, scaled: mean 0, orthogonal, std 2 (unbiased) -> above the hinge
    h = torch.tensor([[1., 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]]) * math.sqrt(3)
    t = vicreg_terms(h, h)
    assert t["invariance"].item() == 0.0
    assert t["variance"].item() == pytest.approx(0.0, abs=1e-7)           # std = 2 > gamma = 1
    assert t["covariance"].item() == pytest.approx(0.0, abs=1e-6)         # decorrelated
    # complete collapse: every row the same -> std 0, hinge 1 - sqrt(eps) per dimension and view
    c = torch.ones(6, 5)
    assert variance_term(c).item() == pytest.approx(1 - math.sqrt(1e-4), abs=1e-6)
    assert vicreg_loss(c, c).item() == pytest.approx(25 * 2 * (1 - 0.01), abs=1e-4)
    # dimensional collapse: D copies of one column with variance v: every off-diagonal cov = v
    col = torch.tensor([1., -1, 2, -2])
    r = col[:, None].repeat(1, 3)
    v = col.var().item()
    assert covariance_term(r).item() == pytest.approx(6 * v ** 2 / 3, rel=1e-5)


def test_hinge_on_the_variance_or_without_eps_is_wrong():
    z = 0.5 * torch.randn(16, 6, generator=torch.Generator().manual_seed(3))
    on_variance = torch.relu(1 - (z.var(0) + 1e-4)).mean()   # the known bug: hinge on Var, not std
    assert not torch.isclose(on_variance, variance_term(z), atol=1e-3)
    c = torch.ones(4, 3, requires_grad=True)                 # collapsed: without eps the gradient is NaN
    torch.relu(1 - torch.sqrt(c.var(0))).mean().backward()
    assert torch.isnan(c.grad).all()
    c.grad = None
    variance_term(c).backward()
    assert torch.isfinite(c.grad).all()


def test_covariance_with_the_diagonal_or_without_centring_is_wrong():
    z = torch.randn(12, 5, generator=torch.Generator().manual_seed(4)) + 2.0
    with_diag = torch.cov(z.T).pow(2).sum() / 5
    uncentred = (z.T @ z / 11).fill_diagonal_(0).pow(2).sum() / 5
    assert not torch.isclose(with_diag, covariance_term(z), atol=1e-3)
    assert not torch.isclose(uncentred, covariance_term(z), atol=1e-3)
    torch.testing.assert_close(covariance_term(z), torch.cov(z.T).fill_diagonal_(0).pow(2).sum() / 5)


def test_gradient_flows_to_both_views():
    z1, z2 = (t.requires_grad_() for t in _zz())
    vicreg_loss(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


# ---------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("z1, z2, match", [
    (torch.zeros(1, 4), torch.zeros(1, 4), "batch of 1"),
    (torch.zeros(4, 3), torch.zeros(4, 5), "same shape"),
    (torch.zeros(4), torch.zeros(4), r"\(B, D\)"),
])
def test_bad_embeddings_are_named(z1, z2, match):
    with pytest.raises(ValueError, match=match):
        vicreg_loss(z1, z2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sim_coeff=-1.0), "sim_coeff"), (dict(std_coeff=float("nan")), "std_coeff"),
    (dict(cov_coeff=float("inf")), "cov_coeff"), (dict(sim_coeff=0, std_coeff=0, cov_coeff=0), "all 0"),
    (dict(gamma=0.0), "gamma"), (dict(eps=-1e-4), "eps"),
])
def test_bad_coefficients_are_named(kwargs, match):
    z1, z2 = _zz()
    with pytest.raises(ValueError, match=match):
        vicreg_loss(z1, z2, **kwargs)


def test_method_refuses_bad_coefficients():
    with pytest.raises(ValueError, match="cov_coeff"):
        VICReg(build_encoder("small_cnn", width=4), 16, 16, cov_coeff=-1.0)


# ---------------------------------------------------------------------------- the method

def test_training_step_logs_the_terms_and_trains_the_encoder(tmp_path):
    torch.manual_seed(0)
    m = VICReg(build_encoder("small_cnn", width=4), proj_hidden_dim=32, proj_dim=16, cov_coeff=0.0)
    out = m.training_step((torch.rand(8, 3, 32, 32), torch.zeros(8)))
    assert set(out) == {"loss", "invariance", "variance", "covariance"}
    torch.testing.assert_close(out["loss"].detach(), 25 * out["invariance"] + 25 * out["variance"])
    out["loss"].backward()
    assert all(p.grad is not None for p in m.encoder.parameters())
    m.save(tmp_path / "v.pt")
    back = load(tmp_path / "v.pt")
    assert isinstance(back, VICReg) and back.cov_coeff == 0.0


# ---------------------------------------------------------------------------- the spectrum

def test_spectrum_of_a_rank_two_matrix_and_of_a_collapsed_one():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(50, 2, generator=g) @ torch.randn(2, 8, generator=g)      # rank 2
    s = embedding_spectrum(z)
    assert s.shape == (8,) and s[0].item() == pytest.approx(1.0)
    assert (s[:-1] >= s[1:] - 1e-6).all() and s[1] > 1e-3 and s[2:].max() < 1e-4
    torch.testing.assert_close(embedding_spectrum(torch.ones(5, 3)), torch.zeros(3))
    # an equal spread over D orthogonal directions: flat spectrum, effective rank D
    e = torch.cat([torch.eye(4), -torch.eye(4)])
    torch.testing.assert_close(embedding_spectrum(e), torch.ones(4))
    assert effective_rank(e) == pytest.approx(4.0, rel=1e-4)
    assert effective_rank(z) < 2.0 + 1e-3
