"""Language models for notebook 07: masked (BERT) and causal (GPT) language modelling.

One tiny Transformer serves both objectives; only the attention mask and the targets differ:

* **MLM**, masked language modelling (Devlin et al. 2018, BERT, arXiv:1810.04805):
  bidirectional attention; 15% of positions are chosen, corrupted (80% ``[MASK]``,
  10% a random token, 10% unchanged) and predicted.
* **CLM**, causal language modelling (Radford et al. 2018/2019, GPT): a causal mask (each
  position sees itself and the past); every position predicts the next token.

The model follows karpathy/nanoGPT ``model.py`` (pre-norm blocks, tied input and output
embeddings, GPT-2 initialisation) and is written to be read: ``B, T, C = x.shape`` at the
top of ``forward``, shapes in trailing comments. Attention is written out once
(:func:`attention`) beside PyTorch's fused ``F.scaled_dot_product_attention`` (flash
attention on a GPU); the tests check that the two agree.

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

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_INDEX = -100  # the one "no target here" value, used by every function of this module

# ------------------------------------------------------------------------------ attention


def causal_mask(T: int, device=None) -> torch.Tensor:
    """(T, T) bool, True where query i may attend to key j, i.e. j <= i (lower triangle)."""
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
              dropout_p: float = 0.0) -> torch.Tensor:
    """Scaled dot-product attention written out (Vaswani et al. 2017, arXiv:1706.03762, eq. 1).

    q, k, v: (B, H, T, hd) -> (B, H, T, hd); softmax(q k^T / sqrt(hd)) v, with the future
    keys set to -inf before the softmax when ``causal``. Equal to
    ``F.scaled_dot_product_attention(q, k, v, is_causal=causal)`` (tested).
    """
    if q.dim() != 4 or q.shape != k.shape or k.shape != v.shape:
        raise ValueError(f"q, k, v must share one shape (B, H, T, hd); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if not 0 <= dropout_p < 1:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    T, hd = q.shape[-2:]
    att = q @ k.transpose(-2, -1) / math.sqrt(hd)                           # (B, H, T, T)
    if causal:
        att = att.masked_fill(~causal_mask(T, q.device), float("-inf"))     # no peeking ahead
    att = att.softmax(dim=-1)                                               # rows sum to 1
    att = F.dropout(att, dropout_p) if dropout_p > 0 else att
    return att @ v                                                          # (B, H, T, hd)


class SelfAttention(nn.Module):
    """Multi-head self-attention: one linear map makes q, k, v for all heads at once.

    ``flash=True`` calls ``F.scaled_dot_product_attention`` (fused; flash attention on a
    GPU), ``flash=False`` the written-out :func:`attention`; same numbers, same weights."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, flash: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.dropout, self.flash = num_heads, dropout, flash
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        B, T, C = x.shape
        H = self.num_heads
        q, k, v = self.qkv(x).split(C, dim=2)                     # 3 x (B, T, C)
        q = q.view(B, T, H, C // H).transpose(1, 2)               # (B, H, T, hd)
        k = k.view(B, T, H, C // H).transpose(1, 2)               # (B, H, T, hd)
        v = v.view(B, T, H, C // H).transpose(1, 2)               # (B, H, T, hd)
        p = self.dropout if self.training else 0.0
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=causal)
        else:
            y = attention(q, k, v, causal=causal, dropout_p=p)    # (B, H, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)          # heads side by side again
        return self.resid_drop(self.proj(y))                      # (B, T, C)


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, flash: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, dropout, flash)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim, bias=False), nn.GELU(),
                                 nn.Linear(4 * dim, dim, bias=False), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        x = x + self.attn(self.ln1(x), causal)
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """A character-level Transformer language model (nanoGPT's ``GPT`` made small).

    ``causal=True``: GPT-style, each position sees itself and the past (for CLM).
    ``causal=False``: BERT-style, each position sees the whole sequence (for MLM).
    ``forward(idx (B, T)) -> logits (B, T, V)``, T <= ``block_size``; the output layer shares
    its weights with the token embedding (weight tying, as in GPT-2 and BERT).
    """

    def __init__(self, vocab_size: int, block_size: int, dim: int = 128, depth: int = 4,
                 num_heads: int = 4, dropout: float = 0.0, causal: bool = True, flash: bool = True):
        super().__init__()
        for name, value in [("vocab_size", vocab_size), ("block_size", block_size), ("dim", dim),
                            ("depth", depth), ("num_heads", num_heads)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.block_size, self.causal = vocab_size, block_size, causal
        self.tok_emb = nn.Embedding(vocab_size, dim)
        self.pos_emb = nn.Embedding(block_size, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, num_heads, dropout, flash) for _ in range(depth))
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying
        self.apply(_init_weights)
        for name, p in self.named_parameters():    # GPT-2: residual projections scaled by depth
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _, T = _check_ids(idx, self.vocab_size, self.block_size)      # idx: (B, T)
        pos = torch.arange(T, device=idx.device)                       # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))           # (B, T, C)
        for block in self.blocks:
            x = block(x, self.causal)                                  # (B, T, C)
        return self.lm_head(self.ln_f(x))                              # (B, T, V)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameters (shared ones once); without the position embedding by default, as nanoGPT counts."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.pos_emb.weight.numel() if non_embedding else n


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def _check_ids(idx: torch.Tensor, vocab_size: int, block_size: int | None = None, name: str = "idx"):
    """Token ids (B, T): integer dtype, values in [0, vocab_size), T <= block_size. Returns (B, T)."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        got = f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"{name} must be a LongTensor of token ids with shape (B, T), got {got}")
    B, T = idx.shape
    if T == 0:
        raise ValueError(f"{name} is empty: it needs at least one token")
    if block_size is not None and T > block_size:
        raise ValueError(f"sequence length {T} is longer than the context: the model was built with "
                         f"block_size={block_size}; cut the text into windows of at most {block_size} tokens")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} contains token id {lo if lo < 0 else hi}, outside the vocabulary "
                         f"[0, {vocab_size})")
    return B, T


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
    predict. ``mean``: average over the targets (NaN if there are none, as in PyTorch);
    ``sum``: their total. No shifting here: the targets arrive aligned with the logits."""
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


