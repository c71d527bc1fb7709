"""Captions for the embedded shapes, and the word-level tokenizer that reads them (notebook 11).

The shapes generator knows what it drew (``data.shape_factors``), so every image can be
described in words: its class, the colour of the shape and of the background, its size and
where it sits. ``make_captions`` writes one caption per image from a few templates, chosen
by a seeded generator, in the order of the images:

    >>> make_captions(torch.tensor([5]), {"colour": torch.tensor([[0.9, 0.1, 0.1]]),
    ...     "background": torch.tensor([[[0.1, 0.2, 0.9], [0.1, 0.3, 0.8]]]),
    ...     "scale": torch.tensor([0.52]), "centre": torch.tensor([[0.0, -0.3]])}, seed=1)
    ['a drawing of a red star on a blue background']

Every word of every template, colour, size and place is in the fixed ``VOCAB``, so a
word-level tokenizer (``CaptionTokenizer``) needs no training and never meets an unknown
word in a caption (a prompt with a word outside it raises an error that names the word).
Real photo data sets (CIFAR-10, STL-10) come with a class label and nothing else: there is
no caption to contrast with, which is why CLIP needed 400 million image-text pairs from the
web (arXiv:2103.00020, Sec. 2.2).
"""
from __future__ import annotations

import random

import torch

from . import validate
from .shapes import SHAPE_CLASSES

__all__ = ["TEMPLATES", "VOCAB", "CaptionTokenizer", "colour_name", "colour_names", "size_name",
           "position_phrase", "make_captions", "caption_data", "COLOUR_NAMES"]

# hue names, one per twelfth of the colour wheel, starting at red (hue 0)
HUES = ("red", "orange", "yellow", "yellow", "green", "green", "cyan", "blue", "blue", "purple", "pink", "red")
COLOUR_NAMES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "grey", "white", "black")

TEMPLATES = (
    "a {size} {colour} {shape} on a {background} background , {position}",
    "a photo of a {colour} {shape} {position}",
    "a drawing of a {colour} {shape} on a {background} background",
    "a picture of a {size} {shape} {position}",
    "a {shape} in {colour} on {background}",
    "{position} there is a {size} {colour} {shape}",
    "the {shape} is {colour} and {size}",
    "a {colour} {shape}",
)
_PLACES = ("near the top", "near the bottom", "on the left", "on the right", "in the middle",
           "in the top left", "in the top right", "in the bottom left", "in the bottom right")
_SIZES = ("small", "medium", "large")
_EXTRA = "a an photo picture drawing of the on in is and there background , shape image".split()
SPECIALS = ("<pad>", "<sot>", "<eot>")


def _vocab() -> tuple[str, ...]:
    words = set(_EXTRA) | set(SHAPE_CLASSES) | set(COLOUR_NAMES) | set(_SIZES)
    for text in TEMPLATES + _PLACES:
        words |= {w for w in text.split() if not w.startswith("{")}
    return SPECIALS + tuple(sorted(words))


VOCAB = _vocab()


# ------------------------------------------------------------------------------ words from factors


def colour_name(rgb) -> str:
    """A colour word for one RGB colour (3,) in [0, 1]: grey, white or black when it has
    little saturation or light, else the name of its hue (twelve sectors of the wheel)."""
    r, g, b = (float(c) for c in rgb)
    hi, lo = max(r, g, b), min(r, g, b)
    if hi < 0.2:
        return "black"
    if hi - lo < 0.12 * hi + 0.05:           # hardly any saturation
        return "white" if hi > 0.85 else "grey"
    if hi == r:
        hue = ((g - b) / (hi - lo)) % 6
    elif hi == g:
        hue = (b - r) / (hi - lo) + 2
    else:
        hue = (r - g) / (hi - lo) + 4
    return HUES[int(hue * 2) % 12]           # hue in [0, 6): 60-degree units, HUES in 30-degree ones


def colour_names(colours: torch.Tensor) -> list[str]:
    """``colour_name`` of every row of ``colours`` (N, 3)."""
    validate.tensor("colours", colours, "(N, 3)")
    if colours.dim() != 2 or colours.shape[1] != 3:
        raise ValueError(f"colours must have shape (N, 3) (RGB in [0, 1]), got {tuple(colours.shape)}")
    return [colour_name(c) for c in colours.tolist()]


def size_name(scale: float) -> str:
    """small / medium / large, for a shape's scale (0.5 to 0.8 of the half-width)."""
    return "small" if scale < 0.6 else ("medium" if scale < 0.7 else "large")


def position_phrase(x: float, y: float, margin: float = 0.12) -> str:
    """Where a shape's centre (x to the right, y downwards, in [-1, 1]) lies, in words."""
    vertical = "top" if y < -margin else ("bottom" if y > margin else "")
    horizontal = "left" if x < -margin else ("right" if x > margin else "")
    if vertical and horizontal:
        return f"in the {vertical} {horizontal}"
    if vertical:
        return f"near the {vertical}"
    return f"on the {horizontal}" if horizontal else "in the middle"


