"""The exercise checks of notebooks 05 and 06 pass the package's own functions, fail
known-wrong versions with a useful message, and report stubs as not implemented."""
import torch
import torch.nn.functional as F

from course_utils.checks import (
    check_patchify,
    check_random_masking,
    check_regression_loss,
    check_update_momentum,
)
from course_utils.methods.byol import regression_loss, update_momentum
from course_utils.methods.mae import patchify, random_masking


def _messages(report):
    return {desc: (ok, msg) for desc, ok, msg in report.results}


def test_package_functions_pass_every_check():
    assert check_update_momentum(update_momentum, show=False).passed
    assert check_regression_loss(regression_loss, show=False).passed
    assert check_random_masking(random_masking, show=False).passed
    assert check_patchify(patchify, show=False).passed


def test_stub_is_reported_not_implemented():
    def stub(*args):
        raise NotImplementedError

    report = check_random_masking(stub, show=False)
    assert not report.passed
    assert all(msg == "not implemented yet" for _, _, msg in report.results)


def test_ema_with_swapped_weights_and_params_only_fail():
    def swapped(online, target, m):  # known wrong: m weights the online network
        if not 0 <= m <= 1:
            raise ValueError("m")
        with torch.no_grad():
            for t, o in zip(target.parameters(), online.parameters()):
                t.copy_((1 - m) * t + m * o)

    report = check_update_momentum(swapped, show=False)
    msgs = _messages(report)
    assert not msgs["m=0 copies the online network"][0]
    assert "differ" in msgs["m=0.99, a typical BYOL value"][1]

    def params_only(online, target, m):  # forgets the BatchNorm running statistics
        if not 0 <= m <= 1:
            raise ValueError("m")
        with torch.no_grad():
            for t, o in zip(target.parameters(), online.parameters()):
                t.copy_(m * t + (1 - m) * o)

    msgs = _messages(check_update_momentum(params_only, show=False))
    assert not msgs["m=0.5, BatchNorm running statistics averaged too"][0]
    assert msgs["m=1 keeps the target"][0]


def test_ema_that_accepts_bad_momentum_fails_those_cases():
    def no_checks(online, target, m):
        update_momentum(online, target, min(max(m, 0.0), 1.0))

    msgs = _messages(check_update_momentum(no_checks, show=False))
    assert "accepts this bad input" in msgs["m=-0.1 is a bad input"][1]


def test_masking_with_int_truncation_fails_only_the_float_trap():
    def truncating(x, mask_ratio, noise):
        if not 0 <= mask_ratio < 1:
            raise ValueError("mask_ratio")
        B, N, D = x.shape
        keep = int(N * (1 - mask_ratio))  # known trap: 10 * (1 - 0.9) -> 0
        ids_shuffle = noise.argsort(1)
        ids_restore = ids_shuffle.argsort(1)
        visible = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, D))
        mask = torch.ones(B, N)
        mask[:, :keep] = 0
        return visible, torch.gather(mask, 1, ids_restore), ids_restore

    report = check_random_masking(truncating, show=False)
    failed = [desc for desc, ok, _ in report.results if not ok]
    assert len(failed) == 1 and "0.9" in failed[0]


def test_patchify_with_channel_first_order_fails_with_values_message():
    def channel_first(images, p):
        if images.shape[-1] % p:
            raise ValueError("patch")
        return F.unfold(images, p, stride=p).transpose(1, 2)

    report = check_patchify(channel_first, show=False)
    msgs = _messages(report)
    assert msgs["one channel 8x8, patch 2"][0]  # with one channel the orders agree
    assert "values differ" in msgs["RGB 8x8, patch 4"][1]


def test_regression_loss_without_normalising_fails():
    msgs = _messages(check_regression_loss(lambda p, z: ((p - z) ** 2).sum(1).mean(), show=False))
    assert not msgs["z = 3p (scale must not matter): 0"][0]


def test_checks_leave_the_global_random_state_alone():
    """Running a check in a notebook must not reseed the notebook's own random numbers."""
    torch.manual_seed(1234)
    torch.rand(3)
    before = torch.get_rng_state().clone()
    expected_next = torch.rand(5)
    torch.set_rng_state(before)
    assert check_update_momentum(update_momentum, show=False).passed
    for check, fn in ((check_regression_loss, regression_loss), (check_random_masking, random_masking),
                      (check_patchify, patchify)):
        check(fn, show=False)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(5), expected_next)


def test_ema_networks_are_the_same_on_every_check():
    """The networks come from fixed seeds, whatever the global state was."""
    from course_utils.checks.byol_mae import _ema_pair

    torch.manual_seed(0)
    a = _ema_pair(3)[0].state_dict()
    torch.manual_seed(99)
    b = _ema_pair(3)[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