class CausalLM(nn.Module):
    """GPT-style causal language modelling: every position predicts the next token.

    Data: (inputs, targets) from :func:`language_data` (``"clm"``), already shifted once."""

    def __init__(self, model: TinyTransformer):
        super().__init__()
        if not model.causal:
            raise ValueError("CausalLM needs a causal model (TinyTransformer(..., causal=True)): "
                             "without the mask each position could read the token it must predict")
        self.model = model

    def logits_and_targets(self, x, y, generator=None):  # x, y: (B, T)
        return self.model(x), y

    def training_step(self, x, y):
        return lm_loss(*self.logits_and_targets(x, y))


class MaskedLM(nn.Module):
    """BERT-style masked language modelling: corrupt 15% of positions, predict their originals.

    Data: (text, text) windows from :func:`language_data` (``"mlm"``); the corruption is drawn
    afresh at every step, so each epoch hides different characters."""

    def __init__(self, model: TinyTransformer, mask_id: int, num_tokens: int, mask_prob: float = 0.15,
                 mask_frac: float = 0.8, random_frac: float = 0.1):
        super().__init__()
        if model.causal:
            raise ValueError("MaskedLM needs a bidirectional model (TinyTransformer(..., causal=False)): "
                             "a blank is filled from the characters on both sides")
        if not 0 <= mask_id < model.vocab_size:
            raise ValueError(f"mask_id {mask_id} is outside the model's vocabulary [0, {model.vocab_size})")
        num_to_predict(1, mask_prob)  # validates mask_prob
        self.model, self.mask_id, self.num_tokens = model, mask_id, num_tokens
        self.mask_prob, self.mask_frac, self.random_frac = mask_prob, mask_frac, random_frac

    def logits_and_targets(self, x, y=None, generator=None):  # x: clean text (B, T)
        inputs, targets = mlm_corrupt(x, self.mask_id, self.num_tokens, self.mask_prob,
                                      self.mask_frac, self.random_frac, generator=generator)
        return self.model(inputs), targets

    def training_step(self, x, y):
        return lm_loss(*self.logits_and_targets(x, y))


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
def _evaluate(method: nn.Module, data, batch_size: int, seed: int) -> tuple[float, int, int]:
    """(total loss in nats, correct top-1 predictions, number of targets) over ``data``, in eval mode."""
    inputs, targets = data
    was_training = method.training
    method.eval()
    generator = torch.Generator(device=inputs.device).manual_seed(seed)
    total, correct, count = 0.0, 0, 0
    for i in range(0, len(inputs), batch_size):
        logits, t = method.logits_and_targets(inputs[i:i + batch_size], targets[i:i + batch_size],
                                              generator=generator)
        keep = t != IGNORE_INDEX
        total += lm_loss(logits, t, reduction="sum").item()
        correct += int((logits.argmax(dim=-1) == t)[keep].sum())
        count += int(keep.sum())
    method.train(was_training)
    if count == 0:
        raise ValueError("no position of data has a target")
    return total, correct, count


