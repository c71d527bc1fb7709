"""The exercise checks of notebook 11 pass the package's functions, fail typical wrong
answers with a useful message, and report stubs as not implemented."""
import torch
import torch.nn.functional as F

from course_utils.checks import check_clip_loss, check_zero_shot_classifier
from course_utils.methods.clip import clip_loss, ensemble_prompts, zero_shot_predict


def _failed(report):
    return {desc: msg for desc, ok, msg in report.results if not ok}


def test_package_functions_pass():
    assert check_clip_loss(clip_loss, show=False).passed

    def classifier(image_emb, prompt_emb):
        return zero_shot_predict(image_emb, ensemble_prompts(prompt_emb))
    assert check_zero_shot_classifier(classifier, show=False).passed


def test_stubs_are_not_implemented():
    def stub(*args):
        raise NotImplementedError
    for check in (check_clip_loss, check_zero_shot_classifier):
        report = check(stub, show=False)
        assert not report.passed and report.results[0][2] == "not implemented yet"


def _checked(image_emb, text_emb, scale):
    if image_emb.shape != text_emb.shape or not scale > 0:
        raise ValueError("bad input")
    return image_emb, text_emb


def test_one_direction_only_fails():
    def one_way(image_emb, text_emb, scale):
        I, T = _checked(F.normalize(image_emb, dim=1), F.normalize(text_emb, dim=1), scale)
        return F.cross_entropy(scale * I @ T.t(), torch.arange(len(I)))
    failed = _failed(check_clip_loss(one_way, show=False))
    assert "rows and columns differ: both directions needed" in failed
    assert "values differ" in failed["rows and columns differ: both directions needed"]


def test_without_normalising_fails_only_where_lengths_matter():
    def raw(image_emb, text_emb, scale):
        I, T = _checked(image_emb, text_emb, scale)
        logits = scale * I @ T.t()
        y = torch.arange(len(I))
        return (F.cross_entropy(logits, y) + F.cross_entropy(logits.t(), y)) / 2
    failed = _failed(check_clip_loss(raw, show=False))
    assert "embeddings not of unit length: normalise first" in failed
    assert "one pair: the loss is 0" not in failed


def test_accepting_bad_inputs_fails_those_cases():
    def unchecked(image_emb, text_emb, scale):
        I, T = F.normalize(image_emb, dim=1), F.normalize(text_emb, dim=1)
        n = min(len(I), len(T))
        logits = scale * I[:n] @ T[:n].t()
        y = torch.arange(n)
        return (F.cross_entropy(logits, y) + F.cross_entropy(logits.t(), y)) / 2
    failed = _failed(check_clip_loss(unchecked, show=False))
    assert set(failed) == {"scale 0 is a bad input", "8 images but 7 captions is a bad input"}
    assert all("accepts this bad input" in m for m in failed.values())


def test_zero_shot_without_normalising_each_prompt_fails():
    def mean_first(image_emb, prompt_emb):
        if prompt_emb.dim() != 3:
            raise ValueError("prompt_emb must be (K, P, E)")
        w = F.normalize(prompt_emb.mean(1), dim=1)               # averages raw prompts: long ones dominate
        return (F.normalize(image_emb, dim=1) @ w.t()).argmax(1)
    failed = _failed(check_zero_shot_classifier(mean_first, show=False))
    assert "5 prompts per class, of different lengths: normalise each prompt" in failed
    assert "one prompt per class" not in failed


def test_zero_shot_by_dot_product_with_one_prompt_fails():
    def first_prompt(image_emb, prompt_emb):
        if prompt_emb.dim() != 3:
            raise ValueError("prompt_emb must be (K, P, E)")
        return (image_emb @ prompt_emb[:, 0].t()).argmax(1)       # no ensemble, no normalising
    failed = _failed(check_zero_shot_classifier(first_prompt, show=False))
    assert "5 prompts per class, of different lengths: normalise each prompt" in failed
    assert "entries differ" in failed["5 prompts per class, of different lengths: normalise each prompt"]
