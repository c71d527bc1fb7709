import torch
import torch.nn.functional as F

from course_utils import infonce
from course_utils.checks import contrastive as cc
from course_utils.losses import nt_xent_loss, supcon_loss
from course_utils.methods.moco import enqueue


def _validated(fn):
    """Wrap a loss so that it rejects bad inputs as the package does (to isolate the value bug)."""
    def wrapped(z1, z2, t, *rest):
        nt_xent_loss(z1, z2, t)                 # raises on bad inputs
        return fn(z1, z2, t, *rest)
    return wrapped


def test_nt_xent_check_accepts_package_and_slow_loop():
    assert cc.check_nt_xent(nt_xent_loss, show=False).passed
    assert cc.check_nt_xent(infonce.nt_xent_slow, show=False).passed


def test_nt_xent_check_catches_the_known_wrong_versions():
    for wrong in (infonce.nt_xent_cross_view_only, infonce.nt_xent_positive_masked):
        report = cc.check_nt_xent(_validated(wrong), show=False)
        assert not report.passed and "values differ" in str(report)
    report = cc.check_nt_xent(_validated(lambda a, b, t: infonce.nt_xent_config_batch(a, b, t, batch_size=4)),
                              show=False)
    failed = [desc for desc, ok, _ in report.results if not ok]
    short = ["a short last batch, B=3 (read B from the tensors)",
             "B=2, D=16, the smallest batch with a negative"]
    assert failed == [f"{d} [vs package]" for d in short] + [f"{d} [vs Algorithm 1 loop]" for d in short]


def test_nt_xent_check_catches_missing_validation_and_unnormalised_inputs():
    def no_checks(z1, z2, t):
        B = len(z1)
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        logits = (z @ z.T / t).masked_fill(torch.eye(2 * B, dtype=torch.bool), float("-inf"))
        return F.cross_entropy(logits, torch.cat([torch.arange(B, 2 * B), torch.arange(B)]))
    assert "accepts this bad input" in str(cc.check_nt_xent(no_checks, show=False))

    def dot_products(z1, z2, t):
        nt_xent_loss(z1, z2, t)
        B = len(z1)
        z = torch.cat([z1, z2])
        logits = (z @ z.T / t).masked_fill(torch.eye(2 * B, dtype=torch.bool), float("-inf"))
        return F.cross_entropy(logits, torch.cat([torch.arange(B, 2 * B), torch.arange(B)]))
    report = cc.check_nt_xent(dot_products, show=False)
    assert not report.passed


def test_supcon_check():
    assert cc.check_supcon(supcon_loss, show=False).passed

    def nt_xent_ignoring_labels(z1, z2, labels, t):
        supcon_loss(z1, z2, labels, t)
        return nt_xent_loss(z1, z2, t)
    report = cc.check_supcon(nt_xent_ignoring_labels, show=False)
    assert not report.passed
    assert [d for d, ok, _ in report.results if ok][0] == "all labels distinct: exactly NT-Xent"


def test_enqueue_check():
    assert cc.check_enqueue(enqueue, show=False).passed

    def no_wrap(queue, ptr, keys):                  # the original MoCo code: assumes K % B == 0
        if len(keys) > len(queue) or keys.shape[1] != queue.shape[1]:
            raise ValueError("bad")
        queue[ptr:ptr + len(keys)] = keys[:len(queue) - ptr]
        return queue, (ptr + len(keys)) % len(queue)
    report = cc.check_enqueue(no_wrap, show=False)
    assert not report.passed
    assert "wraps around" in " ".join(d for d, ok, _ in report.results if not ok)

    def returns_new_queue(queue, ptr, keys):        # a pure version is fine too
        return enqueue(queue.clone(), ptr, keys)
    assert cc.check_enqueue(returns_new_queue, show=False).passed
