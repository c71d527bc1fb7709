import torch

from course_utils import protocols
from course_utils.checks import check_label_subset, check_rotate_batch
from course_utils.methods.pretext import rotate_batch

# ---------------------------------------------------------------- rotate_batch

def test_rotate_batch_check_passes_the_package_version(capsys):
    report = check_rotate_batch(rotate_batch)
    assert report.passed and "5/5 cases pass" in capsys.readouterr().out


def _clockwise(x):
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError("bad")
    images = torch.cat([torch.rot90(x, -r, dims=(2, 3)) for r in range(4)])
    return images, torch.arange(4).repeat_interleave(len(x))


def _interleaved_labels(x):
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError("bad")
    images, _ = rotate_batch(x)
    return images, torch.arange(4).repeat(len(x))                    # 0 1 2 3 0 1 2 3: wrong order


def _no_checks(x):
    images = torch.cat([torch.rot90(x, r, dims=(-2, -1)) for r in range(4)])
    return images, torch.arange(4).repeat_interleave(len(x))


def test_rotate_batch_check_catches_wrong_versions():
    clockwise = check_rotate_batch(_clockwise, show=False)
    assert not clockwise.passed
    assert any("values differ" in msg for _, ok, msg in clockwise.results if not ok)
    labels = check_rotate_batch(_interleaved_labels, show=False)
    # with one image the two label orders agree; with more they do not
    assert [ok for _, ok, _ in labels.results] == [True, False, True, True, True]
    lax = check_rotate_batch(_no_checks, show=False)
    bad = {desc: msg for desc, ok, msg in lax.results if not ok}
    assert any("non-square" in d for d in bad) and all("accepts this bad input" in m or "raises" in m
                                                       for m in bad.values())


def test_rotate_batch_check_reports_not_implemented():
    def stub(x):
        raise NotImplementedError("write me")
    report = check_rotate_batch(stub, show=False)
    assert not report.passed and all(msg == "not implemented yet" for _, _, msg in report.results)


# ---------------------------------------------------------------- label subsets

def test_label_subset_check_passes_the_package_version(capsys):
    report = check_label_subset(protocols.label_fraction_indices)
    assert report.passed and "6/6 cases pass" in capsys.readouterr().out


def _not_per_class(labels, fraction, seed=0):
    if not 0 < fraction <= 1:
        raise ValueError("fraction")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(len(labels), generator=g)[:max(1, int(fraction * len(labels)))]


def _python_round(labels, fraction, seed=0):
    if not 0 < fraction <= 1:
        raise ValueError("fraction")
    g = torch.Generator().manual_seed(seed)
    out = []
    for c in labels[labels >= 0].unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        out.append(idx[torch.randperm(len(idx), generator=g)[:max(1, round(fraction * len(idx)))]])
    return torch.cat(out)


def _unseeded(labels, fraction, seed=0):
    if not 0 < fraction <= 1:
        raise ValueError("fraction")
    out = []
    for c in labels[labels >= 0].unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        out.append(idx[torch.randperm(len(idx))[:max(1, int(fraction * len(idx) + 0.5))]])
    return torch.cat(out)


def _first_n(labels, fraction, seed=0):
    """Right counts, reproducible, but not random: the first examples of each class."""
    if not 0 < fraction <= 1:
        raise ValueError("fraction")
    out = []
    for c in labels[labels >= 0].unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        out.append(idx[:max(1, int(fraction * len(idx) + 0.5))])
    return torch.cat(out)


def _accepts_bad_fractions(labels, fraction, seed=0):
    return protocols.label_fraction_indices(labels, min(max(fraction, 0.01), 1.0), seed)


def test_label_subset_check_catches_wrong_versions():
    fails = {fn.__name__: [desc for desc, ok, _ in check_label_subset(fn, show=False).results if not ok]
             for fn in (_not_per_class, _python_round, _unseeded, _first_n, _accepts_bad_fractions)}
    assert any("skewed" in d for d in fails["_not_per_class"])
    assert fails["_python_round"] == ["10% of 4 balanced classes"]   # 25 per class: 2.5 rounds to 2, not 3
    assert len(fails["_unseeded"]) >= 3
    assert fails["_first_n"] == ["10% of 4 balanced classes", "10% of skewed classes (90 / 9 / 3 examples): "
                                 "at least 1 each", "50%, with some unlabelled (-1) examples"]
    assert fails["_accepts_bad_fractions"] == ["fraction 0 is a bad input", "fraction 1.5 is a bad input"]


def _every_second_call(second):
    """Right on odd calls; on even calls (the check's repeat with the same seed) ``second()``."""
    calls = []

    def fn(labels, fraction, seed=0):
        calls.append(1)
        if len(calls) % 2 == 0:
            return second()
        return protocols.label_fraction_indices(labels, fraction, seed)
    return fn


def test_label_subset_second_call_that_breaks_gets_a_fail_line():
    def boom():
        raise RuntimeError("generator exhausted")

    for second, said in ((boom, "raised RuntimeError: generator exhausted"),
                         (lambda: None, "returned NoneType"),
                         (lambda: torch.arange(3), "returned shape (3,)")):
        report = check_label_subset(_every_second_call(second), show=False)  # must not raise
        subset_cases = report.results[:4]
        assert all(not ok and msg.startswith("a second call with the same seed") and said in msg
                   for _, ok, msg in subset_cases), [m for _, _, m in subset_cases]


def test_label_subset_returning_none_gets_a_fail_line():
    report = check_label_subset(lambda labels, fraction, seed=0: None, show=False)
    assert not report.passed and "expected a 1-D int64 tensor" in str(report)
