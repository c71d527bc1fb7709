"""Exercise checks of notebook 11 (views and modalities: CMC, CLIP, CPC).

    from course_utils.checks import check_clip_loss
    check_clip_loss(my_clip_loss)

Each check runs the learner's function and the package's tested one on the same inputs
(bad inputs included) and prints what differs, case by case.
"""
from __future__ import annotations

from typing import Callable

import torch

from .core import Case, CheckReport, check_function


def _embeddings(B: int, E: int, seed: int, scale_rows: bool = False):
    g = torch.Generator().manual_seed(seed)
    image, text = torch.randn(B, E, generator=g), torch.randn(B, E, generator=g)
    text = text + 1.5 * image[:, torch.randperm(E, generator=g)]      # rows and columns differ
    if scale_rows:                                                     # lengths far from 1
        image = image * (1 + 5 * torch.rand(B, 1, generator=g))
    return image, text


def check_clip_loss(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 11: ``fn(image_emb, text_emb, scale)``, CLIP's symmetric loss (Fig. 3):
    normalise both, logits = scale * I @ T^T, the mean of the cross-entropy over rows and
    over columns with targets 0..B-1; ValueError for a bad scale or mismatched batches."""
    from ..methods.clip import clip_loss

    image, text = _embeddings(8, 5, 0)
    long_image, long_text = _embeddings(6, 4, 1, scale_rows=True)
    cases = [
        Case("random pairs, scale 1/0.07", (image, text, 1 / 0.07)),
        Case("rows and columns differ: both directions needed", (image, text, 3.0)),
        Case("embeddings not of unit length: normalise first", (long_image, long_text, 2.0)),
        Case("one pair: the loss is 0", (image[:1], text[:1], 10.0)),
        Case("every embedding the same: log(B)", (torch.ones(5, 3), torch.ones(5, 3), 7.0)),
        Case("scale 0 is a bad input", (image, text, 0.0), raises=ValueError),
        Case("8 images but 7 captions is a bad input", (image, text[:7], 1.0), raises=ValueError),
    ]
    return check_function(fn, clip_loss, cases, name="clip_loss", show=show)


def _prompts(N: int, K: int, P: int, E: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randn(K, P, E, generator=g) * (1 + 3 * torch.rand(K, P, 1, generator=g))
    return torch.randn(N, E, generator=g), prompts


def check_zero_shot_classifier(fn: Callable, show: bool = True) -> CheckReport:
    """Notebook 11: ``fn(image_emb (N, E), prompt_emb (K, P, E)) -> predicted class (N,)``:
    each class's P prompts normalised, averaged and normalised again (prompt ensembling),
    then each image gets the class of highest cosine similarity."""
    from ..methods.clip import ensemble_prompts, zero_shot_predict

    def reference(image_emb, prompt_emb):
        return zero_shot_predict(image_emb, ensemble_prompts(prompt_emb))

    cases = [
        Case("one prompt per class", _prompts(20, 4, 1, 6, 0)),
        Case("5 prompts per class, of different lengths: normalise each prompt", _prompts(40, 8, 5, 6, 1)),
        Case("image embeddings of any length", (10 * _prompts(30, 3, 4, 5, 2)[0], _prompts(30, 3, 4, 5, 2)[1])),
        Case("(K, E) prompts without the P axis is a bad input", (torch.randn(4, 6), torch.randn(3, 6)),
             raises=ValueError),
    ]
    return check_function(fn, reference, cases, name="zero_shot_classifier", show=show)
