"""Text for the language notebooks: corpora and a character-level tokenizer.

* ``pydoc``: the embedded corpus, the documentation topics that ship with every CPython
  (``pydoc_data.topics``): about 460,000 characters of English prose and code (the exact
  text differs a little between Python versions). No download.
* ``shakespeare``: Tiny Shakespeare (1.1 MB), fetched with
  ``python -m course_utils.download shakespeare``.

Both come back through :func:`clean_text`, so their characters are printable ASCII and ``\\n``.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import torch

from .datasets_io import REMOTE, DatasetNotFound, data_root
from .download import fetch

TEXTS = ("pydoc", "shakespeare")

# typographic characters with a plain-ASCII spelling; anything else outside ASCII is
# decomposed (e -> e + accent, the accent then dropped) or dropped
_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                        "\u2014": "--", "\u2026": "...", "\u00a0": " ", "\u00df": "ss", "\t": "    "})


def clean_text(text: str) -> str:
    """Printable ASCII (32..126) and ``\\n`` only: curly quotes -> straight, dashes -> ``-`` / ``--``,
    ``...`` for the ellipsis, tabs -> 4 spaces, ``\\r\\n`` -> ``\\n``, accents dropped (é -> e),
    any other character removed."""
    text = text.replace("\r\n", "\n").translate(_ASCII)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if ch == "\n" or " " <= ch <= "~")


@lru_cache(maxsize=1)
def _pydoc_corpus() -> str:
    from pydoc_data.topics import topics

    return clean_text("\n\n".join(topics[k].strip() for k in sorted(topics)))  # sorted: deterministic


def load_text(name: str = "pydoc", root=None, download: bool = False) -> str:
    """A text corpus by name: ``pydoc`` (embedded) or ``shakespeare`` (downloaded once)."""
    if name == "pydoc":
        return _pydoc_corpus()
    if name == "shakespeare":
        path = Path(root or data_root()) / REMOTE["shakespeare"]["folder"] / "input.txt"
        if not path.exists():
            if not download:
                raise DatasetNotFound("shakespeare", path)
            fetch("shakespeare", root)
        return clean_text(path.read_text(encoding="utf-8"))
    raise ValueError(f"unknown text {name!r}; choose one of {TEXTS}")


class CharTokenizer:
    """Characters <-> integer ids, one id per character (sorted), then the special tokens.

    ``specials=("[MASK]",)`` reserves ids after the characters (``mask_id``, ``token_id(name)``);
    ``encode`` only maps characters (put special ids in with tensor code), and ``decode``
    writes a special token by its name, e.g. ``"to be or [MASK]ot"``.

    >>> tok = CharTokenizer.from_text("hello world", specials=("[MASK]",))
    >>> tok.vocab_size, tok.encode("hello").tolist(), tok.decode([3, tok.mask_id])
    (9, [3, 2, 4, 4, 5], 'h[MASK]')
    """

    def __init__(self, chars, specials=()):
        chars = sorted(set(chars))
        if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError(f"chars must be a non-empty collection of single characters, got {chars[:5]!r}")
        specials = list(specials)
        if len(set(specials)) != len(specials) or set(specials) & set(chars) or "" in specials:
            raise ValueError("specials must be distinct, non-empty and not characters of the text, "
                             f"got {specials}")
        self.chars, self.specials = chars, specials
        self.itos = chars + specials                      # id -> character or special token
        self.stoi = {c: i for i, c in enumerate(chars)}   # character -> id

    @classmethod
    def from_text(cls, text: str, specials=()) -> CharTokenizer:
        """The vocabulary of ``text``: every character that occurs in it."""
        return cls(set(text), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, specials={self.specials})"

    def token_id(self, special: str) -> int:
        """The id of special token ``special``."""
        if special not in self.specials:
            raise ValueError(f"{special!r} is not a special token of this tokenizer; its specials are "
                             f"{self.specials}. Build it with specials=({special!r},)")
        return len(self.chars) + self.specials.index(special)

    @property
    def mask_id(self) -> int:
        """The id of ``[MASK]`` (an AttributeError without one, so ``hasattr`` works)."""
        if "[MASK]" not in self.specials:
            raise AttributeError("this tokenizer has no [MASK] special token; build it with "
                                 "CharTokenizer.from_text(text, specials=('[MASK]',))")
        return self.token_id("[MASK]")

    def encode(self, text: str) -> torch.Tensor:
        """str -> LongTensor (N,), one id per character."""
        try:
            return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)
        except KeyError:
            unknown = sorted(set(text) - set(self.stoi))
            raise ValueError(f"{len(unknown)} character(s) not in the vocabulary, e.g. {unknown[:5]!r}; "
                             "build the tokenizer from a text that contains them "
                             "(CharTokenizer.from_text(text)) or clean the text first (clean_text)") from None

    def decode(self, ids) -> str:
        """ids: (N,) tensor or list of ints -> str; special tokens appear by name, e.g. ``[MASK]``."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        if any(isinstance(i, list) for i in ids):
            raise ValueError("decode takes one sequence (N,); decode a batch (B, T) row by row")
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids out of range [0, {self.vocab_size}): {bad[:5]}")
        return "".join(self.itos[i] for i in ids)


def train_val_split(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous split of ids (N,): the first part trains, the last ``val_fraction`` validates
    (a random split would leak: neighbouring windows share almost all their characters)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if ids.dim() != 1:
        raise ValueError(f"ids must have shape (N,), got {tuple(ids.shape)}")
    cut = int(len(ids) * (1 - val_fraction))
    if not 0 < cut < len(ids):
        raise ValueError(f"{len(ids)} ids are too few to split with val_fraction={val_fraction}")
    return ids[:cut], ids[cut:]


def random_chunks(ids: torch.Tensor, block_size: int, batch_size: int,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch_size`` random windows of ``block_size`` consecutive ids from ids (N,): (B, T),
    on the device of ``ids``. For next-character prediction ask for ``block_size + 1`` and
    shift once, with ``language.clm_shift``; the model and the loss never shift."""
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"block_size and batch_size must be >= 1, got {block_size} and {batch_size}")
    if ids.dim() != 1:
        raise ValueError(f"ids must have shape (N,), got {tuple(ids.shape)}")
    if block_size >= len(ids):
        raise ValueError(f"block_size ({block_size}) must be shorter than the text ({len(ids)} ids)")
    B, T = batch_size, block_size
    device = generator.device if generator is not None else "cpu"
    starts = torch.randint(0, len(ids) - T + 1, (B,), generator=generator, device=device)  # (B,)
    offsets = starts[:, None] + torch.arange(T, device=device)                            # (B, T)
    return ids[offsets.to(ids.device)]                                                    # (B, T)
