"""One MLP head class for every method: its layer layout, the papers' named shapes, and the
projected-encoder view used to show why evaluation uses the features before the head."""
import pytest
import torch
import torch.nn as nn

from course_utils import models
from course_utils.methods import heads


def _kinds(head):
    return [type(layer).__name__ for layer in head.net]


def test_mlp_head_layouts():
    assert _kinds(heads.MLPHead(8, 16, 4, num_layers=1)) == ["Linear"]
    head = heads.MLPHead(8, 16, 4, num_layers=2)
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head.net[0].bias is None and head.net[-1].bias is not None   # BatchNorm's shift replaces the bias
    assert _kinds(heads.MLPHead(8, 16, 4, num_layers=2, batch_norm=False)) == ["Linear", "ReLU", "Linear"]
    simsiam = heads.SimSiamProjectionHead(8, 16, 4)
    assert _kinds(simsiam) == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]
    assert not simsiam.net[-1].affine and simsiam.net[-2].bias is None
    assert heads.BYOLProjectionHead(8).net[0].out_features == 4096 and heads.BYOLProjectionHead(8).out_dim == 256
    assert _kinds(heads.moco_projection_head(8, mlp=False)) == ["Linear"]
    x = torch.rand(5, 8)
    assert head(x).shape == (5, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_layers=0), "num_layers"), (dict(hidden_dim=0), "hidden_dim"), (dict(out_dim=2.5), "out_dim")])
def test_mlp_head_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        heads.MLPHead(8, **kwargs)


def test_projected_encoder_is_head_after_encoder():
    enc, head = models.SmallCNN(width=4).eval(), heads.ProjectionHead(32, 16, 8).eval()
    projected = heads.ProjectedEncoder(enc, head)
    x = torch.rand(3, 3, 16, 16)
    assert projected.num_features == 8
    torch.testing.assert_close(projected.forward_features(x), head(enc.forward_features(x)))
    assert heads.ProjectedEncoder(enc, nn.Identity()).num_features == 32
