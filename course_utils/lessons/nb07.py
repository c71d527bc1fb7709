"""Lesson code of notebook 07 (masked and causal language modelling): the pictures, the
printouts of corrupted and restored text, and the fill-in-the-blank lesson in which the
MLM fills a hidden word and the CLM continues the prefix or judges candidate words by
their likelihood (:func:`score_texts`).

The models, data and losses are in ``course_utils.language`` and ``course_utils.models``.
"""
from __future__ import annotations

import math
import random
import re

import matplotlib.pyplot as plt
import torch

from ..language import IGNORE_INDEX, clm_shift, fill_masks, generate, sequence_log_likelihood
from ..models import TinyTransformer, causal_mask, check_token_ids, eval_mode


@torch.no_grad()
def score_texts(model: TinyTransformer, tokenizer, texts: list[str]) -> torch.Tensor:
    """log p(text) under a causal model, in nats, one per text: (len(texts),).

    Each text's characters after the first are scored given everything before them (the
    first has no context to be predicted from). A text longer than ``block_size + 1``
    characters raises ValueError, as does a character outside the tokenizer's vocabulary."""
    if not model.causal:
        raise ValueError("score_texts needs a causal model (a CausalLM's .encoder)")
    device = next(model.parameters()).device
    scores = []
    with eval_mode(model):
        for text in texts:
            ids = tokenizer.encode(text).to(device)[None]        # (1, T+1)
            if ids.shape[1] < 2:
                raise ValueError(f"a text needs at least 2 characters to be scored, got {text!r}")
            x, y = clm_shift(ids)
            check_token_ids(x, model.vocab_size, model.block_size, name="text")
            scores.append(sequence_log_likelihood(model(x), y)[0])
    return torch.stack(scores).cpu()


def show_corruption(tokenizer, clean: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor,
                    mask_symbol: str = "#") -> str:
    """Three aligned lines for one sequence (T,): the text, what the model reads, and a marker
    per position: M masked, R random token, K kept (chosen but unchanged), blank not chosen.
    Newlines print as the symbol ``|`` and [MASK] as ``mask_symbol``, to keep the columns aligned."""
    def show(ids):
        out = []
        for i in ids.tolist():
            c = tokenizer.itos[i]
            out.append("|" if c == "\n" else (mask_symbol if len(c) > 1 else c))
        return "".join(out)

    chosen = (targets != IGNORE_INDEX).tolist()
    marks = ["M" if ch and len(tokenizer.itos[i]) > 1 else "R" if ch and i != c else "K" if ch else " "
             for ch, i, c in zip(chosen, inputs.tolist(), clean.tolist())]
    return f"text:   {show(clean)}\ninput:  {show(inputs)}\nchosen: {''.join(marks)}"


def show_restoration(tokenizer, clean: torch.Tensor, inputs: torch.Tensor, restored: torch.Tensor,
                     mask_symbol: str = "#") -> str:
    """Four aligned lines for one sequence (T,): the text, the input with its masks, the model's
    restoration, and under each masked position ``+`` (right) or ``x`` (wrong)."""
    def show(ids):
        return "".join("|" if c == "\n" else (mask_symbol if len(c) > 1 else c)
                       for c in (tokenizer.itos[i] for i in ids.tolist()))

    masked = (inputs == tokenizer.mask_id).tolist()
    marks = ["+" if m and r == c else "x" if m else " "
             for m, r, c in zip(masked, restored.tolist(), clean.tolist())]
    return (f"text:     {show(clean)}\ninput:    {show(inputs)}\nrestored: {show(restored)}\n"
            f"          {''.join(marks)}")


