import pytest
import torch

from course_utils import text
from course_utils.datasets_io import DatasetNotFound


def test_pydoc_corpus_is_embedded_deterministic_and_clean():
    a, b = text.load_text("pydoc"), text.load_text("pydoc")
    assert a == b and len(a) > 100_000
    assert all(c == "\n" or 32 <= ord(c) < 127 for c in set(a))


def test_shakespeare_from_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFound, match="download.py shakespeare"):
        text.load_text("shakespeare")
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("First Citizen:\nBefore we proceed")
    assert text.load_text("shakespeare").startswith("First Citizen")
    with pytest.raises(ValueError, match="unknown text"):
        text.load_text("wikipedia")


def test_tokenizer_round_trip_specials_and_errors():
    tok = text.CharTokenizer.from_text("hello world", specials=("[MASK]",))
    ids = tok.encode("hello")
    assert ids.dtype == torch.long and tok.decode(ids) == "hello"
    assert tok.vocab_size == len(set("hello world")) + 1 and tok.mask_id == tok.vocab_size - 1
    assert tok.decode([tok.encode("h").item(), tok.mask_id]) == "h[MASK]"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("HELLO")
    with pytest.raises(ValueError, match="special"):
        text.CharTokenizer.from_text("ab").mask_id
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([99])


def test_split_and_chunks():
    ids = torch.arange(100)
    tr, va = text.train_val_split(ids, 0.1)
    assert torch.equal(torch.cat([tr, va]), ids) and len(va) == 10
    x = text.random_chunks(ids, 8, 4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 8) and ((x[:, 1:] - x[:, :-1]) == 1).all()
    with pytest.raises(ValueError, match="shorter than the text"):
        text.random_chunks(ids, 100, 2)
    with pytest.raises(ValueError, match="val_fraction"):
        text.train_val_split(ids, 1.0)
