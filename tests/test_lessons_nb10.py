"""Notebook 10's helpers: the recomputed attention is the one the block uses, attention maps
sum to 1 per head, the attention-on-shape score on analytic cases, and the figures draw."""
import matplotlib
import pytest
import torch

from course_utils import data
from course_utils.lessons import nb10
from course_utils.methods.swav import sinkhorn
from course_utils.models import build_encoder

matplotlib.use("Agg")


def vit():
    torch.manual_seed(0)
    return build_encoder("vit_tiny", dim=16, depth=2, num_heads=2, patch_size=4).eval()


def test_recomputed_attention_rebuilds_the_blocks_output():
    v, x = vit(), torch.rand(3, 3, 32, 32)
    tokens = nb10.block_input(v, x)
    block = v.blocks[-1]
    att = nb10.block_attention(block, tokens)
    torch.testing.assert_close(nb10.block_from_attention(block, tokens, att), block(tokens))
    shuffled = att[..., torch.randperm(att.shape[-1])]                     # wrong weights: another output
    assert not torch.allclose(nb10.block_from_attention(block, tokens, shuffled), block(tokens), atol=1e-4)
    torch.testing.assert_close(att.sum(-1), torch.ones(3, 2, 64))


def test_block_input_is_what_the_last_block_sees():
    v, x = vit(), torch.rand(2, 3, 32, 32)
    tokens = v.embed(x)
    for block in v.blocks[:-1]:
        tokens = block(tokens)
    torch.testing.assert_close(nb10.block_input(v, x), tokens)


@pytest.mark.parametrize("query", ["mean", "all"])
def test_last_block_attention_rows_sum_to_one(query):
    att = nb10.last_block_attention(vit(), torch.rand(2, 3, 32, 32), query=query)
    assert att.shape == (2, 2, 64)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 2))


def test_attention_on_shape_analytic_cases():
    mask = torch.zeros(1, 32, 32)
    mask[0, :16, :16] = 1.0                                               # the top-left quarter
    on = torch.zeros(1, 1, 64)
    on[0, 0, 0] = 1.0                                                     # all attention on patch (0, 0)
    out = nb10.attention_on_shape(on, mask)
    assert out["area"] == pytest.approx(0.25) and out["lift"] == pytest.approx(4.0)
    uniform = torch.full((1, 1, 64), 1 / 64)
    assert nb10.attention_on_shape(uniform, mask)["lift"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="patch"):
        nb10.attention_on_shape(uniform, mask, patch_size=8)


def test_figures_draw_on_real_shapes():
    v = vit()
    d = data.load_images("shapes", "test", n=3)
    x, mask = d.images.float() / 255, data.shape_factors("test", 3)["mask"]
    assert nb10.plot_attention(x, nb10.last_block_attention(v, x), "attention", mask=mask)
    s = torch.randn(6, 4)
    assert nb10.plot_assignments({"softmax": sinkhorn(s, 0.5, 0), "Sinkhorn": sinkhorn(s, 0.5, 3)})
    h = {"logs": {"teacher_entropy": [torch.tensor(1.0)] * 12, "kl": [0.5] * 12}}
    assert nb10.plot_meters({"run": h}, K=8)


def test_non_vit_is_refused():
    with pytest.raises(ValueError, match="TinyViT"):
        nb10.last_block_attention(build_encoder("small_cnn", width=4), torch.rand(1, 3, 32, 32))
