"""The exercise checks of notebook 07 pass the package's own functions, fail known-wrong
versions with a useful message, and report stubs as not implemented."""
import torch

from course_utils import language as L
from course_utils.checks import check_mlm_corrupt, check_sequence_log_likelihood


def _messages(report):
    return {desc: (ok, msg) for desc, ok, msg in report.results}


def _failing(report):
    return [msg for _, ok, msg in report.results if not ok]


def test_package_functions_pass_every_check():
    assert check_sequence_log_likelihood(L.sequence_log_likelihood, show=False).passed
    assert check_mlm_corrupt(lambda ids, m, n, p: L.mlm_corrupt(ids, m, n, p), show=False).passed


def test_bernoulli_choice_as_in_huggingface_also_passes():
    """Choosing each position independently with probability mask_prob is accepted too."""
    def bernoulli(ids, mask_id, num_tokens, mask_prob):
        if not 0 <= mask_prob <= 1:
            raise ValueError("mask_prob")
        chosen = torch.rand(ids.shape) < mask_prob
        action = torch.rand(ids.shape)
        inputs = torch.where(chosen & (action < 0.8), mask_id, ids)
        rand = chosen & (action >= 0.8) & (action < 0.9)
        inputs = torch.where(rand, torch.randint(0, num_tokens, ids.shape), inputs)
        return inputs, torch.where(chosen, ids, -100)

    assert check_mlm_corrupt(bernoulli, show=False).passed


def test_stubs_are_reported_not_implemented():
    def stub(*args):
        raise NotImplementedError

    for check in (check_mlm_corrupt, check_sequence_log_likelihood):
        report = check(stub, show=False)
        assert not report.passed
        assert all(msg == "not implemented yet" for msg in _failing(report) if "bad input" not in msg)


def test_known_wrong_corruptions_fail_with_a_useful_message():
    def ignore_minus_one(ids, mask_id, num_tokens, mask_prob):      # mixed ignore index
        inputs, targets = L.mlm_corrupt(ids, mask_id, num_tokens, mask_prob)
        return inputs, targets.masked_fill(targets == -100, -1)

    def always_mask(ids, mask_id, num_tokens, mask_prob):           # 100% [MASK], no 80/10/10
        inputs, targets = L.mlm_corrupt(ids, mask_id, num_tokens, mask_prob, mask_frac=1.0, random_frac=0.0)
        return inputs, targets

    def first_positions(ids, mask_id, num_tokens, mask_prob):       # always the same positions
        if not 0 <= mask_prob <= 1:
            raise ValueError("mask_prob")
        k = round(mask_prob * ids.shape[1])
        targets = torch.full_like(ids, -100)
        targets[:, :k] = ids[:, :k]
        inputs = ids.clone()
        inputs[:, :k] = mask_id
        return inputs, targets

    def loss_everywhere(ids, mask_id, num_tokens, mask_prob):       # targets at every position
        inputs, _ = L.mlm_corrupt(ids, mask_id, num_tokens, mask_prob)
        return inputs, ids.clone()

    def no_validation(ids, mask_id, num_tokens, mask_prob):
        return L.mlm_corrupt(ids, mask_id, num_tokens, min(max(mask_prob, 0.0), 1.0))

    assert any("use -100" in m for m in _failing(check_mlm_corrupt(ignore_minus_one, show=False)))
    assert any("expected 0.800" in m or "expected 0.095" in m
               for m in _failing(check_mlm_corrupt(always_mask, show=False)))
    assert any("position frequencies" in m for m in _failing(check_mlm_corrupt(first_positions, show=False)))
    failing = _failing(check_mlm_corrupt(loss_everywhere, show=False))
    assert any("chosen 1.000, expected 0.150" in m for m in failing)
    assert any("should raise ValueError" in m for m in _failing(check_mlm_corrupt(no_validation, show=False)))


def test_known_wrong_log_likelihoods_fail():
    def mean_not_sum(logits, targets):
        return L.sequence_log_likelihood(logits, targets) / targets.shape[1]

    def ignore_not_skipped(logits, targets):
        if logits.shape[:2] != targets.shape:
            raise ValueError("shapes")
        logp = logits.log_softmax(-1)
        return logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0].sum(1)

    def unstable(logits, targets):
        if logits.shape[:2] != targets.shape:
            raise ValueError("shapes")
        p = logits.float().softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
        return (p.log() * (targets != -100)).sum(1)

    for wrong in (mean_not_sum, ignore_not_skipped, unstable):
        assert not check_sequence_log_likelihood(wrong, show=False).passed, wrong.__name__
    msgs = _messages(check_sequence_log_likelihood(unstable, show=False))
    assert not msgs["large logits (use log_softmax, not log(softmax))"][0]


def test_wrong_return_types_get_a_fail_line_not_a_traceback():
    """None, a single tensor, or a call that breaks the second time: FAIL lines, no exception."""
    def returns_none(ids, mask_id, num_tokens, mask_prob):
        if not 0 <= mask_prob <= 1:
            raise ValueError("mask_prob")

    def returns_inputs_only(ids, mask_id, num_tokens, mask_prob):
        return L.mlm_corrupt(ids, mask_id, num_tokens, mask_prob)[0]

    for wrong, said in ((returns_none, "got None"), (returns_inputs_only, "got one tensor of shape")):
        report = check_mlm_corrupt(wrong, show=False)
        assert not report.passed
        failing = _failing(report)
        assert failing and all("should return (inputs, targets)" in m for m in failing), wrong.__name__
        assert any(said in m for m in failing)
        assert "FAIL every position is equally likely" in str(report)


def _breaks_on_second_big_call(second):
    """Correct, except that the second call on the (2000, 10) batch does ``second()``."""
    calls = []

    def fn(ids, mask_id, num_tokens, mask_prob):
        if ids.shape == (2000, 10):
            calls.append(1)
            if len(calls) > 1:
                return second()
        return L.mlm_corrupt(ids, mask_id, num_tokens, mask_prob)
    return fn


def test_a_second_call_that_raises_or_returns_nothing_is_reported():
    def boom():
        raise RuntimeError("out of random numbers")

    for second, said in ((boom, "raised RuntimeError: out of random numbers"), (lambda: None, "got None")):
        msgs = _messages(check_mlm_corrupt(_breaks_on_second_big_call(second), show=False))
        ok, msg = msgs["every position is equally likely to be chosen, differently each call"]
        assert not ok and msg.startswith("a second call with the same inputs") and said in msg
        assert all(ok for desc, (ok, _) in msgs.items() if "every position" not in desc)
