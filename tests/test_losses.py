import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.losses import nt_xent_loss


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


@pytest.mark.parametrize("B,D,t", [(2, 3, 0.5), (5, 8, 0.1), (7, 4, 1.0)])
def test_matches_slow_reference(B, D, t):
    g = torch.Generator().manual_seed(B)
    z1, z2 = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)
    torch.testing.assert_close(nt_xent_loss(z1, z2, t), nt_xent_reference(z1, z2, t).float())


def test_collinear_embeddings_give_log_2n_minus_1():
    """All 2B embeddings identical: every candidate looks the same, loss = log(2B - 1)."""
    B = 6
    z = torch.ones(B, 4)
    torch.testing.assert_close(nt_xent_loss(z, z, 0.5), torch.tensor(math.log(2 * B - 1)))


def test_known_wrong_versions_differ():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    right = nt_xent_loss(z1, z2, 0.5)
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    cross_only = F.cross_entropy(a @ b.T / 0.5, torch.arange(8))
    assert not torch.allclose(right, cross_only)


def test_short_last_batch_and_gradients():
    z1 = torch.randn(3, 5, requires_grad=True)
    loss = nt_xent_loss(z1, torch.randn(3, 5), 0.2)
    loss.backward()
    assert torch.isfinite(z1.grad).all()


def test_bad_inputs():
    z = torch.randn(4, 8)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(z, torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        nt_xent_loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent_loss(torch.randn(1, 8), torch.randn(1, 8))
