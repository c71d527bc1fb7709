import math

import pytest
import torch

from course_utils import augment, models
from course_utils.losses import nt_xent_loss
from course_utils.lessons import nb03
from course_utils.methods import simclr
from course_utils.methods.simclr import ProjectedEncoder, SimCLR
from course_utils.train import train


def _method(**kw):
    torch.manual_seed(0)
    return SimCLR(models.SmallCNN(width=4), transform=augment.simclr_augment(16), proj_hidden_dim=16,
                  proj_dim=8, **kw)


def test_training_step_is_nt_xent_of_the_two_views():
    m = _method(temperature=0.3)
    x = torch.rand(6, 3, 16, 16)
    torch.manual_seed(1)
    loss = m.training_step((x, None))
    torch.manual_seed(1)                          # the same two views again
    x1, x2 = m.views(x)
    z = m.project(torch.cat([x1, x2]))
    torch.testing.assert_close(loss, nt_xent_loss(z[:6], z[6:], 0.3))
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("layers,width", [(0, 32), (1, 8), (2, 8)])
def test_head_variants_and_projected_encoder(layers, width):
    m = _method(head_layers=layers)
    x = torch.rand(4, 3, 16, 16)
    assert m.project(x).shape == (4, width)
    assert m(x).shape == (4, 32)                  # forward is the representation h, before the head
    proj = ProjectedEncoder(m.encoder, m.projection_head)
    assert proj.num_features == width
    m.eval()
    torch.testing.assert_close(proj.forward_features(x), m.project(x))


def test_short_last_batch_trains():
    m = _method()
    data = (torch.rand(10, 3, 16, 16), torch.zeros(10))
    hist = train(m, data, epochs=1, batch_size=4, lr=1e-3, device="cpu", progress=False, drop_last=False)
    assert len(hist["step_loss"]) == 3 and all(math.isfinite(v) for v in hist["step_loss"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        _method(temperature=0.0)
    with pytest.raises(ValueError, match="head_layers"):
        _method(head_layers=3)
    with pytest.raises(ValueError, match="at least 2"):
        _method().training_step((torch.rand(1, 3, 16, 16), None))


def test_random_rot90_rotates_each_image_by_a_multiple_of_90():
    x = torch.rand(64, 3, 8, 8)
    out = augment.random_rot90(x, torch.Generator().manual_seed(0))
    seen = set()
    for i in range(64):
        matches = [r for r in range(4) if torch.equal(out[i], torch.rot90(x[i], r, dims=(1, 2)))]
        assert matches
        seen.add(matches[0])
    assert seen == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="square"):
        augment.random_rot90(torch.rand(2, 3, 8, 6))


def test_random_hue_keeps_gray_and_brightness_range():
    gray = torch.full((4, 3, 5, 5), 0.4)
    torch.testing.assert_close(augment.random_hue(gray), gray)      # a gray image has no hue
    x = torch.rand(8, 3, 5, 5)
    out = augment.random_hue(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x)
    torch.testing.assert_close(augment.random_hue(x, 0.0), x)
    with pytest.raises(ValueError, match="hue"):
        augment.random_hue(x, 0.7)


def test_shapes_augment_preset():
    t = simclr.shapes_augment(16, crop_scale=(0.5, 1.0))
    out = t(torch.rand(5, 3, 32, 32))
    assert out.shape == (5, 3, 16, 16)
    assert t.base.crop_scale == (0.5, 1.0) and "rot90=True" in repr(t)


def test_hue_bins_on_pure_colours():
    def solid(r, g, b):
        return torch.tensor([r, g, b], dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    colours = torch.cat([solid(1, 0, 0), solid(1, 1, 0), solid(0, 1, 0), solid(0, 1, 1), solid(0, 0, 1),
                         solid(1, 0, 1)])
    # red 0, yellow 1/6, green 1/3, cyan 1/2, blue 2/3, magenta 5/6 turns
    torch.testing.assert_close(nb03.hue_turns(colours), torch.arange(6) / 6)
    torch.testing.assert_close(nb03.hue_turns((colours * 255).to(torch.uint8)), torch.arange(6) / 6)
    assert nb03.hue_bins(colours, 4).tolist() == [0, 0, 1, 2, 2, 3]
    with pytest.raises(ValueError, match="RGB"):
        nb03.hue_bins(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="bins"):
        nb03.hue_bins(colours, 1)


def test_colour_probe_sees_colour_in_raw_pixels():
    g = torch.Generator().manual_seed(0)
    hue = torch.rand(400, generator=g)
    k = (torch.arange(3).float().view(1, 3) / 3 + hue.view(-1, 1)) % 1.0
    rgb = (torch.cos(2 * math.pi * k) + 1) / 2
    images = (rgb.view(-1, 3, 1, 1).expand(-1, 3, 8, 8) * 255).to(torch.uint8)
    labels = torch.zeros(400, dtype=torch.long)
    acc = nb03.colour_probe(models.PixelEncoder(image_size=8), (images[:300], labels[:300]),
                              (images[300:], labels[300:]), bins=4)
    assert acc > 0.8


def test_preset_augment_names_the_two_presets():
    import pytest

    from course_utils.methods.simclr import ShapesTransform, preset_augment

    assert isinstance(preset_augment("shapes", 32, 1.0, (0.5, 1.0)), ShapesTransform)
    assert not isinstance(preset_augment("simclr", 32, 0.5), ShapesTransform)
    with pytest.raises(ValueError, match="'simclr' or 'shapes'"):
        preset_augment("cifar", 32)
