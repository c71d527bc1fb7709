"""Language models for notebook 07: masked (BERT) and causal (GPT) language modelling.

One tiny Transformer serves both objectives; only the attention mask and the targets differ:

* **MLM**, masked language modelling (Devlin et al. 2018, BERT, arXiv:1810.04805):
  bidirectional attention; 15% of positions are chosen, corrupted (80% ``[MASK]``,
  10% a random token, 10% unchanged) and predicted.
* **CLM**, causal language modelling (Radford et al. 2018/2019, GPT): a causal mask (each
  position sees itself and the past); every position predicts the next token.

The network is ``models.TinyTransformer`` (nanoGPT's model made small, built from the
course's one ``models.TransformerBlock``), made with
``models.build_encoder("char_transformer", vocab_size=..., block_size=..., causal=...)``
so that a saved method can be rebuilt. Attention is written out once there
(``models.attention``) beside PyTorch's fused kernel; this module re-exports
``TinyTransformer``, ``attention`` and ``causal_mask`` for reading convenience. Here are
the data, the losses, the two methods (:class:`CausalLM`, :class:`MaskedLM`) and what is
done with trained models (evaluation, sampling, filling blanks). The notebook's figures
and its fill-in-the-blank lesson live in ``course_utils.lessons.nb07``.

Two rules that tutorial code often breaks:

* ONE ignore index, :data:`IGNORE_INDEX` = -100 (the default of ``F.cross_entropy``), marks
  every position without a target, in both objectives.
* Targets are shifted in exactly ONE place, :func:`clm_shift`, when the data are built.
  Neither the model nor the loss shifts anything.

Shape legend: B batch, T sequence length (tokens = characters here), V vocabulary size,
C (or D) model width, H heads.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .methods.base import Method
from .models import TinyTransformer, attention, causal_mask, check_token_ids, eval_mode

__all__ = ["IGNORE_INDEX", "TinyTransformer", "attention", "causal_mask", "make_windows", "clm_shift",
           "num_to_predict", "mlm_corrupt", "language_data", "lm_loss", "bits_per_character",
           "sequence_log_likelihood", "CausalLM", "MaskedLM", "configure_optimizer", "evaluate_bpc",
           "evaluate_accuracy", "sample_next", "generate", "fill_masks"]

IGNORE_INDEX = -100  # the one "no target here" value, used by every function of this module


# ------------------------------------------------------------------------------ data and targets


def make_windows(ids: torch.Tensor, length: int, stride: int | None = None) -> torch.Tensor:
    """Windows of ``length`` consecutive ids from a text (N,): (num_windows, length), on the
    device of ``ids``. Window w starts at w * stride (default: stride = length, no overlap)."""
    stride = length if stride is None else stride
    if ids.dim() != 1:
        raise ValueError(f"ids must have shape (N,), got {tuple(ids.shape)}")
    if not isinstance(length, int) or length < 1 or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"length and stride must be positive ints, got {length!r} and {stride!r}")
    if length > len(ids):
        raise ValueError(f"length ({length}) is longer than the text ({len(ids)} ids)")
    return ids.unfold(0, length, stride).contiguous()              # (num_windows, length)


def clm_shift(chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """THE one place where targets are shifted: chunk (B, T+1) -> inputs (B, T), targets (B, T).

    Position t of ``inputs`` holds token t; position t of ``targets`` holds token t+1, the
    token that the causal model must predict after reading tokens 0..t."""
    if chunk.dim() != 2 or chunk.shape[1] < 2:
        raise ValueError(f"chunk must have shape (B, T+1) with T+1 >= 2, got {tuple(chunk.shape)}")
    return chunk[:, :-1], chunk[:, 1:]


def num_to_predict(T: int, mask_prob: float) -> int:
    """How many of T positions BERT chooses: round(mask_prob * T), at least 1 when mask_prob > 0."""
    if not 0 <= mask_prob <= 1:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    return max(1, round(mask_prob * T)) if mask_prob > 0 else 0


def mlm_corrupt(ids: torch.Tensor, mask_id: int, num_tokens: int, mask_prob: float = 0.15,
                mask_frac: float = 0.8, random_frac: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking (arXiv:1810.04805, section 3.1 and appendix A.1): ids (B, T) -> inputs, targets.

    In every sequence ``num_to_predict(T, mask_prob)`` positions are chosen uniformly at random.
    Each chosen position becomes ``mask_id`` with probability ``mask_frac`` (80%), a random
    token from [0, num_tokens) with probability ``random_frac`` (10%; it may by chance be the
    original), and stays unchanged otherwise (10%). ``targets`` (B, T) holds the original id at
    the chosen positions and IGNORE_INDEX (-100) everywhere else: the loss sees chosen positions only.

    Random numbers are drawn on ``ids.device`` in this order (a test replays them): noise
    (B, T) that picks the positions, action (B, T) uniform in [0, 1), random ids (B, T).
    """
    if ids.dim() != 2 or ids.dtype != torch.long:
        raise ValueError(f"ids must be a LongTensor of shape (B, T), got {tuple(ids.shape)} {ids.dtype}")
    if isinstance(mask_id, bool) or not isinstance(mask_id, int) or mask_id < 0:
        raise ValueError(f"mask_id must be the [MASK] token's id, an int >= 0 (tokenizer.mask_id), got {mask_id!r}")
    k = num_to_predict(ids.shape[1], mask_prob)
    for name, value in [("mask_frac", mask_frac), ("random_frac", random_frac)]:
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if mask_frac + random_frac > 1:
        raise ValueError(f"mask_frac + random_frac must be <= 1, got {mask_frac} + {random_frac}")
    if not isinstance(num_tokens, int) or num_tokens < 1:
        raise ValueError(f"num_tokens (how many ids a random replacement draws from) must be a positive int, "
                         f"got {num_tokens!r}")
    B, T = ids.shape
    noise = torch.rand(B, T, device=ids.device, generator=generator)               # (B, T)
    chosen = noise.argsort(dim=1).argsort(dim=1) < k          # (B, T): the k smallest noises per row
    action = torch.rand(B, T, device=ids.device, generator=generator)              # (B, T)
    random_ids = torch.randint(0, num_tokens, (B, T), device=ids.device, generator=generator)
    to_mask = chosen & (action < mask_frac)
    to_random = chosen & (action >= mask_frac) & (action < mask_frac + random_frac)
    inputs = ids.masked_fill(to_mask, mask_id)
    inputs = torch.where(to_random, random_ids, inputs)
    targets = ids.masked_fill(~chosen, IGNORE_INDEX)
    return inputs, targets