def plot_bpc(histories: dict, untrained: dict | None = None, title: str = "Loss in bits per character"):
    """One panel per model: training loss per step (smoothed) and validation after each epoch,
    in bits per character; the untrained model's validation level as a dashed line.

    ``histories``: name -> history from ``train.train`` whose ``eval`` entries hold ``val_bpc``."""
    fig, axes = plt.subplots(1, len(histories), figsize=(5.5 * len(histories), 3.8), squeeze=False)
    for ax, (name, h) in zip(axes[0], histories.items()):
        loss = torch.tensor(h["step_loss"]) / math.log(2)
        steps_per_epoch = len(h["step_loss"]) // max(1, len(h["epoch_loss"]))
        w = max(1, min(20, len(loss) // 10))
        smooth = loss.unfold(0, w, 1).mean(dim=1) if len(loss) >= w else loss
        ax.plot(range(w - 1, w - 1 + len(smooth)), smooth.numpy(), label=f"train (mean of {w} steps)")
        if h.get("eval"):
            ax.plot([e["epoch"] * steps_per_epoch for e in h["eval"]], [e["val_bpc"] for e in h["eval"]],
                    "o-", label="validation")
        if untrained and name in untrained:
            ax.axhline(untrained[name], color="gray", ls="--", lw=1, label="untrained (validation)")
        ax.set(xlabel="training step", ylabel="bits per character", title=name)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_attention_masks(T: int = 8):
    """The two attention patterns side by side: bidirectional (MLM) and causal (CLM)."""
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
    for ax, (name, mask) in zip(axes, [("bidirectional (MLM, BERT)", torch.ones(T, T, dtype=torch.bool)),
                                       ("causal (CLM, GPT)", causal_mask(T))]):
        ax.imshow(mask.float().numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set(title=name, xlabel="key position j (attended to)", ylabel="query position i",
               xticks=range(0, T, 2), yticks=range(0, T, 2))
    fig.suptitle("Which positions each position may attend to (blue = allowed)")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ fill in the blank


def blank_examples(text: str, n: int, block_size: int, word_len=(4, 8), num_candidates: int = 4,
                   seed: int = 0) -> list[dict]:
    """``n`` fill-in-the-blank questions cut from ``text``: one word (letters only, length in
    ``word_len``) with its left and right context, ``prefix + word + suffix`` at most
    ``block_size`` characters, and ``num_candidates`` candidate words of the same length
    (the right one first, the others drawn from the same text).

    Returns dicts with keys ``prefix``, ``word``, ``suffix``, ``candidates``."""
    lo, hi = word_len
    if not 1 <= lo <= hi or hi + 2 > block_size:
        raise ValueError(f"word_len must be (lo, hi) with 1 <= lo <= hi <= block_size - 2, got {word_len}")
    words = [m for m in re.finditer(r"\b[A-Za-z]+\b", text) if lo <= len(m.group()) <= hi]
    by_length: dict[int, list[str]] = {}
    for m in words:
        by_length.setdefault(len(m.group()), []).append(m.group())
    rng = random.Random(seed)
    examples = []
    for m in rng.sample(words, len(words)):
        w = m.group()
        others = sorted(set(by_length[len(w)]) - {w})
        room = block_size - len(w)
        left = min(m.start(), room * 3 // 4)
        if len(others) < num_candidates - 1 or left < room // 2:   # skip words at the very start
            continue
        examples.append({"prefix": text[m.start() - left:m.start()], "word": w,
                         "suffix": text[m.end():m.end() + room - left],
                         "candidates": [w] + rng.sample(others, num_candidates - 1)})
        if len(examples) == n:
            return examples
    raise ValueError(f"text has only {len(examples)} usable words of length {word_len}; ask for fewer")


@torch.no_grad()
def answer_blanks(mlm: TinyTransformer, clm: TinyTransformer, tokenizer, examples: list[dict]) -> list[dict]:
    """Each question answered three ways, each dict extended with:

    ``mlm``: the MLM's fill of the blank (it reads both sides), most confident character first;
    ``clm_continue``: the CLM's greedy continuation of the prefix (it cannot read the suffix);
    ``clm_choice``: the candidate whose complete text the CLM finds most likely (log-likelihood)."""
    device = next(mlm.parameters()).device
    mask_id, num_tokens = tokenizer.mask_id, len(tokenizer.chars)
    answered = []
    for ex in examples:
        n = len(ex["word"])
        blank = torch.full((n,), mask_id, dtype=torch.long)
        ids = torch.cat([tokenizer.encode(ex["prefix"]), blank, tokenizer.encode(ex["suffix"])])
        filled = fill_masks(mlm, ids[None].to(device), mask_id, num_tokens)[0]
        start = len(ex["prefix"])
        prompt = tokenizer.encode(ex["prefix"])[None].to(device)
        cont = generate(clm, prompt, n, top_k=1, num_tokens=num_tokens)[0, -n:]
        scores = score_texts(clm, tokenizer, [ex["prefix"] + c + ex["suffix"] for c in ex["candidates"]])
        answered.append({**ex, "mlm": tokenizer.decode(filled[start:start + n]),
                         "clm_continue": tokenizer.decode(cont),
                         "clm_choice": ex["candidates"][int(scores.argmax())], "scores": scores.tolist()})
    return answered


def blank_rates(answered: list[dict]) -> dict:
    """How often each way of answering (see :func:`answer_blanks`) found the hidden word,
    and the fraction of the hidden characters that the MLM's fill got right."""
    if not answered:
        raise ValueError("answered is empty")

    def exact(key):
        return sum(a[key] == a["word"] for a in answered) / len(answered)

    chars = sum(sum(p == w for p, w in zip(a["mlm"], a["word"])) for a in answered)
    return {"MLM fills the exact word": exact("mlm"),
            "MLM fills the right characters": chars / sum(len(a["word"]) for a in answered),
            "CLM continues with the word": exact("clm_continue"),
            "CLM picks it among the candidates": exact("clm_choice")}
