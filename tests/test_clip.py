"""CLIP: the symmetric loss against the paper's Fig. 3 written as loops, analytic cases,
known-wrong versions, the clamped temperature, zero-shot and retrieval helpers."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_utils import models
from course_utils.captions import CaptionTokenizer, caption_data
from course_utils.methods.base import load
from course_utils.methods.clip import (
    CLIP,
    clip_logits,
    clip_loss,
    embed_images,
    embed_texts,
    retrieval_recall,
    zero_shot_predict,
    zero_shot_weights,
)


def slow_clip_loss(I, T, scale):
    """Fig. 3 of arXiv:2103.00020 one entry at a time: logits[i][j] = scale * cos(I_i, T_j);
    loss_i = CE over rows, loss_t = CE over columns, both with label i; their mean."""
    B = len(I)
    In = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in I.tolist()]
    Tn = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in T.tolist()]
    logits = [[scale * sum(a * b for a, b in zip(In[i], Tn[j])) for j in range(B)] for i in range(B)]
    loss_i = sum(-logits[i][i] + math.log(sum(math.exp(logits[i][j]) for j in range(B))) for i in range(B)) / B
    loss_t = sum(-logits[j][j] + math.log(sum(math.exp(logits[i][j]) for i in range(B))) for j in range(B)) / B
    return (loss_i + loss_t) / 2


def _pair(B=6, E=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, E, generator=g, dtype=torch.float64), torch.randn(B, E, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("B, scale", [(1, 1.0), (2, 3.0), (6, 1 / 0.07), (9, 100.0)])
def test_loss_matches_the_slow_reference(B, scale):
    I, T = _pair(B)
    assert clip_loss(I, T, scale).item() == pytest.approx(slow_clip_loss(I, T, scale), rel=1e-5, abs=1e-6)


def test_analytic_cases():
    assert clip_loss(torch.ones(5, 3), torch.ones(5, 3), 10.0).item() == pytest.approx(math.log(5), rel=1e-5)
    eye, s = torch.eye(4), 7.0                      # matched, orthogonal pairs: diag s, rest 0
    expected = -math.log(math.exp(s) / (math.exp(s) + 3))
    assert clip_loss(eye, eye, s).item() == pytest.approx(expected, rel=1e-4)
    assert clip_loss(torch.randn(1, 4), torch.randn(1, 4), 5.0).item() == pytest.approx(0.0, abs=1e-6)


def test_known_wrong_versions_differ():
    I, T = _pair(7, seed=3)
    T = T + 2 * I[:, :1]                             # not symmetric: rows and columns differ
    right = clip_loss(I, T, 5.0)
    logits = clip_logits(I, T, 5.0)
    targets = torch.arange(7)
    one_way = F.cross_entropy(logits, targets)
    unnormalised = (F.cross_entropy(5 * I.float() @ T.float().t(), targets) +
                    F.cross_entropy(5 * T.float() @ I.float().t(), targets)) / 2
    assert not torch.isclose(right, one_way)
    assert not torch.isclose(right, unnormalised)
    assert clip_loss(T, I, 5.0).item() == pytest.approx(right.item(), rel=1e-5)   # swapping is the same loss


def test_gradient_reaches_the_scale():
    t = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    I, T = _pair(4)
    clip_loss(I, T, t.exp()).backward()
    assert t.grad is not None and t.grad.abs() > 0


@pytest.mark.parametrize("I, T, scale, match", [
    (torch.randn(4, 3), torch.randn(5, 3), 1.0, "same order"),
    (torch.randn(4), torch.randn(4), 1.0, "shape"),
    (torch.randn(4, 3), torch.randn(4, 3), 0.0, "scale"),
    (torch.randn(4, 3), torch.randn(4, 3), float("inf"), "scale"),
    ([[1.0]], torch.randn(1, 1), 1.0, "tensor"),
])
def test_bad_inputs(I, T, scale, match):
    with pytest.raises(ValueError, match=match):
        clip_loss(I, T, scale)


def _model(**kw):
    return CLIP(models.build_encoder("small_cnn", width=4), text_dim=16, text_depth=1, text_heads=2,
                embed_dim=8, **kw)


def test_method_step_clamp_and_bad_arguments():
    (images, tokens), _ = caption_data("train", 16)
    model = _model()
    out = model.training_step((images.float() / 255, tokens))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    assert out["scale"].item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)                # exp(10) >> 100
    model.after_step(0, 1)
    assert model.scale.item() == pytest.approx(100.0, rel=1e-5)
    with pytest.raises(ValueError, match="init_temperature"):
        _model(init_temperature=0.001)
    with pytest.raises(ValueError, match="eot"):
        model.encode_text(torch.ones(2, 5, dtype=torch.long))
    assert not _model(learn_temperature=False).logit_scale.requires_grad


def test_text_feature_is_read_at_eot_and_ignores_the_padding():
    model, tok = _model().eval(), CaptionTokenizer()
    ids = tok.encode_batch(["a red star"])
    other = ids.clone()
    other[0, 6:] = 5                                  # change what follows <eot>: causal, so no effect
    torch.testing.assert_close(model.encode_text(ids), model.encode_text(other))


def test_zero_shot_and_retrieval_helpers(tmp_path):
    model, tok = _model(), CaptionTokenizer()
    (images, tokens), _ = caption_data("test", 24)
    img, txt = embed_images(model, images), embed_texts(model, tokens)
    assert img.shape == txt.shape == (24, 8)
    torch.testing.assert_close(img.norm(dim=1), torch.ones(24))
    w = zero_shot_weights(model, tok, ["star", "disk"], ["a photo of a {}", "a {}"])
    assert w.shape == (2, 8)
    one = zero_shot_weights(model, tok, ["star"], ["a photo of a {}"])
    torch.testing.assert_close(one[0], embed_texts(model, tok.encode_batch(["a photo of a star"]))[0])
    assert zero_shot_predict(torch.stack([w[1], w[0]]), w).tolist() == [1, 0]
    assert retrieval_recall(img, img, k=1) == 1.0
    assert retrieval_recall(img, img.flip(0), k=1) < 1.0
    with pytest.raises(ValueError, match="templates"):
        zero_shot_weights(model, tok, ["star"], "a photo of a {}")
    model.save(tmp_path / "clip.pt")
    again = load(tmp_path / "clip.pt")
    torch.testing.assert_close(embed_images(again, images), embed_images(model.eval(), images))
