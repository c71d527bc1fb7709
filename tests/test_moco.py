
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from course_utils import augment, models
from course_utils.losses import info_nce_loss
from course_utils.methods import moco
from course_utils.methods.moco import KeyQueue, MoCo, enqueue, grouped_forward
from course_utils.train import train

# ---------------------------------------------------------------------------------- the queue

def enqueue_reference(queue, ptr, keys):
    """One key at a time: write into the oldest slot, advance the pointer, wrap at K."""
    queue = queue.clone()
    for key in keys:
        queue[ptr] = key
        ptr = (ptr + 1) % len(queue)
    return queue, ptr


@pytest.mark.parametrize("K,B,ptr", [(8, 4, 0), (8, 4, 4), (10, 4, 8), (10, 3, 9), (7, 7, 3), (5, 1, 4),
                                     (12, 5, 0)])
def test_enqueue_matches_slow_reference(K, B, ptr):
    g = torch.Generator().manual_seed(K * 100 + B)
    queue, keys = torch.randn(K, 3, generator=g), torch.randn(B, 3, generator=g)
    expected_queue, expected_ptr = enqueue_reference(queue, ptr, keys)
    got_queue, got_ptr = enqueue(queue.clone(), ptr, keys)
    assert got_ptr == expected_ptr
    torch.testing.assert_close(got_queue, expected_queue)


def test_queue_is_fifo_over_many_steps():
    """After many batches that do not divide K, the queue holds exactly the last K keys."""
    q = KeyQueue(10, 2)
    all_keys = torch.arange(2 * 37, dtype=torch.float32).view(37, 2)
    for batch in all_keys.split(3):
        q.push(batch)
    assert set(q.queue[:, 0].tolist()) == set(all_keys[-10:, 0].tolist())
    assert int(q.ptr) == 37 % 10
    oldest = q.queue[int(q.ptr)]                                 # the pointer marks the oldest key
    torch.testing.assert_close(oldest, all_keys[-10])


def test_queue_negatives_is_a_copy_and_state_is_saved():
    q = KeyQueue(6, 4)
    torch.testing.assert_close(q.queue.norm(dim=1), torch.ones(6))   # random unit vectors at start
    neg = q.negatives()
    q.push(torch.zeros(2, 4))
    assert not torch.equal(neg, q.queue)
    assert set(q.state_dict()) == {"queue", "ptr"}


def test_enqueue_bad_inputs():
    queue = torch.zeros(8, 3)
    with pytest.raises(ValueError, match="does not fit"):
        enqueue(queue, 0, torch.zeros(9, 3))
    with pytest.raises(ValueError, match="width"):
        enqueue(queue, 0, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="ptr"):
        enqueue(queue, 8, torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        enqueue(queue, 0, torch.zeros(3))
    with pytest.raises(ValueError, match="size"):
        KeyQueue(0, 3)


# ------------------------------------------------------------------------ the loss with a queue

def moco_loss_reference(q, k, queue, t):
    """MoCo Algorithm 1 as a loop: logits [q.k+, q.queue_j] / t, target 0."""
    total = 0.0
    for i in range(len(q)):
        logits = [q[i] @ k[i]] + [q[i] @ n for n in queue]
        logits = torch.stack(logits) / t
        total = total - (logits[0] - torch.logsumexp(logits, 0))
    return total / len(q)


def test_info_nce_with_queue_matches_moco_loop():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    k = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(11, 8, generator=g), dim=1)
    torch.testing.assert_close(info_nce_loss(q, k, queue, 0.2, normalize=False),
                               moco_loss_reference(q, k, queue, 0.2))


# --------------------------------------------------------------------------- shuffled BN

