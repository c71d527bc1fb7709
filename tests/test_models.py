import pytest
import torch

from course_utils import models

SMALL = {"small_cnn": {"width": 8}, "resnet18": {"width": 8}, "vit_tiny": {"dim": 32, "depth": 1, "num_heads": 2},
         "pixels": {}}


@pytest.mark.parametrize("name", sorted(models.ENCODERS))
def test_every_encoder_forward_shape_and_finite(name):
    enc = models.build_encoder(name, **SMALL[name])
    x = torch.rand(4, 3, 32, 32)
    f = enc.forward_features(x)
    assert f.shape == (4, enc.num_features)
    assert torch.isfinite(f).all()
    assert torch.equal(enc(x), enc.forward_features(x)) or name != "pixels"


@pytest.mark.parametrize("name", ["small_cnn", "resnet18", "vit_tiny"])
def test_encoders_learn(name):
    """One optimiser step changes the output: gradients reach every parameter."""
    enc = models.build_encoder(name, **SMALL[name])
    enc(torch.rand(4, 3, 32, 32)).pow(2).mean().backward()
    assert all(p.grad is not None for p in enc.parameters())


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


def test_projection_head():
    head = models.ProjectionHead(16, 32, 8)
    assert head(torch.rand(5, 16)).shape == (5, 8)
    assert len(models.ProjectionHead(16, 32, 8, num_layers=1).net) == 1
    with pytest.raises(ValueError, match="num_layers"):
        models.ProjectionHead(16, num_layers=0)


def test_save_and_load_encoder(tmp_path):
    enc = models.SmallCNN(width=8)
    models.save_encoder(tmp_path / "e.pt", enc, "small_cnn", {"width": 8}, method="test", seconds=1.5)
    back, info = models.load_encoder(tmp_path / "e.pt")
    assert info == {"method": "test", "seconds": 1.5} and not back.training
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(back(x), enc.eval()(x))
    with pytest.raises(FileNotFoundError, match="run the notebook"):
        models.load_encoder(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="unknown encoder"):
        models.save_encoder(tmp_path / "x.pt", enc, "vgg")