def language_data(ids: torch.Tensor, block_size: int, objective: str,
                  stride: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A text (N,) -> the (inputs, targets) pair that ``train.train`` batches.

    ``"clm"``: windows of block_size + 1, split by :func:`clm_shift` -> (N_w, T), (N_w, T).
    ``"mlm"``: windows of block_size, returned twice (clean text); the corruption happens
    afresh at every step in :class:`MaskedLM` (dynamic masking, as RoBERTa does).
    ``stride`` defaults to block_size (windows do not overlap)."""
    if objective == "clm":
        return clm_shift(make_windows(ids, block_size + 1, block_size if stride is None else stride))
    if objective == "mlm":
        windows = make_windows(ids, block_size, stride)
        return windows, windows
    raise ValueError(f"objective must be 'clm' or 'mlm', got {objective!r}")


# ------------------------------------------------------------------------------ losses


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over the positions that have a target, in nats (both objectives).

    logits (B, T, V), targets (B, T) with IGNORE_INDEX (-100) where there is nothing to
    predict. ``mean``: average over the targets (an error if there are none: PyTorch would
    return NaN); ``sum``: their total. No shifting here: the targets arrive aligned with
    the logits."""
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V) and targets (B, T); got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    if targets.dtype != torch.long:
        raise ValueError(f"targets must be a LongTensor, got {targets.dtype}")
    bad = (targets < 0) & (targets != IGNORE_INDEX)
    if bad.any():
        raise ValueError(f"targets contain {int(targets[bad][0])}: the only negative target allowed is "
                         f"IGNORE_INDEX = {IGNORE_INDEX} (mixing ignore indices such as -1 and -100 "
                         "is a bug)")
    V = logits.shape[-1]
    if int(targets.max()) >= V:
        raise ValueError(f"targets contain token id {int(targets.max())}, outside the logits' vocabulary of "
                         f"V = {V}; the model's vocab_size must cover every id of the tokenizer")
    if reduction == "mean" and not bool((targets != IGNORE_INDEX).any()):
        raise ValueError(f"every target is IGNORE_INDEX ({IGNORE_INDEX}): there is nothing to predict, and the "
                         "mean would be NaN; check the corruption (MLM) or the shift (CLM) that made the targets")
    return F.cross_entropy(logits.reshape(-1, V).float(), targets.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction=reduction)


