"""Text for the language notebook: corpora and a character-level tokenizer.

* ``pydoc``: the embedded corpus, the documentation topics that ship with every CPython
  (``pydoc_data.topics``): about 460,000 characters of English prose and code. No download.
* ``shakespeare``: Tiny Shakespeare (1 MB), fetched with
  ``python data_scripts/download.py shakespeare``.
"""
from __future__ import annotations

import string
from pathlib import Path

import torch

from .datasets_io import REMOTE, DatasetNotFound, data_root, fetch

TEXTS = ("pydoc", "shakespeare")
_KEEP = set(string.printable) - set("\r\x0b\x0c")  # printable ASCII, tab and newline


def clean_text(text: str) -> str:
    """Keep printable ASCII and newlines: tabs become 4 spaces, other characters are dropped."""
    text = text.replace("\t", "    ")
    return "".join(ch for ch in text if ch in _KEEP)


def load_text(name: str = "pydoc", root=None, download: bool = False) -> str:
    """A text corpus by name: ``pydoc`` (embedded) or ``shakespeare`` (downloaded once)."""
    if name == "pydoc":
        from pydoc_data.topics import topics

        return clean_text("\n\n".join(topics[k].strip() for k in sorted(topics)))
    if name == "shakespeare":
        path = Path(root or data_root()) / REMOTE["shakespeare"]["folder"] / "input.txt"
        if not path.exists():
            if not download:
                raise DatasetNotFound("shakespeare", path)
            fetch("shakespeare", root)
        return path.read_text(encoding="utf-8")
    raise ValueError(f"unknown text {name!r}; choose one of {TEXTS}")


class CharTokenizer:
    """Characters <-> integer ids. Special tokens (``specials=("[MASK]",)``) follow the characters."""

    def __init__(self, chars, specials=()):
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("chars must not be empty")
        self.chars, self.specials = chars, list(specials)
        self.itos = chars + self.specials
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str, specials=()) -> "CharTokenizer":
        return cls(set(text), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def token_id(self, special: str) -> int:
        if special not in self.specials:
            raise ValueError(f"{special!r} is not a special token of this tokenizer; specials: {self.specials}")
        return len(self.chars) + self.specials.index(special)

    @property
    def mask_id(self) -> int:
        return self.token_id("[MASK]")

    def encode(self, text: str) -> torch.Tensor:
        """str -> LongTensor (N,)."""
        unknown = sorted(set(text) - set(self.stoi))
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:5]!r}; build the tokenizer "
                             "from a text that contains them (CharTokenizer.from_text)")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        """ids (tensor or list) -> str; special tokens appear by name, e.g. [MASK]."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids out of range [0, {self.vocab_size}): {bad[:5]}")
        return "".join(self.itos[i] for i in ids)


def train_val_split(ids: torch.Tensor, val_fraction: float = 0.1):
    """Contiguous split: the last ``val_fraction`` of the text is validation."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(len(ids) * (1 - val_fraction))
    return ids[:cut], ids[cut:]


def random_chunks(ids: torch.Tensor, block_size: int, batch_size: int, generator=None) -> torch.Tensor:
    """``batch_size`` random windows of ``block_size`` consecutive ids: (B, T)."""
    if block_size < 1 or batch_size < 1:
        raise ValueError(f"block_size and batch_size must be >= 1, got {block_size} and {batch_size}")
    if block_size >= len(ids):
        raise ValueError(f"block_size ({block_size}) must be shorter than the text ({len(ids)} ids)")
    starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)
    return torch.stack([ids[s:s + block_size] for s in starts.tolist()])
