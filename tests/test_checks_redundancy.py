"""The exercise checks of notebook 09 pass the package's functions, fail known-wrong versions
with a useful message, and report stubs as not implemented."""
import torch

from course_utils.checks import check_barlow_twins_loss, check_covariance_term
from course_utils.lessons.nb09 import decorrelated
from course_utils.methods.barlow_twins import barlow_twins_loss
from course_utils.methods.vicreg import covariance_term


def _messages(report):
    return {desc: (ok, msg) for desc, ok, msg in report.results}


def _needs_two(z):
    if z.shape[0] < 2:
        raise ValueError("batch of one")


def test_package_functions_pass():
    assert check_covariance_term(covariance_term, show=False).passed
    assert check_barlow_twins_loss(barlow_twins_loss, show=False).passed


def test_stubs_are_not_implemented():
    def stub(*args):
        raise NotImplementedError

    for check in (check_covariance_term, check_barlow_twins_loss):
        report = check(stub, show=False)
        assert not report.passed and report.results[0][2] == "not implemented yet"


def test_the_decorrelated_case_really_isdecorrelated():
    d = decorrelated(16, 8)
    torch.testing.assert_close(d.mean(0), torch.zeros(8))
    torch.testing.assert_close(d.T @ d / 16, torch.eye(8))


def _covariance(z, centre=True, diagonal=False, divide_by_d=True):
    _needs_two(z)
    B, D = z.shape
    zc = z - z.mean(0) if centre else z
    cov = zc.T @ zc / (B - 1)
    off = cov if diagonal else cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / (D if divide_by_d else 1)


def test_the_reference_written_here_passes():
    assert check_covariance_term(_covariance, show=False).passed


def test_known_wrong_covariance_terms_fail():
    for wrong in (dict(centre=False), dict(diagonal=True), dict(divide_by_d=False)):
        report = check_covariance_term(lambda z, w=wrong: _covariance(z, **w), show=False)
        assert not report.passed, wrong
        assert "values differ" in _messages(report)["16 samples, 6 dimensions, not centred"][1]
    # without the diagonal's removal, even uncorrelated dimensions give a loss: that case fails too
    msgs = _messages(check_covariance_term(lambda z: _covariance(z, diagonal=True), show=False))
    assert not msgs["uncorrelated dimensions: c(z) = 0"][0]


def _barlow(z1, z2, lambd, fixed_batch=None, standardise=True, unbiased=False):
    _needs_two(z1)
    if lambd <= 0:
        raise ValueError("lambd")
    B = z1.shape[0]
    if standardise:
        z1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=unbiased) + 1e-5)
        z2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=unbiased) + 1e-5)
    c = z1.T @ z2 / (fixed_batch or B)
    on = (1 - torch.diagonal(c)).pow(2).sum()
    off = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
    return on + lambd * off


def test_the_barlow_reference_written_here_passes():
    assert check_barlow_twins_loss(_barlow, show=False).passed


def test_a_loss_that_divides_by_a_fixed_batch_size_fails_only_where_the_batch_changes():
    msgs = _messages(check_barlow_twins_loss(lambda a, b, l: _barlow(a, b, l, fixed_batch=16), show=False))
    assert msgs["16 samples, 6 dimensions, lambda 5e-3"][0]
    assert not msgs["the same batch twice over (32 rows): the same loss"][0]


def test_unstandardised_or_unbiased_versions_fail():
    for wrong in (dict(standardise=False), dict(unbiased=True)):
        report = check_barlow_twins_loss(lambda a, b, l, w=wrong: _barlow(a, b, l, **w), show=False)
        assert not report.passed, wrong
    msgs = _messages(check_barlow_twins_loss(lambda a, b, l: _barlow(a, b, l, unbiased=True), show=False))
    assert not msgs["identical, decorrelated views: loss 0"][0]


def test_a_loss_that_accepts_lambda_zero_fails_that_case():
    msgs = _messages(check_barlow_twins_loss(lambda a, b, l: barlow_twins_loss(a, b, max(l, 5e-3)), show=False))
    assert "accepts this bad input" in msgs["lambd = 0 is a bad input"][1]
