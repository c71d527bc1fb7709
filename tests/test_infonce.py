import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import infonce
from course_utils.losses import nt_xent_loss


def _pair(B, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)


# ------------------------------------------------------------------------ toy MI problems

def test_gaussian_mi_closed_form_and_inverse():
    assert infonce.gaussian_mi(0.0) == 0.0
    torch.testing.assert_close(infonce.gaussian_mi(0.6, 3), -1.5 * math.log(1 - 0.36))
    for mi, dim in [(0.5, 1), (4.0, 2), (10.0, 5)]:
        assert abs(infonce.gaussian_mi(infonce.rho_for_mi(mi, dim), dim) - mi) < 1e-9
    with pytest.raises(ValueError, match="rho"):
        infonce.gaussian_mi(1.0)
    with pytest.raises(ValueError, match="dim"):
        infonce.gaussian_mi(0.5, 0)
    with pytest.raises(ValueError, match="mi"):
        infonce.rho_for_mi(-1.0)


def test_correlated_gaussians_have_the_asked_correlation():
    x, y = infonce.correlated_gaussians(20_000, 2, 0.8, torch.Generator().manual_seed(0))
    corr = ((x - x.mean(0)) * (y - y.mean(0))).mean(0) / (x.std(0) * y.std(0))
    torch.testing.assert_close(corr, torch.full((2,), 0.8), atol=0.02, rtol=0)


def test_log_ratio_matches_densities_written_out():
    """log p(y|x) - log p(y), with the Gaussian densities written out one pair at a time."""
    x, y = _pair(3, 2)
    rho, s2 = 0.7, 1 - 0.49
    scores = infonce.gaussian_log_ratio(x, y, rho)
    for i in range(3):
        for j in range(3):
            cond = sum(-0.5 * math.log(2 * math.pi * s2) - (y[j, d] - rho * x[i, d]) ** 2 / (2 * s2)
                       for d in range(2))
            marg = sum(-0.5 * math.log(2 * math.pi) - y[j, d] ** 2 / 2 for d in range(2))
            torch.testing.assert_close(scores[i, j], (cond - marg).float())
    # its expectation over positive pairs is the mutual information
    xs, ys = infonce.correlated_gaussians(50_000, 2, rho, torch.Generator().manual_seed(1))
    mean_diag = (-((ys - rho * xs) ** 2).sum(1) / (2 * s2) - math.log(s2) + (ys ** 2).sum(1) / 2).mean()
    assert abs(mean_diag.item() - infonce.gaussian_mi(rho, 2)) < 0.02


def test_infonce_bound_is_log_n_minus_loss_and_capped():
    scores = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    loss = sum(-scores[i, i] + torch.logsumexp(scores[i], 0) for i in range(6)) / 6
    torch.testing.assert_close(infonce.infonce_bound(scores), math.log(6) - loss)
    perfect = 100.0 * torch.eye(8)            # the positive always wins by far
    torch.testing.assert_close(infonce.infonce_bound(perfect), torch.tensor(math.log(8)))
    with pytest.raises(ValueError, match="square"):
        infonce.infonce_bound(torch.zeros(3, 4))


def test_optimal_critic_bound_approaches_mi_and_saturates_at_log_n():
    low = infonce.optimal_critic_bound(0.5, 256, dim=1, repeats=10)
    assert abs(low - 0.5) < 0.1                          # small MI: close to the truth
    high = infonce.optimal_critic_bound(12.0, 64, dim=4, repeats=5)
    assert high <= math.log(64) + 1e-6 and high > math.log(64) - 0.2   # saturated at log N


def test_learned_critic_improves():
    history = infonce.train_critic(1.0, dim=2, batch_size=64, steps=150)
    assert sum(history[-20:]) / 20 > sum(history[:5]) / 5 + 0.3
    assert max(history) <= math.log(64) + 1e-6


# ------------------------------------------------------------------------------ NCE

def test_nce_recovers_the_log_density_ratio():
    g = torch.Generator().manual_seed(0)
    K = 4
    data = 1.0 + 0.5 * torch.randn(4000, generator=g)
    noise = 2.0 * torch.randn(4000, K, generator=g)
    a, b, c = infonce.fit_nce_quadratic(data, noise, steps=600)
    xs = torch.linspace(-0.5, 2.5, 7)
    fitted = a * xs ** 2 + b * xs + c
    truth = infonce.gaussian_log_pdf(xs, 1.0, 0.5) - math.log(K) - infonce.gaussian_log_pdf(xs, 0.0, 2.0)
    torch.testing.assert_close(fitted, truth, atol=0.35, rtol=0.05)


