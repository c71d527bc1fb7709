import pytest
import torch

from course_utils import models

SMALL = {"small_cnn": {"width": 8}, "resnet18": {"width": 8}, "vit_tiny": {"dim": 32, "depth": 1, "num_heads": 2},
         "pixels": {}}
IMAGE_ENCODERS = sorted(SMALL)


def test_every_encoder_is_covered():
    assert set(models.ENCODERS) == set(SMALL) | {"char_transformer"}   # text: tests/test_language.py


@pytest.mark.parametrize("name", IMAGE_ENCODERS)
def test_every_encoder_forward_shape_and_finite(name):
    enc = models.build_encoder(name, **SMALL[name])
    x = torch.rand(4, 3, 32, 32)
    f = enc.forward_features(x)
    assert f.shape == (4, enc.num_features)
    assert torch.isfinite(f).all()
    assert torch.equal(enc(x), f)                       # calling an encoder gives its features
    assert enc.spec == {"name": name, "kwargs": SMALL[name]}   # the recipe a saved method rebuilds it from
    assert not torch.allclose(f[0], f[1])               # different images, different features


@pytest.mark.parametrize("name", ["small_cnn", "resnet18", "vit_tiny"])
def test_encoders_learn(name):
    """Gradients reach every parameter, and one optimiser step changes the output."""
    torch.manual_seed(0)
    enc = models.build_encoder(name, **SMALL[name])
    x = torch.rand(4, 3, 32, 32)
    before = enc(x).detach()
    enc(x).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    torch.optim.SGD(enc.parameters(), lr=0.1).step()
    assert not torch.allclose(enc(x), before)


def test_full_size_widths():
    assert models.ResNet18CIFAR().num_features == 512
    assert models.SmallCNN().num_features == 256
    assert models.TinyViT(dim=192, depth=1, num_heads=3).num_features == 192


def test_resnet_keeps_resolution_in_stem():
    enc = models.ResNet18CIFAR(width=8)
    assert enc.stem(torch.rand(1, 3, 32, 32)).shape[-1] == 32  # no stride, no max-pool


def test_bad_inputs_are_named():
    enc = models.SmallCNN(width=8)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        enc(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="float"):
        enc(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="divisible"):
        models.TinyViT(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match="32x32"):
        models.TinyViT(dim=32, depth=1, num_heads=2)(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="unknown encoder"):
        models.build_encoder("vgg")


def test_grayscale_input():
    enc = models.SmallCNN(in_channels=1, width=8)
    assert enc(torch.rand(2, 1, 32, 32)).shape == (2, 64)


def test_vit_token_path_on_a_subset():
    vit = models.TinyViT(dim=32, depth=1, num_heads=2)
    tokens = vit.embed(torch.rand(2, 3, 32, 32))
    assert tokens.shape == (2, 64, 32)
    assert vit.forward_tokens(tokens[:, :16]).shape == (2, 16, 32)


def test_eval_mode_restores_each_mode_even_on_error():
    a, b = models.SmallCNN(width=4).train(), models.SmallCNN(width=4).eval()
    with models.eval_mode(a, b):
        assert not a.training and not b.training
    assert a.training and not b.training
    with pytest.raises(RuntimeError), models.eval_mode(a):
        raise RuntimeError("inside")
    assert a.training


def test_one_transformer_block_serves_vit_and_text():
    block = models.TransformerBlock(16, 2)
    x = torch.randn(2, 5, 16)
    assert block(x).shape == (2, 5, 16)
    causal = block(x, causal=True)
    x2 = x.clone()
    x2[:, -1] += torch.randn(16)           # a change to the last token (not a constant: LayerNorm removes those)
    torch.testing.assert_close(block(x2, causal=True)[:, :-1], causal[:, :-1])   # cannot reach earlier ones
    assert not torch.allclose(block(x2)[:, :-1], block(x)[:, :-1])               # without the mask it does
    vit = models.TinyViT(dim=16, depth=2, num_heads=2)
    assert all(isinstance(b, models.TransformerBlock) for b in vit.blocks)
