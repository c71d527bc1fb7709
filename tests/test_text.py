import doctest

import pytest
import torch

from course_utils import text
from course_utils.datasets_io import DatasetNotFound


def test_pydoc_corpus_is_embedded_deterministic_and_clean():
    a, b = text.load_text("pydoc"), text.load_text()
    assert a == b and len(a) > 100_000
    assert all(c == "\n" or 32 <= ord(c) < 127 for c in set(a))
    assert "statement" in a and "don't" in a  # curly apostrophes became straight ones


def test_clean_text_keeps_the_meaning_of_typography():
    raw = "don\u2019t \u201cquote\u201d \u2014 caf\u00e9\u2026\tA\r\nB\u00b0\x0c"
    assert text.clean_text(raw) == "don't \"quote\" -- cafe...    A\nB"


def test_shakespeare_from_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFound) as err:
        text.load_text("shakespeare")
    assert "python -m course_utils.download shakespeare" in str(err.value) and "pydoc" in str(err.value)
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_bytes(b"First Citizen:\r\nBefore we proceed")
    assert text.load_text("shakespeare") == "First Citizen:\nBefore we proceed"
    assert text.load_text("shakespeare", root=tmp_path).startswith("First Citizen")
    with pytest.raises(ValueError, match="unknown text.*pydoc.*shakespeare"):
        text.load_text("wikipedia")


def test_tokenizer_round_trip_on_the_corpus():
    corpus = text.load_text("pydoc")
    tok = text.CharTokenizer.from_text(corpus)
    ids = tok.encode(corpus)
    assert ids.dtype == torch.long and ids.shape == (len(corpus),)
    assert 0 <= ids.min() and ids.max() < tok.vocab_size == len(set(corpus))
    assert tok.decode(ids) == corpus and tok.decode(ids[:5].tolist()) == corpus[:5]


def test_tokenizer_specials_and_errors():
    tok = text.CharTokenizer.from_text("hello world", specials=("[MASK]", "[PAD]"))
    ids = tok.encode("hello")
    assert tok.vocab_size == len(set("hello world")) + 2 == len(tok)
    assert tok.mask_id == tok.vocab_size - 2 and tok.token_id("[PAD]") == tok.vocab_size - 1
    assert tok.decode(torch.cat([ids[:1], torch.tensor([tok.mask_id])])) == "h[MASK]"
    with pytest.raises(ValueError, match=r"1 character\(s\) not in the vocabulary.*'H'.*from_text"):
        tok.encode("Hello")
    plain = text.CharTokenizer(list("ba"))
    assert plain.chars == ["a", "b"] and not hasattr(plain, "mask_id")
    with pytest.raises(ValueError, match="not a special token"):
        plain.token_id("[MASK]")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([99])
    with pytest.raises(ValueError, match="row by row"):
        tok.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="specials"):
        text.CharTokenizer("ab", specials=("a",))
    with pytest.raises(ValueError, match="single characters"):
        text.CharTokenizer(["ab"])


def test_docstring_examples_run():
    assert doctest.testmod(text, raise_on_error=False).failed == 0


def test_train_val_split_is_contiguous():
    ids = torch.arange(100)
    tr, va = text.train_val_split(ids, 0.1)
    assert torch.equal(torch.cat([tr, va]), ids) and len(va) == 10
    with pytest.raises(ValueError, match="val_fraction"):
        text.train_val_split(ids, 1.0)
    with pytest.raises(ValueError, match="too few"):
        text.train_val_split(torch.arange(1), 0.1)


def test_random_chunks_shapes_bounds_and_errors():
    ids = torch.arange(100)
    g = torch.Generator().manual_seed(0)
    x = text.random_chunks(ids, 8, 4, generator=g)
    assert x.shape == (4, 8) and x.dtype == ids.dtype and ((x[:, 1:] - x[:, :-1]) == 1).all()
    assert torch.equal(x, text.random_chunks(ids, 8, 4, generator=torch.Generator().manual_seed(0)))
    edge = text.random_chunks(ids, 99, 200, generator=g)  # only two windows exist: both are drawn
    assert set(edge[:, 0].tolist()) == {0, 1} and edge.max() == 99
    with pytest.raises(ValueError, match="shorter than the text"):
        text.random_chunks(ids, 100, 2)
    with pytest.raises(ValueError, match="block_size and batch_size"):
        text.random_chunks(ids, 8, 0)
    with pytest.raises(ValueError, match="shape"):
        text.random_chunks(ids.view(10, 10), 4, 2)
