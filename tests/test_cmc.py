"""CMC: the Lab conversion at known colours, the two-view loss against Eq. 3 written as loops,
the views each encoder reads, saving and rebuilding."""
import math

import pytest
import torch

from course_utils import models
from course_utils.methods import cmc
from course_utils.methods.base import load
from course_utils.methods.cmc import CMC, JointEncoder, LabView, cmc_loss, lab_views, rgb_to_lab


@pytest.mark.parametrize("rgb, lab", [((1, 1, 1), (100, 0, 0)), ((0, 0, 0), (0, 0, 0)),
                                      ((1, 0, 0), (53.24, 80.09, 67.20)), ((0, 1, 0), (87.73, -86.18, 83.18)),
                                      ((0, 0, 1), (32.30, 79.19, -107.86)), ((0.5, 0.5, 0.5), (53.39, 0, 0))])
def test_rgb_to_lab_at_published_values(rgb, lab):
    got = rgb_to_lab(torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1)).flatten().tolist()
    assert got == pytest.approx(lab, abs=0.02)


def test_lab_views_shapes_ranges_and_grey_has_no_colour():
    x = torch.rand(4, 3, 8, 8)
    L, ab = lab_views(x)
    assert L.shape == (4, 1, 8, 8) and ab.shape == (4, 2, 8, 8)
    assert 0 <= L.min() and L.max() <= 1 and 0 <= ab.min() and ab.max() <= 1
    grey = torch.rand(2, 1, 8, 8).expand(-1, 3, -1, -1)
    torch.testing.assert_close(lab_views(grey)[1], torch.full((2, 2, 8, 8), 0.5), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="float RGB"):
        rgb_to_lab(torch.zeros(2, 3, 4, 4, dtype=torch.uint8))


def slow_cmc_loss(z1, z2, t):
    """Eq. 3 of arXiv:1906.05849 with the batch as negatives: anchor each view in turn."""
    def norm(r):
        return [v / math.sqrt(sum(u * u for u in r)) for v in r]
    a, b = [norm(r) for r in z1.tolist()], [norm(r) for r in z2.tolist()]
    B = len(a)

    def one_way(p, q):
        total = 0.0
        for i in range(B):
            s = [sum(x * y for x, y in zip(p[i], q[j])) / t for j in range(B)]
            total += -s[i] + math.log(sum(math.exp(v) for v in s))
        return total / B
    return one_way(a, b) + one_way(b, a)


@pytest.mark.parametrize("B, t", [(2, 0.5), (5, 0.07), (8, 1.0)])
def test_loss_matches_the_slow_reference(B, t):
    g = torch.Generator().manual_seed(B)
    z1, z2 = torch.randn(B, 4, generator=g, dtype=torch.float64), torch.randn(B, 4, generator=g, dtype=torch.float64)
    assert cmc_loss(z1, z2, t).item() == pytest.approx(slow_cmc_loss(z1, z2, t), rel=1e-5)
    assert cmc_loss(torch.ones(B, 3), torch.ones(B, 3), t).item() == pytest.approx(2 * math.log(B), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        cmc_loss(z1, z2, 0.0)


def test_each_encoder_sees_only_its_view():
    method = CMC(models.build_encoder("small_cnn", in_channels=1, width=4), proj_dim=8, proj_hidden_dim=16).eval()
    x = torch.rand(3, 3, 16, 16)
    L, ab = lab_views(x)
    torch.testing.assert_close(method.encoder(x), method.encoder.backbone(L))
    torch.testing.assert_close(method.ab_encoder(x), method.ab_encoder.backbone(ab))
    assert method.encoder.num_features == method.ab_encoder.num_features == 32
    assert JointEncoder(method)(x).shape == (3, 64)
    loss = method.training_step((torch.rand(8, 3, 32, 32), None))
    loss.backward()
    assert method.encoder.backbone.features[0][0].weight.grad is not None
    assert method.ab_encoder.backbone.features[0][0].weight.grad is not None


def test_bad_encoders_are_refused():
    with pytest.raises(ValueError, match="in_channels=1"):
        CMC(models.build_encoder("small_cnn", width=4))          # 3 channels: not the L view
    with pytest.raises(ValueError, match="build_encoder"):
        CMC(models.SmallCNN(in_channels=1, width=4))             # no recipe for the ab encoder
    with pytest.raises(ValueError, match="view"):
        LabView(models.build_encoder("small_cnn", in_channels=1, width=4), "rgb")


def test_save_and_load_rebuild_both_views(tmp_path):
    method = CMC(models.build_encoder("small_cnn", in_channels=1, width=4), transform=cmc.cmc_augment(16))
    method.save(tmp_path / "cmc.pt")
    again = load(tmp_path / "cmc.pt")
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(again.encoder(x), method.eval().encoder(x))
    torch.testing.assert_close(again.ab_encoder(x), method.ab_encoder(x))