def bits_per_character(nats) -> float | torch.Tensor:
    """A cross-entropy in nats per character -> bits per character (divide by ln 2)."""
    return nats / math.log(2)


def sequence_log_likelihood(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(targets) summed over each sequence's targeted positions, in nats: (B, T, V), (B, T) -> (B,)."""
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V) and targets (B, T); got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    logp = logits.float().log_softmax(dim=-1)                                   # (B, T, V)
    keep = targets != IGNORE_INDEX                                              # (B, T)
    picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)    # (B, T)
    return (picked * keep).sum(dim=1)                                           # (B,)


# ------------------------------------------------------------------------------ methods


def _check_encoder(encoder, causal: bool, method: str) -> None:
    """The encoder must be a TinyTransformer with the attention the objective needs."""
    if not isinstance(encoder, TinyTransformer):
        raise ValueError(f"{method} needs a text encoder, models.build_encoder('char_transformer', ...); "
                         f"got {type(encoder).__name__}")
    if encoder.causal != causal:
        why = ("without the mask each position could read the token it must predict" if causal
               else "a blank is filled from the characters on both sides")
        raise ValueError(f"{method} needs a {'causal' if causal else 'bidirectional'} encoder: build it with "
                         f"models.build_encoder('char_transformer', ..., causal={causal}); {why}")


class CausalLM(Method):
    """GPT-style causal language modelling: every position predicts the next token.

    ``encoder``: a causal ``TinyTransformer``. Data: (inputs, targets) from
    :func:`language_data` (``"clm"``), already shifted once."""

    def __init__(self, encoder: TinyTransformer):
        super().__init__(encoder)
        _check_encoder(encoder, True, "CausalLM")

    def logits_and_targets(self, x, y, generator=None):
        """Inputs x (B, T), targets y (B, T) -> logits (B, T, V), targets (B, T)."""
        return self.encoder(x), y

    def training_step(self, batch) -> torch.Tensor:
        x, y = batch                                              # (B, T), (B, T)
        return lm_loss(*self.logits_and_targets(x, y))


class MaskedLM(Method):
    """BERT-style masked language modelling: corrupt 15% of positions, predict their originals.

    ``encoder``: a bidirectional ``TinyTransformer``; ``mask_id``: the id of ``[MASK]``;
    ``num_tokens``: random replacements are drawn from ids [0, num_tokens) (the characters,
    not the special tokens); ``mask_prob``, ``mask_frac``, ``random_frac``: see
    :func:`mlm_corrupt`. Data: (text, text) windows from :func:`language_data` (``"mlm"``);
    the corruption is drawn afresh at every step, so each epoch hides different characters."""

    def __init__(self, encoder: TinyTransformer, mask_id: int, num_tokens: int, mask_prob: float = 0.15,
                 mask_frac: float = 0.8, random_frac: float = 0.1):
        super().__init__(encoder)
        _check_encoder(encoder, False, "MaskedLM")
        if not isinstance(mask_id, int) or not 0 <= mask_id < encoder.vocab_size:
            raise ValueError(f"mask_id {mask_id!r} is outside the encoder's vocabulary "
                             f"[0, {encoder.vocab_size}); pass the tokenizer's mask_id")
        if isinstance(num_tokens, bool) or not isinstance(num_tokens, int) \
                or not 1 <= num_tokens <= encoder.vocab_size:
            raise ValueError(f"num_tokens={num_tokens!r} must be an int in [1, {encoder.vocab_size}] (the "
                             "encoder's vocabulary): random replacements are drawn from ids [0, num_tokens); "
                             "pass the number of characters, e.g. len(tokenizer.chars)")
        num_to_predict(1, mask_prob)  # validates mask_prob
        self.mask_id, self.num_tokens = mask_id, num_tokens
        self.mask_prob, self.mask_frac, self.random_frac = mask_prob, mask_frac, random_frac

    def logits_and_targets(self, x, y=None, generator=None):
        """Clean text x (B, T) -> logits of its corrupted copy (B, T, V), targets (B, T)."""
        inputs, targets = mlm_corrupt(x, self.mask_id, self.num_tokens, self.mask_prob,
                                      self.mask_frac, self.random_frac, generator=generator)
        return self.encoder(inputs), targets

    def training_step(self, batch) -> torch.Tensor:
        x, _ = batch                                              # clean text (B, T), twice
        return lm_loss(*self.logits_and_targets(x))