# ------------------------------------------------------------------------ temperature

def test_negative_weights_equal_autograd_gradient():
    g = torch.Generator().manual_seed(0)
    neg = torch.rand(10, generator=g) * 2 - 1
    for t in (0.05, 0.5):
        s = neg.clone().requires_grad_(True)
        logits = torch.cat([torch.tensor([0.8]), s]) / t
        F.cross_entropy(logits[None], torch.tensor([0])).backward()
        torch.testing.assert_close(infonce.negative_weights(0.8, neg, t), s.grad)
    w = infonce.negative_weights(0.8, torch.tensor([-0.5, 0.0, 0.5]), 0.1)
    assert w[2] > w[1] > w[0]                              # harder negatives pushed harder
    with pytest.raises(ValueError, match="temperature"):
        infonce.negative_weights(0.8, neg, 0.0)
    with pytest.raises(ValueError, match=r"\(K,\)"):
        infonce.negative_weights(0.8, neg[None], 0.1)


def test_alignment_and_uniformity_reference_values():
    z1, z2 = _pair(5, 3)
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    expected = sum(((a[i] - b[i]) ** 2).sum() for i in range(5)) / 5
    torch.testing.assert_close(infonce.alignment(z1, z2), expected)
    assert infonce.alignment(z1, 3 * z1).item() < 1e-10
    pairs = [torch.exp(-2 * ((a[i] - a[j]) ** 2).sum()) for i in range(5) for j in range(i + 1, 5)]
    torch.testing.assert_close(infonce.uniformity(z1), torch.log(sum(pairs) / len(pairs)))
    assert abs(infonce.uniformity(torch.ones(4, 3)).item()) < 1e-6      # collapsed: 0, the maximum
    # points spread evenly on the circle are more uniform than points in a quarter of it
    angles = torch.linspace(0, 2 * math.pi, 65)[:-1]
    spread = torch.stack([angles.cos(), angles.sin()], 1)
    bunched = torch.stack([(angles / 4).cos(), (angles / 4).sin()], 1)
    assert infonce.uniformity(spread) < infonce.uniformity(bunched)
    with pytest.raises(ValueError, match="same shape"):
        infonce.alignment(z1, z2[:4])
    with pytest.raises(ValueError, match="N >= 2"):
        infonce.uniformity(z1[:1])


def test_toy_encoder_runs_and_reports():
    net = infonce.train_toy_encoder(0.2, steps=20)
    report = infonce.embedding_report(net, n=200)
    assert report["z"].shape == (200, 2)
    torch.testing.assert_close(report["z"].norm(dim=1), torch.ones(200))
    assert report["alignment"] >= 0 and report["uniformity"] <= 0
    with pytest.raises(ValueError, match="temperature"):
        infonce.train_toy_encoder(-1.0, steps=1)


# ------------------------------------------------------------------- NT-Xent references

@pytest.mark.parametrize("B,D,t", [(2, 3, 0.5), (5, 6, 0.1), (3, 4, 2.0)])
def test_slow_algorithm_1_matches_package(B, D, t):
    z1, z2 = _pair(B, D, B)
    torch.testing.assert_close(infonce.nt_xent_slow(z1, z2, t), nt_xent_loss(z1, z2, t))


def test_wrong_versions_differ():
    z1, z2 = _pair(8, 16)
    right = nt_xent_loss(z1, z2, 0.5)
    assert not torch.allclose(infonce.nt_xent_cross_view_only(z1, z2, 0.5), right, atol=1e-3)
    assert not torch.allclose(infonce.nt_xent_positive_masked(z1, z2, 0.5), right, atol=1e-3)
    # the configured batch size is right on a full batch, wrong on a short last one
    torch.testing.assert_close(infonce.nt_xent_config_batch(z1, z2, 0.5, batch_size=8), right)
    assert not torch.allclose(infonce.nt_xent_config_batch(z1[:5], z2[:5], 0.5, batch_size=8),
                              nt_xent_loss(z1[:5], z2[:5], 0.5), atol=1e-3)


def test_slow_reference_validates_inputs():
    z = torch.randn(3, 4)
    with pytest.raises(ValueError, match="temperature"):
        infonce.nt_xent_slow(z, z, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        infonce.nt_xent_slow(z, z[:2], 0.5)