def test_grouped_forward_is_ghost_batchnorm_and_unshuffles():
    net = nn.BatchNorm1d(3).train()
    x = torch.randn(8, 3) + torch.arange(8.0)[:, None]
    out = grouped_forward(net, x, groups=2)
    torch.testing.assert_close(out[:4], F.batch_norm(x[:4], None, None, training=True))
    torch.testing.assert_close(out[4:], F.batch_norm(x[4:], None, None, training=True))
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    shuffled = grouped_forward(net, x, groups=2, perm=perm)
    first_group = perm[:4]                                      # rows normalised together
    torch.testing.assert_close(shuffled[first_group], F.batch_norm(x[first_group], None, None, training=True))
    # one group: shuffling changes nothing
    torch.testing.assert_close(grouped_forward(net, x, 1, perm), grouped_forward(net, x, 1))
    with pytest.raises(ValueError, match="groups"):
        grouped_forward(net, x, groups=9)


# ------------------------------------------------------------------------------ the method

def _moco(**kw):
    torch.manual_seed(0)
    kw = {"queue_size": 20, "symmetric": False, "shuffle_groups": 1, "transform": augment.simclr_augment(16)} | kw
    return MoCo(models.SmallCNN(width=4), proj_hidden_dim=16, proj_dim=8, **kw)


@pytest.mark.parametrize("groups,mlp", [(1, True), (2, False)])
def test_training_step_updates_queue_and_gradients_reach_only_the_query_side(groups, mlp):
    m = _moco(shuffle_groups=groups, mlp=mlp, queue_size=40)
    x = torch.rand(32, 3, 16, 16)                 # 2 groups of 16 when groups = 2
    out = m.training_step((x, None))
    loss = out["loss"]
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())
    assert all(p.grad is None for p in m.key_encoder.parameters())
    assert int(m.queue.ptr) == 32
    torch.testing.assert_close(m.queue.queue[:32].norm(dim=1), torch.ones(32))
    assert len(m.projection_head.net) == (3 if mlp else 1)


@pytest.mark.parametrize("symmetric", [False, True])
def test_loss_uses_the_queue_from_before_the_step_and_then_enqueues_the_keys(symmetric):
    """MoCo's Algorithm 1: logits against the old queue, then enqueue(k). Swapping the two
    would let each query see its own key among the negatives."""
    m = _moco(queue_size=40, symmetric=symmetric, transform=lambda x: x)   # identical views
    m.queue.ptr.fill_(30)                                                  # so the write wraps
    old = m.queue.queue.clone()
    x = torch.rand(8, 3, 16, 16)
    loss = m.training_step((x, None))["loss"]
    with torch.no_grad():
        q = F.normalize(m._query_net(x), dim=1)
        k = F.normalize(m._key_net(x), dim=1)
    expected = info_nce_loss(q, k, old, m.temperature, normalize=False) * (2 if symmetric else 1)
    torch.testing.assert_close(loss, expected)
    keys = torch.cat([k, k]) if symmetric else k
    slots = (30 + torch.arange(len(keys))) % 40
    torch.testing.assert_close(m.queue.queue[slots], keys)
    untouched = torch.ones(40, dtype=torch.bool)
    untouched[slots] = False
    assert torch.equal(m.queue.queue[untouched], old[untouched])
    assert int(m.queue.ptr) == (30 + len(keys)) % 40


def test_bad_temperature_is_refused_clearly():
    for t in (0, -1.0, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="temperature"):
            _moco(temperature=t)


def test_key_encoder_follows_query_encoder_in_training():
    m = _moco(momentum=0.5, queue_size=16)
    x = torch.rand(32, 3, 16, 16)
    before = [p.clone() for p in m.key_encoder.parameters()]
    hist = train(m, (x, torch.zeros(32)), epochs=1, batch_size=8, lr=1e-2, device="cpu", progress=False)
    assert len(hist["step_loss"]) == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, m.key_encoder.parameters()))
    assert all(not p.requires_grad for p in m.key_encoder.parameters())
    # m = 0: after a step the key encoder is the query encoder
    m0 = _moco(momentum=0.0)
    train(m0, (x, torch.zeros(32)), epochs=1, batch_size=8, lr=1e-2, device="cpu", progress=False)
    for a, b in zip(m0.encoder.parameters(), m0.key_encoder.parameters()):
        assert torch.equal(a, b)


