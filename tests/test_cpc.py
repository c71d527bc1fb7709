"""CPC: patches, the InfoNCE of Eq. 4 against a loop over every context and candidate,
analytic cases, known-wrong versions and the method on images."""
import math

import pytest
import torch
import torch.nn as nn

from course_utils import models
from course_utils.methods.cpc import CPC, cpc_loss, patch_grid


def slow_cpc_loss(z, c, predictors):
    """Eq. 4 of arXiv:1807.03748 one context at a time: -log f(z_{t+k}, c_t) / sum_j f(z_j, c_t),
    f = exp(z^T W_k c_t), the z_j every latent k steps ahead in the batch; mean over contexts, then k."""
    B, T, _ = z.shape
    per_k = []
    for k, W in enumerate(predictors, start=1):
        candidates = [(b, t + k) for b in range(B) for t in range(T - k)]
        total = 0.0
        for b in range(B):
            for t in range(T - k):
                wc = W(c[b, t]).tolist()
                scores = [sum(x * y for x, y in zip(z[bj, tj].tolist(), wc)) for bj, tj in candidates]
                total += -scores[candidates.index((b, t + k))] + math.log(sum(math.exp(s) for s in scores))
        per_k.append(total / len(candidates))
    return sum(per_k) / len(per_k)


def _inputs(B=3, T=5, D=4, Dc=3, K=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    z, c = torch.randn(B, T, D, generator=g, dtype=torch.float64), torch.randn(B, T, Dc, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    return z, c, nn.ModuleList(nn.Linear(Dc, D, bias=False).double() for _ in range(K))


@pytest.mark.parametrize("B, T, K", [(1, 3, 1), (3, 5, 2), (2, 6, 4)])
def test_loss_matches_the_slow_reference(B, T, K):
    z, c, W = _inputs(B, T, K=K, seed=B + T)
    loss, acc = cpc_loss(z, c, W)
    assert loss.item() == pytest.approx(slow_cpc_loss(z, c, W), rel=1e-6)
    assert len(acc) == K and all(0 <= a <= 1 for a in acc)


def test_analytic_cases():
    z, c, W = _inputs()
    for w in W:
        nn.init.zeros_(w.weight)                      # every score 0: log of the number of candidates
    loss, _ = cpc_loss(z, c, W)
    n1, n2 = 3 * 4, 3 * 3
    assert loss.item() == pytest.approx((math.log(n1) + math.log(n2)) / 2, rel=1e-6)
    # a perfect predictor: c_t = z_{t+1} one-hot, W = 10 I: the true latent wins everywhere
    z = torch.eye(6).unsqueeze(0)                      # (1, 6, 6), latents one-hot
    c = torch.roll(z, -1, dims=1)                      # c_t = z_{t+1}
    W = [nn.Linear(6, 6, bias=False)]
    with torch.no_grad():
        W[0].weight.copy_(10 * torch.eye(6))
    loss, acc = cpc_loss(z, c, W)
    assert acc[0].item() == 1.0 and loss.item() < 1e-3


def test_known_wrong_versions_differ():
    z, c, W = _inputs(seed=5)
    right = cpc_loss(z, c, W)[0]
    # one W shared by every k instead of W_k
    shared = cpc_loss(z, c, [W[0], W[0]])[0]
    # the target at step t instead of t + k
    logits = W[0](c).reshape(-1, 4) @ z.reshape(-1, 4).t()
    same_step = nn.functional.cross_entropy(logits, torch.arange(len(logits)))
    assert not torch.isclose(right, shared)
    assert not torch.isclose(right.double(), same_step.double())


def test_bad_inputs():
    z, c, W = _inputs(T=3)
    with pytest.raises(ValueError, match="K < T"):
        cpc_loss(z, c, list(W) * 2)
    with pytest.raises(ValueError, match="share B and T"):
        cpc_loss(z, c[:, :2], W)
    with pytest.raises(ValueError, match="tensor"):
        cpc_loss(z.tolist(), c, W)
    with pytest.raises(ValueError, match="pixels a side"):
        patch_grid(torch.rand(1, 3, 4, 4), patch=8)
    with pytest.raises(ValueError, match="K"):
        CPC(models.build_encoder("small_cnn", width=4), K=0)


def test_patch_grid_takes_the_right_pixels():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    p = patch_grid(x, patch=8, stride=4)
    assert p.shape == (2, 3, 3, 3, 8, 8)
    torch.testing.assert_close(p[1, 2, 1], x[1, :, 8:16, 4:12])


def test_method_step_and_features():
    method = CPC(models.build_encoder("small_cnn", width=4), context_dim=8, K=3)
    x = torch.rand(4, 3, 32, 32)
    out = method.training_step((x, None))
    assert set(out) == {"loss", "acc_1", "acc_2", "acc_3"}
    out["loss"].backward()
    assert method.predictors[2].weight.grad.abs().sum() > 0
    z, c = method.sequences(x)
    assert z.shape == (4 * 7, 7, 32) and c.shape == (4 * 7, 7, 8)
    assert method.encoder.forward_features(x).shape == (4, 32)
    with pytest.raises(ValueError, match="rows of patches"):
        CPC(models.build_encoder("small_cnn", width=4), stride=8, K=4).training_step((x, None))
