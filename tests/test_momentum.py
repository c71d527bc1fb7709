"""The momentum (EMA) networks of methods.momentum, used by MoCo and BYOL alike: the copy,
the update against a slow loop and at its two ends, buffers averaged or left alone, the
cosine schedule, and bad inputs."""
import copy
import math

import pytest
import torch
import torch.nn as nn

from course_utils import models
from course_utils.methods.moco import MoCo, momentum_update
from course_utils.methods.momentum import cosine_momentum, momentum_copy, update_momentum
from course_utils.models import SmallCNN


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


# ------------------------------------------------------------------ the momentum schedule

def test_cosine_momentum_ends_and_middle():
    assert cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(1 - 0.01 / 2)


def test_cosine_momentum_matches_formula_and_rises():
    K, base = 37, 0.9
    taus = [cosine_momentum(k, K, base) for k in range(K + 1)]
    for k, tau in enumerate(taus):
        assert tau == pytest.approx(1 - (1 - base) * (math.cos(math.pi * k / K) + 1) / 2)
    assert all(a <= b for a, b in zip(taus, taus[1:]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(step=0, total_steps=10, base=1.5), "base"),
    (dict(step=0, total_steps=10, base=-0.1), "base"),
    (dict(step=11, total_steps=10), "step"),
    (dict(step=-1, total_steps=10), "step"),
    (dict(step=0, total_steps=0), "total_steps"),
])
def test_cosine_momentum_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cosine_momentum(**kwargs)


# ----------------------------------------------------------------------- the EMA target

def _net(seed=0, width=4):
    torch.manual_seed(seed)
    net = nn.Sequential(SmallCNN(width=width), nn.Linear(8 * width, 3), nn.BatchNorm1d(3))
    net.train()
    with torch.no_grad():  # give the BatchNorm buffers non-trivial values
        net(torch.rand(4, 3, 16, 16))
    return net


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_momentum_copy_is_a_frozen_deep_copy():
    online = SmallCNN(width=4)
    target = momentum_copy(online)
    assert target.num_features == online.num_features == 32  # constructor arguments kept
    for (n1, a), (n2, b) in zip(online.named_parameters(), target.named_parameters()):
        assert n1 == n2 and torch.equal(a, b) and a.data_ptr() != b.data_ptr()
        assert a.requires_grad and not b.requires_grad


def test_type_of_backbone_loses_arguments_and_update_refuses():
    online = SmallCNN(width=4)
    wrong = type(online)()  # known wrong: width falls back to the default 32
    with pytest.raises(ValueError, match="shape"):
        update_momentum(online, wrong, 0.9)


def test_update_momentum_zero_copies_and_one_keeps():
    online, target = _net(0), _net(1)
    online_before, target_before = _state(online), _state(target)
    update_momentum(online, target, 1.0)
    for k, v in target.state_dict().items():
        if v.is_floating_point():
            assert torch.equal(v, target_before[k]), k  # m = 1 keeps, exactly
    update_momentum(online, target, 0.0)
    for k, v in target.state_dict().items():
        assert torch.equal(v, online_before[k]), k       # m = 0 copies, exactly (buffers too)
    for k, v in online.state_dict().items():
        assert torch.equal(v, online_before[k]), k       # the online network never moves


def test_update_momentum_matches_slow_loop():
    online, target = _net(0), _net(1)
    m = 0.7
    expected = {}
    for k, t in target.state_dict().items():
        o = online.state_dict()[k]
        if t.is_floating_point():  # element by element, in float64
            vals = [m * a + (1 - m) * b for a, b in zip(t.double().flatten().tolist(), o.double().flatten().tolist())]
            expected[k] = torch.tensor(vals, dtype=torch.float64).view_as(t)
        else:
            expected[k] = o.clone()
    update_momentum(online, target, m)
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v.double() if v.is_floating_point() else v, expected[k],
                                   atol=1e-6, rtol=1e-6, msg=k)


def test_update_momentum_handles_batchnorm_buffers():
    online, target = _net(0), _net(1)
    bn_o, bn_t = online[2], target[2]
    rm_o, rm_t = bn_o.running_mean.clone(), bn_t.running_mean.clone()
    bn_o.num_batches_tracked.fill_(7)
    update_momentum(online, target, 0.5)
    torch.testing.assert_close(bn_t.running_mean, 0.5 * rm_t + 0.5 * rm_o)  # float buffer: EMA
    assert bn_t.num_batches_tracked.item() == 7                           # int buffer: copied


@pytest.mark.parametrize("m", [-0.01, 1.01, 2.0])
def test_update_momentum_bad_momentum(m):
    with pytest.raises(ValueError, match="m must be in"):
        update_momentum(_net(0), _net(1), m)


# ---------------------------------------------- MoCo's update: parameters only

def test_momentum_copy_of_an_encoder_keeps_its_width():
    enc = models.SmallCNN(width=4)
    key = momentum_copy(enc)
    assert key.num_features == enc.num_features == 32          # constructor arguments kept
    assert all(not p.requires_grad for p in key.parameters())
    assert all(p.requires_grad for p in enc.parameters())
    for a, b in zip(enc.parameters(), key.parameters()):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()


def test_momentum_update_ends_and_middle():
    q, k = _mlp(0), momentum_copy(_mlp(1))
    k_before = copy.deepcopy(k)
    momentum_update(q, k, 1.0)                                   # m = 1 keeps
    for a, b in zip(k.state_dict().values(), k_before.state_dict().values()):
        assert torch.equal(a, b)
    momentum_update(q, k, 0.9)                                   # the EMA, parameter by parameter
    for name, p in k.named_parameters():
        expected = 0.9 * dict(k_before.named_parameters())[name] + 0.1 * dict(q.named_parameters())[name]
        torch.testing.assert_close(p, expected)
    momentum_update(q, k, 0.0)                                   # m = 0 copies
    for a, b in zip(q.parameters(), k.parameters()):
        assert torch.equal(a, b)


def test_momentum_update_leaves_buffers_and_query_alone():
    q, k = _mlp(0), momentum_copy(_mlp(1))
    q_before, k_buffers = copy.deepcopy(q), [b.clone() for b in k.buffers()]
    momentum_update(q, k, 0.5)
    for a, b in zip(q.state_dict().values(), q_before.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(k.buffers(), k_buffers):                     # the key encoder keeps its own BN stats
        assert torch.equal(a, b)


def test_momentum_bad_inputs():
    q, k = _mlp(0), momentum_copy(_mlp(1))
    for m in (-0.1, 1.5, "0.9"):
        with pytest.raises(ValueError, match="momentum"):
            momentum_update(q, k, m)
    with pytest.raises(ValueError, match="momentum_copy"):
        momentum_update(q, nn.Linear(4, 3), 0.9)
    with pytest.raises(ValueError, match="momentum"):
        MoCo(models.SmallCNN(width=2), momentum=1.01)