def test_moco_checkpoint_holds_the_queue(tmp_path):
    m = _moco()
    x = torch.rand(16, 3, 16, 16)
    train(m, (x, torch.zeros(16)), epochs=1, batch_size=8, lr=1e-3, device="cpu", progress=False,
          checkpoint=tmp_path / "moco.pt")
    state = torch.load(tmp_path / "moco.pt", weights_only=False)["model"]
    torch.testing.assert_close(state["queue.queue"], m.queue.queue)
    assert int(state["queue.ptr"]) == 16 % 20


def test_moco_v2_augment_is_simclr_at_half_strength():
    t = moco.moco_v2_augment(32)
    assert t.crop_scale == (0.2, 1.0) and t.jitter_strength == 0.5 and t.blur_p == 0.0
    assert moco.moco_v2_augment(32, blur=True).blur_p == 0.5


def test_moco_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        _moco(temperature=0.0)
    with pytest.raises(ValueError, match="shuffle_groups"):
        _moco(shuffle_groups=0)
    m = _moco(queue_size=4)
    with pytest.raises(ValueError, match="queue_size=4 is smaller than the 6 keys"):
        m.training_step((torch.rand(6, 3, 16, 16), None))
    with pytest.raises(ValueError, match="twice for the symmetric loss"):
        _moco(queue_size=10, symmetric=True).training_step((torch.rand(6, 3, 16, 16), None))


def test_pretext_accuracy_against_a_loop_and_in_the_history():
    g = torch.Generator().manual_seed(0)
    q, k = F.normalize(torch.randn(6, 8, generator=g), dim=1), F.normalize(torch.randn(6, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    k[:3] = q[:3]                                 # three positives that beat every negative
    wins = [float((q[i] @ k[i]) > max(q[i] @ n for n in queue)) for i in range(6)]
    assert moco.pretext_accuracy(q, k, queue).item() == pytest.approx(sum(wins) / 6)
    assert sum(wins) >= 3
    m = _moco()
    x = torch.rand(16, 3, 16, 16)
    hist = train(m, (x, torch.zeros(16)), epochs=2, batch_size=4, lr=1e-3, device="cpu", progress=False)
    steps = hist["logs"]["pretext_accuracy"]
    assert len(steps) == 8 and all(0.0 <= a <= 1.0 for a in steps)
    assert hist["epoch_logs"]["pretext_accuracy"] == pytest.approx([sum(steps[:4]) / 4, sum(steps[4:]) / 4])


def test_batch_negatives_loss_matches_loop():
    m = _moco(batch_negatives=True, temperature=0.3)
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    k = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    total = 0.0
    for i in range(4):  # candidates: every key of the batch, then the queue; the positive is key i
        logits = torch.stack([q[i] @ c for c in list(k) + list(queue)]) / 0.3
        total = total - (logits[i] - torch.logsumexp(logits, 0))
    torch.testing.assert_close(m._loss(q, k, queue), total / 4)
    m.batch_negatives = False
    torch.testing.assert_close(m._loss(q, k, queue), moco_loss_reference(q, k, queue, 0.3))


def test_defaults_follow_the_cifar_demo_and_small_groups_merge():
    m = MoCo(models.SmallCNN(width=4))
    assert (m.temperature, m.momentum, m.symmetric, m.shuffle_groups, len(m.queue)) == (0.1, 0.99, True, 4, 4096)
    calls = []
    m._query_net = lambda x: calls.append(len(x)) or torch.randn(len(x), 128)
    m._queries_and_keys(torch.rand(40, 3, 16, 16), torch.rand(40, 3, 16, 16))
    assert calls == [20, 20]                      # 40 images: 2 groups of 20, not 4 of 10


def test_symmetric_step_enqueues_both_views():
    m = _moco(symmetric=True, queue_size=20)
    loss = m.training_step((torch.rand(6, 3, 16, 16), None))["loss"]
    assert int(m.queue.ptr) == 12 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.encoder.parameters())