def evaluate_bpc(method: nn.Module, data, batch_size: int = 64, seed: int = 0) -> float:
    """Bits per predicted character on ``data`` (an (inputs, targets) pair), in eval mode.

    Averaged over every target (not over batches). For MLM the corruption uses a generator
    seeded with ``seed``, so repeated evaluations hide the same characters."""
    total, _, count = _evaluate(method, data, batch_size, seed)
    return bits_per_character(total / count)


def evaluate_accuracy(method: nn.Module, data, batch_size: int = 64, seed: int = 0) -> float:
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

    The model reads at most its last ``block_size`` tokens. ``num_tokens``: sample only ids
    below it (the characters; special tokens such as [MASK] come after them)."""
    if not model.causal:
        raise ValueError("generate needs a causal model: a bidirectional (MLM) model was never "
                         "trained to predict the next character")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    _check_ids(idx, model.vocab_size)
    _check_sampling(temperature, top_k)
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        logits = model(idx[:, -model.block_size:])[:, -1, :]             # (B, V): the last position
        if num_tokens is not None:
            logits[:, num_tokens:] = float("-inf")
        idx = torch.cat([idx, sample_next(logits, temperature, top_k, generator)], dim=1)
    model.train(was_training)
    return idx


@torch.no_grad()
def fill_masks(model: TinyTransformer, idx: torch.Tensor, mask_id: int, num_tokens: int) -> torch.Tensor:
    """Fill every ``mask_id`` in idx (B, T) with an MLM, most confident blank first.

    Each round the model reads the whole sequence (both sides of each blank), and the one
    blank whose best character is most probable is filled; then the next round sees it.
    Only characters (ids below ``num_tokens``) are proposed. Returns a filled copy (B, T)."""
    if model.causal:
        raise ValueError("fill_masks needs a bidirectional (MLM) model")
    _check_ids(idx, model.vocab_size, model.block_size)
    was_training = model.training
    model.eval()
    idx = idx.clone()
    for b in range(len(idx)):
        while (idx[b] == mask_id).any():
            logits = model(idx[b:b + 1])[0, :, :num_tokens]                   # (T, num_tokens)
            best_p, best_id = logits.softmax(dim=-1).max(dim=-1)              # (T,), (T,)
            best_p = best_p.masked_fill(idx[b] != mask_id, -1.0)              # only blanks compete
            t = int(best_p.argmax())
            idx[b, t] = best_id[t]
    model.train(was_training)
    return idx


@torch.no_grad()
def score_texts(model: TinyTransformer, tokenizer, texts: list[str]) -> torch.Tensor:
    """log p(text) under a causal model, in nats, one per text: (len(texts),).

    Each text's characters after the first are scored given everything before them (the
    first has no context to be predicted from). A text longer than ``block_size + 1``
    characters raises ValueError, as does a character outside the tokenizer's vocabulary."""
    if not model.causal:
        raise ValueError("score_texts needs a causal model")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for text in texts:
        ids = tokenizer.encode(text).to(device)[None]        # (1, T+1)
        if ids.shape[1] < 2:
            raise ValueError(f"a text needs at least 2 characters to be scored, got {text!r}")
        x, y = clm_shift(ids)
        _check_ids(x, model.vocab_size, model.block_size, name="text")
        scores.append(sequence_log_likelihood(model(x), y)[0])
    model.train(was_training)
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
    import random
    import re

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