def _article(text: str) -> str:
    """'a' before every word that starts with a consonant sound; 'an' before a vowel."""
    words = text.split()
    for i, w in enumerate(words[:-1]):
        if w == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    return " ".join(words)


def make_captions(labels: torch.Tensor, factors: dict, seed: int = 0) -> list[str]:
    """One caption per image, in order: ``labels`` (N,) class ids and ``factors`` as
    ``data.shape_factors`` gives them (``colour`` (N, 3), ``background`` (N, 2, 3),
    ``scale`` (N,), ``centre`` (N, 2)). The template of each caption is drawn from
    ``random.Random(seed)``: the same seed gives the same captions on every machine."""
    validate.tensor("labels", labels, "(N,)")
    missing = [k for k in ("colour", "background", "scale", "centre") if k not in factors]
    if missing:
        raise ValueError(f"factors is missing {missing}; pass data.shape_factors(split, n) for the same images")
    n = len(labels)
    for k in ("colour", "background", "scale", "centre"):
        if len(factors[k]) != n:
            raise ValueError(f"factors[{k!r}] has {len(factors[k])} rows but labels has {n}: they must "
                             "describe the same images, in the same order")
    if n and (labels.min() < 0 or labels.max() >= len(SHAPE_CLASSES)):
        raise ValueError(f"labels must be class ids in [0, {len(SHAPE_CLASSES)}), got {labels.min()}..{labels.max()}")
    rng = random.Random(seed)
    colours = colour_names(factors["colour"])
    backgrounds = colour_names(factors["background"].mean(1))
    out = []
    for i in range(n):
        words = dict(shape=SHAPE_CLASSES[int(labels[i])], colour=colours[i], background=backgrounds[i],
                     size=size_name(float(factors["scale"][i])), position=position_phrase(*factors["centre"][i].tolist()))
        out.append(_article(rng.choice(TEMPLATES).format(**words)))
    return out


# ------------------------------------------------------------------------------ the tokenizer


class CaptionTokenizer:
    """Word-level tokenizer over the fixed ``VOCAB``: ``<sot> words <eot> <pad>...``.

    ``encode(text) -> (block_size,)`` and ``encode_batch(texts) -> (N, block_size)`` LongTensors;
    ``eot_position(ids)`` finds each sequence's end token (CLIP reads the text feature there)."""

    def __init__(self, block_size: int = 24, vocab=VOCAB):
        self.block_size = validate.integer("block_size", block_size, low=3, example="24 tokens")
        self.vocab = tuple(vocab)
        if self.vocab[:len(SPECIALS)] != SPECIALS:
            raise ValueError(f"vocab must start with the special tokens {SPECIALS}")
        self.stoi = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.sot_id, self.eot_id = 0, 1, 2

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"CaptionTokenizer(vocab_size={self.vocab_size}, block_size={self.block_size})"

    def encode(self, text: str) -> torch.Tensor:
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        words = text.lower().replace(",", " , ").split()
        unknown = [w for w in words if w not in self.stoi]
        if unknown:
            raise ValueError(f"the words {unknown} are not in the caption vocabulary; use words of the "
                             f"templates: {', '.join(self.vocab[len(SPECIALS):])}")
        if len(words) + 2 > self.block_size:
            raise ValueError(f"{text!r} has {len(words)} words; with <sot> and <eot> that is more than "
                             f"block_size={self.block_size}: build the tokenizer with a larger block_size")
        ids = [self.sot_id] + [self.stoi[w] for w in words] + [self.eot_id]
        return torch.tensor(ids + [self.pad_id] * (self.block_size - len(ids)), dtype=torch.long)

    def encode_batch(self, texts) -> torch.Tensor:
        if isinstance(texts, str) or not len(texts):
            raise ValueError("texts must be a non-empty list of str (for one text use encode)")
        return torch.stack([self.encode(t) for t in texts])

    def decode(self, ids) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return " ".join(self.vocab[i] for i in ids if i not in (self.pad_id, self.sot_id, self.eot_id))

    def eot_position(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> the index of each row's first <eot> (B,); a row without one is an error."""
        has = ids == self.eot_id
        if not bool(has.any(1).all()):
            raise ValueError("every row of ids must hold an <eot> token; make them with encode / encode_batch")
        return has.int().argmax(1)


def caption_data(split: str = "train", n: int | None = None, seed: int = 0, tokenizer=None):
    """The shapes with their captions: ((images uint8 (N, 3, H, W), tokens (N, T)), captions).
    The pair goes straight to ``train``/``lesson.run``: each batch is (images, tokens)."""
    from .data import load_images, shape_factors

    tokenizer = tokenizer or CaptionTokenizer()
    images = load_images("shapes", split, n, seed=seed)
    captions = make_captions(images.labels, shape_factors(split, n, seed=seed), seed=seed + (split == "test"))
    return (images.images, tokenizer.encode_batch(captions)), captions