def configure_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.1,
                        betas=(0.9, 0.99)) -> torch.optim.AdamW:
    """AdamW as nanoGPT sets it up: weight decay on matrices (and embeddings), none on
    LayerNorm weights and biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)


@torch.no_grad()
def _evaluate(method: Method, data, batch_size: int, seed: int) -> tuple[float, int, int]:
    """(total loss in nats, correct top-1 predictions, number of targets) over ``data``, in eval mode."""
    inputs, targets = data
    generator = torch.Generator(device=inputs.device).manual_seed(seed)
    total, correct, count = 0.0, 0, 0
    with eval_mode(method):
        for i in range(0, len(inputs), batch_size):
            logits, t = method.logits_and_targets(inputs[i:i + batch_size], targets[i:i + batch_size],
                                                  generator=generator)
            keep = t != IGNORE_INDEX
            total += lm_loss(logits, t, reduction="sum").item()
            correct += int((logits.argmax(dim=-1) == t)[keep].sum())
            count += int(keep.sum())
    if count == 0:
        raise ValueError("no position of data has a target")
    return total, correct, count


def evaluate_bpc(method: Method, data, batch_size: int = 64, seed: int = 0) -> float:
    """Bits per predicted character on ``data`` (an (inputs, targets) pair), in eval mode.

    Averaged over every target (not over batches). For MLM the corruption uses a generator
    seeded with ``seed``, so repeated evaluations hide the same characters."""
    total, _, count = _evaluate(method, data, batch_size, seed)
    return bits_per_character(total / count)


def evaluate_accuracy(method: Method, data, batch_size: int = 64, seed: int = 0) -> float:
    """How often the most probable character is the right one, over every target of ``data``
    (the next character for CLM, the chosen characters for MLM)."""
    _, correct, count = _evaluate(method, data, batch_size, seed)
    return correct / count


# ------------------------------------------------------------------------------ using the models


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row from logits (B, V) -> (B, 1): softmax(logits / temperature), keeping
    only the ``top_k`` largest logits when given (top_k=1 is greedy decoding)."""
    _check_sampling(temperature, top_k)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (B, V), got {tuple(logits.shape)}")
    logits = logits.float() / temperature
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, [-1]]   # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1)                                               # (B, V)
    return torch.multinomial(probs, 1, generator=generator)                      # (B, 1)


def _check_sampling(temperature, top_k) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r} "
                         "(for greedy decoding use top_k=1)")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")


@torch.no_grad()
def generate(model: TinyTransformer, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, num_tokens: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Continue idx (B, T) by ``max_new_tokens`` sampled tokens -> (B, T + max_new_tokens).

    ``model``: a causal TinyTransformer (a ``CausalLM``'s ``.encoder``). It reads at most
    its last ``block_size`` tokens. ``num_tokens``: sample only ids below it (the
    characters; special tokens such as [MASK] come after them)."""
    if not model.causal:
        raise ValueError("generate needs a causal model: a bidirectional (MLM) model was never "
                         "trained to predict the next character")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    check_token_ids(idx, model.vocab_size)
    _check_sampling(temperature, top_k)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.block_size:])[:, -1, :]             # (B, V): the last position
            if num_tokens is not None:
                logits[:, num_tokens:] = float("-inf")
            idx = torch.cat([idx, sample_next(logits, temperature, top_k, generator)], dim=1)
    return idx


@torch.no_grad()
def fill_masks(model: TinyTransformer, idx: torch.Tensor, mask_id: int, num_tokens: int) -> torch.Tensor:
    """Fill every ``mask_id`` in idx (B, T) with an MLM, most confident blank first.

    ``model``: a bidirectional TinyTransformer (a ``MaskedLM``'s ``.encoder``). Each round
    it reads the whole sequence (both sides of each blank), and the one blank whose best
    character is most probable is filled; then the next round sees it. Only characters
    (ids below ``num_tokens``) are proposed. Returns a filled copy (B, T)."""
    if model.causal:
        raise ValueError("fill_masks needs a bidirectional (MLM) model")
    check_token_ids(idx, model.vocab_size, model.block_size)
    idx = idx.clone()
    with eval_mode(model):
        for b in range(len(idx)):
            while (idx[b] == mask_id).any():
                logits = model(idx[b:b + 1])[0, :, :num_tokens]                   # (T, num_tokens)
                best_p, best_id = logits.softmax(dim=-1).max(dim=-1)              # (T,), (T,)
                best_p = best_p.masked_fill(idx[b] != mask_id, -1.0)              # only blanks compete
                t = int(best_p.argmax())
                idx[b, t] = best_id[t]
    return idx
