"""The exercise checks of notebook 10 pass the package's functions, fail known-wrong versions
with a useful message, and report stubs as not implemented."""
import torch
import torch.nn.functional as F

from course_utils.checks import check_sinkhorn, check_teacher_probs
from course_utils.methods.dino import teacher_probs
from course_utils.methods.swav import sinkhorn


def _messages(report):
    return {desc: (ok, msg) for desc, ok, msg in report.results}


def test_package_functions_pass():
    assert check_sinkhorn(sinkhorn, show=False).passed
    assert check_teacher_probs(teacher_probs, show=False).passed


def test_stubs_are_not_implemented():
    def stub(*args):
        raise NotImplementedError

    for check in (check_sinkhorn, check_teacher_probs):
        report = check(stub, show=False)
        assert not report.passed and report.results[0][2] == "not implemented yet"


def test_sinkhorn_on_the_wrong_axis_fails_with_the_difference():
    def wrong_axis(scores, epsilon, iterations):
        if epsilon <= 0:
            raise ValueError("epsilon")
        Q = torch.exp(scores / epsilon)           # (B, K): not transposed, so the roles swap
        Q /= Q.sum()
        B, K = Q.shape
        for _ in range(iterations):
            Q /= Q.sum(1, keepdim=True) * B
            Q /= Q.sum(0, keepdim=True) * K
        return Q * K

    msgs = _messages(check_sinkhorn(wrong_axis, show=False))
    assert not msgs["8 samples, 4 prototypes, 3 iterations"][0]
    assert "differ" in msgs["8 samples, 4 prototypes, 3 iterations"][1] or "shape" in msgs["8 samples, 4 prototypes, 3 iterations"][1]


def test_plain_softmax_without_equipartition_fails_but_the_uniform_case_passes():
    def softmax_only(scores, epsilon, iterations):
        if epsilon <= 0:
            raise ValueError("epsilon")
        return F.softmax(scores / epsilon, dim=1)

    msgs = _messages(check_sinkhorn(softmax_only, show=False))
    assert msgs["a uniform score matrix gives uniform codes 1/K"][0]
    assert not msgs["8 samples, 4 prototypes, 3 iterations"][0]


def test_sinkhorn_that_accepts_bad_epsilon_fails_that_case():
    msgs = _messages(check_sinkhorn(lambda s, e, i: sinkhorn(s, max(e, 0.05), i), show=False))
    assert "accepts this bad input" in msgs["epsilon = 0 is a bad input"][1]


def test_teacher_without_centering_or_with_the_wrong_axis_fails():
    def no_centering(t, c, temperature):
        if temperature <= 0:
            raise ValueError("temperature")
        return F.softmax(t / temperature, dim=1)

    msgs = _messages(check_teacher_probs(no_centering, show=False))
    assert msgs["centre 0, temperature 1: a plain softmax"][0]
    assert "differ" in msgs["random logits and centre, temperature 0.04"][1]

    def wrong_axis(t, c, temperature):
        if temperature <= 0:
            raise ValueError("temperature")
        return F.softmax((t - c) / temperature, dim=0)

    assert not check_teacher_probs(wrong_axis, show=False).passed
