import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.losses import info_nce_loss, nce_loss, nt_xent_loss, supcon_loss


def nt_xent_reference(z1, z2, t):
    """SimCLR Algorithm 1, written as a slow loop over all 2N anchors."""
    z = torch.cat([z1, z2])
    n2 = len(z)
    B = n2 // 2

    def sim(a, b):
        return F.cosine_similarity(a, b, dim=0) / t

    total = 0.0
    for i in range(n2):
        j = (i + B) % n2
        denom = sum(torch.exp(sim(z[i], z[k])) for k in range(n2) if k != i)
        total = total - torch.log(torch.exp(sim(z[i], z[j])) / denom)
    return total / n2


def info_nce_reference(q, k, negatives, t):
    """InfoNCE as a loop: for query i, -log exp(s(q_i, k_i)/t) / sum over candidates."""
    def sim(a, b):
        return F.cosine_similarity(a, b, dim=0) / t

    total = 0.0
    for i in range(len(q)):
        candidates = list(k) if negatives is None else [k[i]] + list(negatives)
        denom = sum(torch.exp(sim(q[i], c)) for c in candidates)
        total = total - torch.log(torch.exp(sim(q[i], k[i])) / denom)
    return total / len(q)


def supcon_reference(z1, z2, labels, t):
    """Khosla et al. Eq. 2 (L_out) as a loop over anchors i and positives p."""
    z, y = F.normalize(torch.cat([z1, z2]), dim=1), torch.cat([labels, labels])
    total = 0.0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        denom = sum(torch.exp(z[i] @ z[a] / t) for a in others)
        pos = [p for p in others if y[p] == y[i]]
        total = total - sum(torch.log(torch.exp(z[i] @ z[p] / t) / denom) for p in pos) / len(pos)
    return total / len(z)


def nce_reference(pos, neg):
    total = 0.0
    for i in range(len(pos)):
        total = total - math.log(torch.sigmoid(pos[i])) - sum(math.log(1 - torch.sigmoid(g)) for g in neg[i])
    return torch.tensor(total / len(pos))


def _pair(B, D, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)


# ------------------------------------------------------------------------------ NT-Xent

@pytest.mark.parametrize("B,D,t", [(2, 3, 0.5), (5, 8, 0.1), (7, 4, 1.0)])
def test_matches_slow_reference(B, D, t):
    z1, z2 = _pair(B, D, B)
    torch.testing.assert_close(nt_xent_loss(z1, z2, t), nt_xent_reference(z1, z2, t).float())


def test_collinear_embeddings_give_log_2n_minus_1():
    """All 2B embeddings identical: every candidate looks the same, loss = log(2B - 1)."""
    B = 6
    z = torch.ones(B, 4)
    torch.testing.assert_close(nt_xent_loss(z, z, 0.5), torch.tensor(math.log(2 * B - 1)))


def test_known_wrong_versions_differ():
    z1, z2 = _pair(8, 16)
    right = nt_xent_loss(z1, z2, 0.5)
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    cross_only = F.cross_entropy(a @ b.T / 0.5, torch.arange(8))
    assert not torch.allclose(right, cross_only)


def test_half_precision_is_finite():
    """The -inf mask is exact in float16, where a -9e15 fill would overflow."""
    z1, z2 = _pair(4, 8)
    loss = nt_xent_loss(z1.half(), z2.half(), 0.1)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, nt_xent_loss(z1, z2, 0.1), atol=2e-2, rtol=1e-2)


def test_short_last_batch_and_gradients():
    z1 = torch.randn(3, 5, requires_grad=True)
    loss = nt_xent_loss(z1, torch.randn(3, 5), 0.2)
    loss.backward()
    assert torch.isfinite(z1.grad).all()


