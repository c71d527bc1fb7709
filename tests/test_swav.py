"""SwAV: Sinkhorn-Knopp and the swapped prediction against slow references written from the
paper's Algorithm 1 and facebookresearch/swav's ``distributed_sinkhorn``; analytic cases,
known-wrong versions, multi-crop, the method, bad inputs."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.methods.base import load
from course_utils.methods.swav import MultiCrop, SwAV, code_usage, multi_crop, sinkhorn, swav_loss
from course_utils.models import build_encoder


def slow_sinkhorn(scores, epsilon=0.05, iterations=3):
    """Element by element: Q[k][b] = exp(s[b][k] / eps) / total; rows to 1/K, columns to 1/B."""
    B, K = scores.shape
    Q = [[math.exp(scores[b, k].item() / epsilon) for b in range(B)] for k in range(K)]
    total = sum(sum(row) for row in Q)
    Q = [[q / total for q in row] for row in Q]
    for _ in range(iterations):
        for k in range(K):
            r = sum(Q[k])
            Q[k] = [q / r / K for q in Q[k]]
        for b in range(B):
            c = sum(Q[k][b] for k in range(K))
            for k in range(K):
                Q[k][b] = Q[k][b] / c / B
    return torch.tensor([[Q[k][b] * B for k in range(K)] for b in range(B)])


def slow_swav_loss(scores, temperature=0.1, epsilon=0.05, iterations=3, assign=(0, 1)):
    total = 0.0
    for i in assign:
        q = slow_sinkhorn(scores[i], epsilon, iterations)
        sub = 0.0
        others = [v for v in range(len(scores)) if v != i]
        for v in others:
            B, K = scores[v].shape
            for b in range(B):
                logits = [scores[v][b, k].item() / temperature for k in range(K)]
                lse = math.log(sum(math.exp(x) for x in logits))
                sub += -sum(q[b, k].item() * (logits[k] - lse) for k in range(K)) / B
        total += sub / len(others)
    return total / len(assign)


def unit_scores(B, K, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(B, 6, generator=g), dim=1) @ F.normalize(torch.randn(K, 6, generator=g), dim=1).t()


@pytest.mark.parametrize("B,K,eps,it", [(8, 4, 0.05, 3), (5, 7, 0.1, 1), (6, 3, 0.5, 10)])
def test_sinkhorn_matches_the_slow_reference(B, K, eps, it):
    s = unit_scores(B, K, B + K)
    torch.testing.assert_close(sinkhorn(s, eps, it), slow_sinkhorn(s, eps, it), rtol=1e-4, atol=1e-6)


def test_sinkhorn_of_a_uniform_matrix_is_uniform():
    torch.testing.assert_close(sinkhorn(torch.zeros(6, 4)), torch.full((6, 4), 0.25))


def test_sinkhorn_rows_and_columns_have_the_prescribed_sums():
    s = unit_scores(12, 4, 0)
    q = sinkhorn(s, 0.05, 3)
    torch.testing.assert_close(q.sum(1), torch.ones(12))                       # exact after the last step
    q = sinkhorn(s, 0.05, 500)
    torch.testing.assert_close(q.sum(0), torch.full((4,), 12 / 4), rtol=1e-3, atol=1e-3)  # equipartition


def test_equipartition_spreads_what_softmax_puts_on_one_prototype():
    s = unit_scores(16, 4, 1) * 0.1
    s[:, 0] += 0.5                                  # prototype 0 scores highest for every sample
    plain = sinkhorn(s, 0.05, 0)                    # softmax(s / eps): no equipartition
    assert plain.argmax(1).unique().numel() == 1
    assert code_usage(sinkhorn(s, 0.05, 3))["used"] > 1


def test_known_wrong_sinkhorn_on_the_wrong_axis_differs():
    s = unit_scores(8, 4, 2)
    wrong = slow_sinkhorn(s.t(), 0.05, 3).t()       # prototypes and samples swapped
    assert not torch.allclose(sinkhorn(s), wrong, atol=1e-3)


def test_swav_loss_matches_the_slow_reference_over_multi_crop():
    scores = [unit_scores(6, 5, i) for i in range(4)]
    torch.testing.assert_close(swav_loss(scores).item(), slow_swav_loss(scores), rtol=1e-4, atol=1e-5)


def test_known_wrong_swav_losses_differ():
    scores = [unit_scores(6, 5, i) for i in range(3)]
    right = swav_loss(scores)
    q = sinkhorn(scores[0])
    not_swapped = -(q * F.log_softmax(scores[0] / 0.1, 1)).sum(1).mean()   # predicts its own code
    assert not torch.isclose(right, not_swapped, atol=1e-3)
    assert not torch.isclose(right, swav_loss(scores, assign=(0,)), atol=1e-4)


def test_codes_carry_no_gradient():
    scores = [unit_scores(6, 5, i).requires_grad_() for i in range(2)]
    swav_loss(scores).backward()
    q = sinkhorn(scores[1])
    expected = (F.softmax(scores[0] / 0.1, 1) - q) / 0.1 / 6     # d/ds of the cross-entropy only
    torch.testing.assert_close(scores[0].grad, expected / 2, rtol=1e-4, atol=1e-6)


def test_multi_crop_sizes_and_count():
    crops = multi_crop(32, n_local=3, local_size=16)(torch.rand(4, 3, 32, 32))
    assert [c.shape[-1] for c in crops] == [32, 32, 16, 16, 16]
    assert len(multi_crop(n_local=0)) == 2


def test_swav_learns_a_step_saves_and_loads(tmp_path):
    torch.manual_seed(0)
    enc = build_encoder("small_cnn", width=4)
    m = SwAV(enc, multi_crop(n_local=2), proj_hidden_dim=16, proj_dim=8, num_prototypes=6, freeze_prototypes_steps=1)
    out = m.training_step((torch.rand(8, 3, 32, 32), None))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and m.prototypes.weight.grad is None     # frozen at step 0
    assert 1 <= out["prototypes_used"] <= 6
    torch.testing.assert_close(m.prototypes.weight.norm(dim=1), torch.ones(6))
    m.after_step(0, 10)
    m.save(tmp_path / "swav.pt")
    again = load(tmp_path / "swav.pt")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(again(x), m.eval()(x))


@pytest.mark.parametrize("call,words", [
    (lambda: sinkhorn(torch.zeros(4, 3), epsilon=0), "epsilon"),
    (lambda: sinkhorn(torch.zeros(4), 0.05), "(B, K)"),
    (lambda: sinkhorn([[0.0, 1.0]]), "tensor"),
    (lambda: sinkhorn(torch.tensor([[float("nan"), 0.0]])), "finite"),
    (lambda: swav_loss([torch.zeros(4, 3)]), "at least 2"),
    (lambda: swav_loss([torch.zeros(4, 3), torch.zeros(5, 3)]), "one shape"),
    (lambda: swav_loss([torch.zeros(4, 3)] * 2, temperature=-1), "temperature"),
    (lambda: swav_loss([torch.zeros(4, 3)] * 2, assign=(0, 5)), "assign"),
    (lambda: MultiCrop(lambda x, generator=None: x, None, 2, 2), "local_transform"),
    (lambda: SwAV(build_encoder("small_cnn", width=4), num_prototypes=1), "num_prototypes"),
])
def test_bad_inputs_raise_clear_errors(call, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()
