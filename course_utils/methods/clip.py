"""CLIP (Radford et al. 2021, arXiv:2103.00020): contrast an image with its caption.

An image encoder and a text encoder each map their input to an embedding; on a batch of
B (image, caption) pairs the B x B matrix of cosine similarities, times a learned scale,
is read as logits twice: each image must pick its caption among the B captions, and each
caption its image among the B images (the symmetric InfoNCE of the paper's Fig. 3).

    images (B, C, H, W) -> image encoder -> (B, D) -> W_i -> normalise -> I (B, E)
    tokens (B, T)       -> text encoder  -> h at <eot> (B, D_t) -> W_t -> normalise -> T (B, E)
    logits = exp(t) * I @ T^T  (B, B);  loss = (CE(logits, arange) + CE(logits^T, arange)) / 2

The temperature is learned as a log scale ``t``, initialised to log(1 / 0.07) and clipped
so that exp(t) never exceeds 100 (Sec. 2.5). With no label at all, the text encoder then
turns class names into a classifier: embed "a photo of a {class}" for every class and give
each image the class whose prompt is nearest (zero-shot classification, Sec. 3.1).

Shape legend: B batch, E joint embedding width, K classes, T tokens, C/H/W image.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from ..captions import VOCAB
from ..models import TinyTransformer, eval_mode
from .base import Method, channels_last

__all__ = ["CLIP", "clip_logits", "clip_loss", "zero_shot_weights", "ensemble_prompts", "zero_shot_predict", "retrieval_recall",
           "embed_images", "embed_texts"]


def _check_embeddings(image_emb, text_emb) -> None:
    validate.tensor("image_emb", image_emb, "(B, E)")
    validate.tensor("text_emb", text_emb, "(B, E)")
    if image_emb.dim() != 2 or text_emb.dim() != 2 or image_emb.shape != text_emb.shape or not len(image_emb):
        raise ValueError(f"image_emb and text_emb must both have shape (B, E), B >= 1, one row per (image, "
                         f"caption) pair in the same order; got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}")


def clip_logits(image_emb: torch.Tensor, text_emb: torch.Tensor, scale) -> torch.Tensor:
    """scale * cos(I_i, T_j): (B, B), row i = image i against every caption. The embeddings
    are L2-normalised here (Fig. 3: ``I_e = l2_normalize(...)``); ``scale`` is exp(t) > 0."""
    _check_embeddings(image_emb, text_emb)
    validate.number("scale", scale, example="1 / 0.07, i.e. logit_scale.exp()")
    image_emb, text_emb = F.normalize(image_emb.float(), dim=1), F.normalize(text_emb.float(), dim=1)
    return scale * image_emb @ text_emb.t()


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, scale) -> torch.Tensor:
    """CLIP's symmetric loss (arXiv:2103.00020, Fig. 3): the mean of the image-to-text and
    the text-to-image cross-entropies over the logits ``clip_logits``; pair i is the positive
    of row i and of column i. image_emb, text_emb: (B, E); ``scale``: exp(t), a number or a
    0-d tensor (gradients flow to it). In [0, ...); log(B) when every embedding is the same."""
    validate.number("scale", scale, example="1 / 0.07, i.e. logit_scale.exp()")
    logits = clip_logits(image_emb, text_emb, 1.0) * scale              # (B, B); keeps scale's gradient
    targets = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


class CLIP(Method):
    """``encoder``: the image encoder (any encoder of ``models``). The text encoder is a small
    causal ``TinyTransformer`` built here (its feature is the hidden state at ``<eot>``, as in
    the paper); linear projections map both into a joint space of ``embed_dim``.

    ``init_temperature``: 0.07 (the paper's); ``max_scale``: the clip on exp(t), 100;
    ``learn_temperature=False`` keeps it fixed. ``transform``: an optional image augmentation
    (CLIP used only a random crop). Batches are (images, caption tokens (B, T))."""

    def __init__(self, encoder: nn.Module, vocab_size: int = len(VOCAB), block_size: int = 24, text_dim: int = 64,
                 text_depth: int = 2, text_heads: int = 4, embed_dim: int = 64, init_temperature: float = 0.07,
                 max_scale: float = 100.0, learn_temperature: bool = True, eot_id: int = 2, transform=None):
        super().__init__(encoder, transform)
        validate.number("init_temperature", init_temperature, example="0.07")
        validate.number("max_scale", max_scale, low=1.0, example="100")
        validate.integer("embed_dim", embed_dim, example="64")
        if 1 / init_temperature > max_scale:
            raise ValueError(f"1 / init_temperature = {1 / init_temperature:g} is above max_scale={max_scale:g}; "
                             "raise max_scale or init_temperature")
        self.text_encoder = TinyTransformer(vocab_size, block_size, dim=text_dim, depth=text_depth,
                                            num_heads=text_heads, causal=True)
        self.image_projection = nn.Linear(encoder.num_features, embed_dim, bias=False)
        self.text_projection = nn.Linear(text_dim, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)), requires_grad=learn_temperature)
        self.max_scale, self.eot_id = max_scale, eot_id

    @property
    def scale(self) -> torch.Tensor:
        """exp(t), the inverse temperature (0-d tensor)."""
        return self.logit_scale.exp()

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, H, W) -> (B, E), unit rows
        return F.normalize(self.image_projection(self.encoder.forward_features(x)), dim=1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, E), unit rows
        h = self.text_encoder.hidden(tokens)                          # (B, T, D_t), causal
        has_eot = tokens == self.eot_id
        if not bool(has_eot.any(1).all()):
            raise ValueError("every caption must end with the <eot> token; encode captions with CaptionTokenizer")
        end = has_eot.int().argmax(1)                                  # (B,): the first <eot>
        return F.normalize(self.text_projection(h[torch.arange(len(h), device=h.device), end]), dim=1)

    def training_step(self, batch):
        x, tokens = batch
        if self.transform is not None:
            x = channels_last(self.transform(x))
        loss = clip_loss(self.encode_image(x), self.encode_text(tokens), self.scale)
        return {"loss": loss, "scale": self.scale.detach()}

    def after_step(self, step: int, total_steps: int) -> None:
        """Clip t to [0, log(max_scale)] after every step, so exp(t) stays in [1, max_scale]."""
        with torch.no_grad():
            self.logit_scale.clamp_(0, math.log(self.max_scale))


# ------------------------------------------------------------------------------ using the embeddings


@torch.no_grad()
def embed_images(model: CLIP, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Unit image embeddings (N, E) of images (N, C, H, W) (uint8 or float in [0, 1]), in eval mode."""
    device = next(model.parameters()).device
    with eval_mode(model):
        out = [model.encode_image((x.float() / 255 if x.dtype == torch.uint8 else x).to(device))
               for x in images.split(batch_size)]
    return torch.cat(out)


@torch.no_grad()
def embed_texts(model: CLIP, tokens: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Unit text embeddings (N, E) of token ids (N, T), in eval mode."""
    device = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat([model.encode_text(t.to(device)) for t in tokens.split(batch_size)])


def zero_shot_weights(model: CLIP, tokenizer, classnames, templates=("a photo of a {}",)) -> torch.Tensor:
    """The zero-shot classifier (K, E): for each class, the prompts ``template.format(name)``
    embedded, averaged over the templates (prompt ensembling, Sec. 3.1.4) and normalised."""
    if isinstance(templates, str) or not len(templates) or not all("{}" in t for t in templates):
        raise ValueError(f"templates must be a non-empty list of str, each with one '{{}}' for the class "
                         f"name, e.g. ['a photo of a {{}}']; got {templates!r}")
    texts = [t.format(name) for name in classnames for t in templates]
    emb = embed_texts(model, tokenizer.encode_batch(texts))                        # (K P, E)
    return ensemble_prompts(emb.view(len(classnames), len(templates), -1))


def ensemble_prompts(prompt_emb: torch.Tensor) -> torch.Tensor:
    """Prompt ensembling (Sec. 3.1.4): prompt embeddings (K, P, E), P prompts per class ->
    one unit vector per class (K, E), the normalised mean of the normalised prompts."""
    validate.tensor("prompt_emb", prompt_emb, "(K, P, E)")
    if prompt_emb.dim() != 3 or 0 in prompt_emb.shape:
        raise ValueError(f"prompt_emb must have shape (K classes, P prompts, E), got {tuple(prompt_emb.shape)}")
    return F.normalize(F.normalize(prompt_emb, dim=2).mean(1), dim=1)


def zero_shot_predict(image_emb: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The class of each image (N,): the prompt embedding (row of ``weights`` (K, E)) most
    similar to its embedding (N, E)."""
    validate.tensor("image_emb", image_emb, "(N, E)")
    validate.tensor("weights", weights, "(K, E)")
    if image_emb.dim() != 2 or weights.dim() != 2 or image_emb.shape[1] != weights.shape[1]:
        raise ValueError(f"image_emb (N, E) and weights (K, E) must share E; got {tuple(image_emb.shape)} "
                         f"and {tuple(weights.shape)}")
    return (F.normalize(image_emb, dim=1) @ F.normalize(weights, dim=1).t()).argmax(1)


def retrieval_recall(query_emb: torch.Tensor, key_emb: torch.Tensor, k: int = 1, same=None) -> float:
    """Recall@k: the share of queries i whose own key i is among their k most similar keys.
    ``same`` (N, N) bool, optional: which keys count as a hit for a query (e.g. an identical caption)."""
    _check_embeddings(query_emb, key_emb)
    validate.integer("k", k, example="1 or 5")
    sim = F.normalize(query_emb, dim=1) @ F.normalize(key_emb, dim=1).t()
    top = sim.topk(min(k, len(sim)), dim=1).indices                               # (N, k)
    hit = same if same is not None else torch.eye(len(sim), dtype=torch.bool, device=sim.device)
    return hit.gather(1, top).any(1).float().mean().item()
