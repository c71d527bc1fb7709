import torch
import torch.nn.functional as F

from course_utils import checks
from course_utils.evaluate import knn_predict


def test_compare_says_what_differs():
    assert checks.compare(torch.ones(2), torch.ones(2)) is None
    assert "shape" in checks.compare(torch.ones(3), torch.ones(2))
    msg = checks.compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
    assert "largest difference 0.5" in msg and "index (1,)" in msg
    assert "tensor" in checks.compare(3.0, torch.ones(1))
    assert "NaN" in checks.compare(torch.tensor([float("nan")]), torch.tensor([1.0]))
    assert checks.compare(0.5, 0.5) is None and "expected" in checks.compare(0.4, 0.5)


def test_check_function_reports_each_case(capsys):
    cases = [checks.Case("double", (torch.ones(2),)), checks.Case("bad", ("x",), raises=TypeError)]
    report = checks.check_function(lambda x: x * 2, lambda x: x * 2, cases[:1], name="double")
    assert report.passed and "1/1" in capsys.readouterr().out

    def not_done(x):
        raise NotImplementedError

    report = checks.check_function(not_done, lambda x: x, cases[:1], show=False)
    assert not report and "not implemented" in str(report)
    report = checks.check_function(not_done, lambda x: x, cases * 5, show=False)   # a stub: one line, not ten
    assert len(report.results) == 1 and "0/1 cases pass" in str(report)


def test_knn_check_accepts_a_correct_answer():
    def mine(xtr, ytr, xte, k, temperature):
        return knn_predict(xtr, ytr, xte, k=k, temperature=temperature)
    assert checks.check_knn_predict(mine, show=False).passed


def test_knn_check_catches_typical_mistakes():
    def unnormalised(xtr, ytr, xte, k, temperature):  # dot product instead of cosine
        if k < 1:
            raise ValueError("k")
        k = min(k, len(xtr))
        sim = xte @ xtr.T
        top, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(xte), int(ytr.max()) + 1).scatter_add_(1, ytr[idx], (top / temperature).exp())
        return votes.argmax(1)

    report = checks.check_knn_predict(unnormalised, show=False)
    assert not report.passed
    assert "entries differ" in str(report)

    def no_validation(xtr, ytr, xte, k, temperature):
        k = max(1, min(k, len(xtr)))
        return knn_predict(xtr, ytr, xte, k=k, temperature=temperature)

    report = checks.check_knn_predict(no_validation, show=False)
    assert "accepts this bad input" in str(report)

    def crashes_on_big_k(xtr, ytr, xte, k, temperature):
        if k < 1:
            raise ValueError("k")
        sim = F.normalize(xte, dim=1) @ F.normalize(xtr, dim=1).T
        return ytr[sim.topk(k, dim=1).indices[:, 0]]

    assert "raised RuntimeError" in str(checks.check_knn_predict(crashes_on_big_k, show=False))


def test_a_function_that_edits_its_inputs_in_place_does_not_spoil_later_cases():
    """The cases share one tensor; each call gets its own copy, for the learner and the reference."""
    shared = torch.arange(4.0)
    cases = [checks.Case(f"case {i}", (shared,), {"extra": [shared]}) for i in range(3)]
    seen = []

    def reference(x, extra):
        seen.append(("reference", x.tolist(), extra[0].tolist()))
        return x * 2

    def vandal(x, extra):  # right answer, but zeroes its inputs afterwards
        out = x * 2
        x.zero_()
        extra[0].fill_(7.0)
        return out

    report = checks.check_function(vandal, reference, cases, show=False)
    assert report.passed, str(report)
    assert shared.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert all(x == [0.0, 1.0, 2.0, 3.0] and e == x for _, x, e in seen)

    def reference_vandal(x, extra):  # the reference's own edits must not reach the learner either
        out = x * 2
        x.zero_()
        return out

    assert checks.check_function(lambda x, extra: x * 2, reference_vandal, cases, show=False).passed

    def edits_then_raises(x):  # a bad-input case that edits first must not spoil the next case
        if x.sum() == 0:
            return x
        x.zero_()
        raise ValueError("no")

    later = [checks.Case("bad", (shared,), raises=ValueError), checks.Case("good", (shared,))]
    report = checks.check_function(edits_then_raises, lambda x: x * 0, later, show=False)
    assert [ok for _, ok, _ in report.results] == [True, False]  # the good case saw 0..3, not zeros
    assert shared.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_an_endless_loop_is_one_unfinished_case_not_a_hang():
    import time

    def loops_on_negatives(x):
        while x.min() < 0:          # an exercise answer that never ends on negative inputs
            try:
                time.sleep(0.01)
            except Exception:       # noqa: BLE001 - even a blanket except cannot swallow the stop
                pass
        return x * 2

    cases = [checks.Case("positive", (torch.ones(2),)), checks.Case("negative", (-torch.ones(2),)),
             checks.Case("positive again", (torch.ones(3),))]
    start = time.perf_counter()
    report = checks.check_function(loops_on_negatives, lambda x: x * 2, cases, show=False, time_limit=0.3)
    assert time.perf_counter() - start < 5
    assert [ok for _, ok, _ in report.results] == [True, False, True]
    assert "did not finish within 0.3 s" in report.results[1][2]