def test_bad_inputs():
    z = torch.randn(4, 8)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, -0.5)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, float("nan"))
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(z, torch.randn(5, 8))
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(z, torch.randn(4, 7))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        nt_xent_loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        nt_xent_loss(torch.randn(2, 4, 8), torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent_loss(torch.randn(1, 8), torch.randn(1, 8))


# ------------------------------------------------------------------------------ InfoNCE

@pytest.mark.parametrize("B,D,t", [(2, 3, 0.5), (6, 8, 0.07), (5, 4, 1.0)])
def test_info_nce_in_batch_matches_loop(B, D, t):
    q, k = _pair(B, D, B)
    torch.testing.assert_close(info_nce_loss(q, k, None, t), info_nce_reference(q, k, None, t).float())


@pytest.mark.parametrize("B,K,D,t", [(1, 3, 4, 0.2), (4, 10, 8, 0.07), (3, 1, 5, 1.0)])
def test_info_nce_queue_matches_loop(B, K, D, t):
    q, k = _pair(B, D, K)
    negatives = torch.randn(K, D, generator=torch.Generator().manual_seed(99))
    torch.testing.assert_close(info_nce_loss(q, k, negatives, t),
                               info_nce_reference(q, k, negatives, t).float())


def test_info_nce_analytic_cases():
    """Identical embeddings: every candidate ties, loss = log(number of candidates)."""
    z = torch.ones(5, 3)
    torch.testing.assert_close(info_nce_loss(z, z, None, 0.3), torch.tensor(math.log(5)))
    torch.testing.assert_close(info_nce_loss(z, z, torch.ones(7, 3), 0.3), torch.tensor(math.log(8)))
    # a perfect, confident match: positive cosine 1, negatives cosine -1, t small -> loss ~ 0
    q = torch.eye(2)
    assert info_nce_loss(q, q, -q, 0.01) < 1e-6


def test_info_nce_unnormalised_scores_are_dot_products():
    q, k = _pair(4, 3)
    expected = F.cross_entropy(q @ k.T / 2.0, torch.arange(4))
    torch.testing.assert_close(info_nce_loss(q, k, None, 2.0, normalize=False), expected)


def test_info_nce_bad_inputs():
    q, k = _pair(4, 8)
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(q, k, None, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        info_nce_loss(q, k[:3])
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        info_nce_loss(q[0], k[0])
    with pytest.raises(ValueError, match=r"negatives of shape \(K, D\)"):
        info_nce_loss(q, k, torch.randn(10, 7))
    with pytest.raises(ValueError, match=r"negatives of shape \(K, D\)"):
        info_nce_loss(q, k, torch.randn(10))
    with pytest.raises(ValueError, match="at least 2"):
        info_nce_loss(q[:1], k[:1], None)


# ------------------------------------------------------------------------------ NCE

def test_nce_matches_loop_and_analytic_case():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(5, generator=g), torch.randn(5, 3, generator=g)
    torch.testing.assert_close(nce_loss(pos, neg), nce_reference(pos, neg))
    # logits 0 everywhere: each of the 1 + K samples costs log 2
    torch.testing.assert_close(nce_loss(torch.zeros(4), torch.zeros(4, 3)), torch.tensor(4 * math.log(2)))
    # stable for huge logits (a naive log(sigmoid) gives inf)
    assert torch.isfinite(nce_loss(torch.tensor([-200.0]), torch.tensor([[200.0]])))


def test_nce_bad_inputs():
    with pytest.raises(ValueError, match=r"pos_logits of shape \(B,\)"):
        nce_loss(torch.zeros(2, 1), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"neg_logits of shape \(B, K\)"):
        nce_loss(torch.zeros(2), torch.zeros(3, 3))


# ------------------------------------------------------------------------------ SupCon

@pytest.mark.parametrize("labels", [[0, 1, 0, 2, 1], [3, 3, 3, 3, 3], [0, 1, 2, 3, 4]])
def test_supcon_matches_loop(labels):
    z1, z2 = _pair(5, 6)
    y = torch.tensor(labels)
    torch.testing.assert_close(supcon_loss(z1, z2, y, 0.2), supcon_reference(z1, z2, y, 0.2).float())


def test_supcon_with_distinct_labels_is_nt_xent():
    z1, z2 = _pair(6, 4)
    torch.testing.assert_close(supcon_loss(z1, z2, torch.arange(6), 0.3), nt_xent_loss(z1, z2, 0.3))


def test_supcon_bad_inputs():
    z1, z2 = _pair(4, 3)
    with pytest.raises(ValueError, match="labels of shape"):
        supcon_loss(z1, z2, torch.arange(5))
    with pytest.raises(ValueError, match="temperature"):
        supcon_loss(z1, z2, torch.arange(4), -1.0)


def test_info_nce_needs_at_least_one_negative():
    q, k = torch.randn(4, 8), torch.randn(4, 8)
    with pytest.raises(ValueError, match="at least one negative"):
        info_nce_loss(q, k, torch.randn(0, 8))


@pytest.mark.parametrize("bad", ["0.1", True])
def test_temperature_must_be_a_number(bad):
    with pytest.raises(ValueError, match="temperature must be a finite number"):
        nt_xent_loss(torch.randn(4, 8), torch.randn(4, 8), temperature=bad)
