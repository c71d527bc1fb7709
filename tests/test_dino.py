"""DINO: the loss and its centre against slow references written from the paper's Algorithm 1
and facebookresearch/dino's ``DINOLoss``; analytic cases, known-wrong versions, the ViT on
small crops, the method (centering and sharpening switches, EMA, save/load), bad inputs."""
import math

import pytest
import torch

from course_utils.methods.base import load
from course_utils.methods.dino import (DINO, DINOHead, dino_loss, entropy, kl_divergence, teacher_probs,
                                       update_center, vit_features)
from course_utils.methods.swav import multi_crop
from course_utils.models import build_encoder


def slow_softmax(row, temp):
    e = [math.exp(v / temp) for v in row]
    return [x / sum(e) for x in e]


def slow_dino_loss(student, teacher, center, ts=0.1, tt=0.04):
    """Algorithm 1, written with loops: H(t, s) = -sum p_t log p_s over pairs of different crops."""
    total, n = 0.0, 0
    for i, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v == i:
                continue
            B = t.shape[0]
            for b in range(B):
                pt = slow_softmax([t[b, k].item() - center[k].item() for k in range(t.shape[1])], tt)
                ps = slow_softmax(s[b].tolist(), ts)
                total += -sum(pt[k] * math.log(ps[k]) for k in range(len(pt))) / B
            n += 1
    return total / n


def logits(B, K, seed):
    return torch.randn(B, K, generator=torch.Generator().manual_seed(seed))


def test_dino_loss_matches_the_slow_reference_with_local_crops():
    student = [logits(4, 6, i) for i in range(4)]
    teacher = [logits(4, 6, 10 + i) for i in range(2)]
    center = logits(1, 6, 99)[0]
    torch.testing.assert_close(dino_loss(student, teacher, center).item(),
                               slow_dino_loss(student, teacher, center), rtol=1e-4, atol=1e-5)


def test_analytic_cases_of_the_teacher_and_the_loss():
    t = logits(3, 5, 0)
    # centering with the row itself leaves all zeros: uniform, entropy log K
    torch.testing.assert_close(entropy(teacher_probs(t[:1], t[0], 0.04)), torch.tensor(math.log(5)))
    # a uniform student and teacher: the loss is log K
    z = [torch.zeros(2, 5)] * 3
    torch.testing.assert_close(dino_loss(z, z[:2], torch.zeros(5)), torch.tensor(math.log(5)))
    # a low temperature sharpens towards one-hot
    assert entropy(teacher_probs(t, torch.zeros(5), 0.01)) < entropy(teacher_probs(t, torch.zeros(5), 1.0))


def test_center_update_is_an_ema_of_the_teacher_batch_mean():
    c, t = torch.zeros(4), logits(8, 4, 1)
    torch.testing.assert_close(update_center(c, t, 0.0), t.mean(0))
    torch.testing.assert_close(update_center(c + 1, t, 1.0), torch.ones(4))
    expected = [0.9 * 2.0 + 0.1 * sum(t[b, k].item() for b in range(8)) / 8 for k in range(4)]
    torch.testing.assert_close(update_center(torch.full((4,), 2.0), t, 0.9), torch.tensor(expected))


def test_known_wrong_versions_differ():
    student = [logits(4, 6, i) for i in range(3)]
    teacher = [logits(4, 6, 10 + i) for i in range(2)]
    center = logits(1, 6, 5)[0]
    right = dino_loss(student, teacher, center)
    assert not torch.isclose(right, dino_loss(student, teacher, torch.zeros(6)), atol=1e-3)   # no centre
    same_view = slow_dino_loss([teacher[0]] + student, teacher[:1], center)                  # pairs a crop with itself
    assert abs(right.item() - same_view) > 1e-3
    from_student = update_center(center, torch.cat(student[:2]))                            # centre from the student
    assert not torch.allclose(from_student, update_center(center, torch.cat(teacher)))


def test_teacher_side_gets_no_gradient():
    s = [logits(4, 6, i).requires_grad_() for i in range(2)]
    t = [x.detach().clone().requires_grad_() for x in s]
    dino_loss(s, t, torch.zeros(6)).backward()
    assert t[0].grad is None and s[0].grad is not None


def test_meters_entropy_and_kl():
    p = torch.full((2, 4), 0.25)
    torch.testing.assert_close(entropy(p), torch.tensor(math.log(4)))
    torch.testing.assert_close(kl_divergence(p, p), torch.tensor(0.0))
    assert kl_divergence(torch.eye(4)[:2], p) > 0


def test_vit_features_on_small_crops_and_unchanged_on_full_images():
    vit = build_encoder("vit_tiny", dim=16, depth=1, num_heads=2, patch_size=4).eval()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(vit_features(vit, x), vit(x))
    assert vit_features(vit, torch.rand(2, 3, 16, 16)).shape == (2, 16)
    with pytest.raises(ValueError, match="divisible"):
        vit_features(vit, torch.rand(2, 3, 14, 14))


def test_head_outputs_cosines():
    out = DINOHead(8, 16, 4, 10)(torch.randn(5, 8))
    assert out.shape == (5, 10) and out.abs().max() <= 1 + 1e-6


def make(**kw):
    torch.manual_seed(0)
    enc = build_encoder("vit_tiny", dim=16, depth=1, num_heads=2, patch_size=4)
    return DINO(enc, multi_crop(n_local=2), hidden_dim=16, bottleneck_dim=8, out_dim=12, **kw)


def test_method_step_centre_switches_ema_and_save_load(tmp_path):
    m = make()
    out = m.training_step((torch.rand(8, 3, 32, 32), None))
    out["loss"].backward()
    assert set(out) == {"loss", "teacher_entropy", "kl"} and m.center.abs().sum() > 0
    before = [p.clone() for p in m.teacher_encoder.parameters()]
    with torch.no_grad():
        for p in m.encoder.parameters():
            p.add_(1.0)
    m.after_step(0, 10)
    assert any(not torch.equal(a, b) for a, b in zip(before, m.teacher_encoder.parameters()))
    assert all(not p.requires_grad for p in m.teacher_encoder.parameters())
    off = make(centering=False)
    off.training_step((torch.rand(8, 3, 32, 32), None))
    assert off.center.abs().sum() == 0
    m.save(tmp_path / "dino.pt")
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(load(tmp_path / "dino.pt")(x), m.eval()(x))


def test_teacher_temperature_warm_up():
    m = make(teacher_temp=0.07, warmup_teacher_temp=0.04, warmup_fraction=0.5)
    assert m.teacher_temp == 0.04
    m.after_step(4, 10)
    assert m.teacher_temp == pytest.approx(0.07)


@pytest.mark.parametrize("call,words", [
    (lambda: teacher_probs(torch.zeros(2, 3), torch.zeros(4)), "center must have K = 3"),
    (lambda: teacher_probs(torch.zeros(2, 3), torch.zeros(3), 0.0), "temperature"),
    (lambda: teacher_probs([[0.0, 1.0]], torch.zeros(2)), "tensor"),
    (lambda: dino_loss([torch.zeros(2, 3)], [torch.zeros(2, 3)], torch.zeros(3)), "at least 2"),
    (lambda: dino_loss([torch.zeros(2, 3)] * 2, [torch.zeros(3, 3)], torch.zeros(3)), "one shape"),
    (lambda: update_center(torch.zeros(3), torch.zeros(2, 3), 1.5), "momentum"),
    (lambda: make(student_temp=0), "student_temp"),
])
def test_bad_inputs_raise_clear_errors(call, words):
    with pytest.raises(ValueError, match=words):
        call()
