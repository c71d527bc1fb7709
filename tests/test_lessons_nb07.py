"""The lesson helpers of notebook 07 (course_utils.lessons.nb07): scoring texts against a
slow sum, the aligned printouts, the fill-in-the-blank questions and their rates, the figures."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import language as L  # noqa: E402
from course_utils import models  # noqa: E402
from course_utils.lessons import nb07  # noqa: E402
from course_utils.text import CharTokenizer  # noqa: E402

IGN = L.IGNORE_INDEX


def _model(causal=True, V=11, T=16, seed=0):
    torch.manual_seed(seed)
    return models.build_encoder("char_transformer", vocab_size=V, block_size=T, dim=16, depth=2, num_heads=2,
                                causal=causal)


def test_score_texts_matches_sum_of_next_char_log_probs_and_bad_inputs():
    tok = CharTokenizer.from_text("abcde ", specials=("[MASK]",))
    m = _model(V=tok.vocab_size, T=8).eval()
    ids = tok.encode("abcab")
    logp = m(ids[None, :-1])[0].log_softmax(-1)
    slow = sum(logp[t, ids[t + 1]].item() for t in range(4))
    torch.testing.assert_close(nb07.score_texts(m, tok, ["abcab"]), torch.tensor([slow]))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        nb07.score_texts(m, tok, ["abz"])                            # unknown character
    with pytest.raises(ValueError, match="longer than the context"):
        nb07.score_texts(m, tok, ["abcdeabcde"])                     # 9 inputs > block_size 8
    with pytest.raises(ValueError, match="causal"):
        nb07.score_texts(_model(causal=False, V=tok.vocab_size), tok, ["ab"])


def test_show_corruption_aligns_the_three_lines():
    tok = CharTokenizer.from_text("ab\nc", specials=("[MASK]",))
    clean = tok.encode("ab\nc")
    inputs = torch.cat([torch.tensor([tok.mask_id]), tok.encode("b\na")])  # a masked, b kept, c -> a
    targets = torch.tensor([clean[0], clean[1], IGN, clean[3]])
    lines = nb07.show_corruption(tok, clean, inputs, targets).splitlines()
    assert lines == ["text:   ab|c", "input:  #b|a", "chosen: MK R"]


def test_blank_examples_and_rates():
    text = "the cat sat on the mat while a dog ran to the log and the bird flew over a tree near it " * 3
    examples = nb07.blank_examples(text, 5, block_size=24, word_len=(3, 4), num_candidates=3, seed=1)
    for ex in examples:
        whole = ex["prefix"] + ex["word"] + ex["suffix"]
        assert whole in text and len(whole) <= 24
        assert ex["candidates"][0] == ex["word"] and len(set(ex["candidates"])) == 3
        assert all(len(c) == len(ex["word"]) for c in ex["candidates"])
    with pytest.raises(ValueError, match="usable words"):
        nb07.blank_examples(text, 500, block_size=24, word_len=(3, 4))
    answered = [{"word": "cat", "mlm": "cat", "clm_continue": "dog", "clm_choice": "cat"},
                {"word": "mat", "mlm": "hat", "clm_continue": "mat", "clm_choice": "sat"}]
    assert nb07.blank_rates(answered) == {
        "MLM fills the exact word": 0.5, "MLM fills the right characters": 5 / 6,
        "CLM continues with the word": 0.5, "CLM picks it among the candidates": 0.5}


def test_answer_blanks_gives_every_answer_the_right_length():
    tok = CharTokenizer.from_text("the cat sat on a mat ", specials=("[MASK]",))
    mlm, clm = _model(False, V=tok.vocab_size, T=16), _model(True, V=tok.vocab_size, T=16)
    ex = {"prefix": "the ", "word": "cat", "suffix": " sat", "candidates": ["cat", "mat", "sat"]}
    (a,) = nb07.answer_blanks(mlm, clm, tok, [ex])
    assert len(a["mlm"]) == len(a["clm_continue"]) == 3 and "[MASK]" not in a["mlm"] + a["clm_continue"]
    assert a["clm_choice"] in ex["candidates"] and len(a["scores"]) == 3


def test_show_restoration_marks_right_and_wrong():
    tok = CharTokenizer.from_text("abc", specials=("[MASK]",))
    clean, inputs = tok.encode("abc"), torch.tensor([tok.mask_id, 1, tok.mask_id])
    restored = tok.encode("abb")
    assert nb07.show_restoration(tok, clean, inputs, restored).splitlines() == [
        "text:     abc", "input:    #b#", "restored: abb", "          + x"]


def test_score_texts_gives_back_the_mode():
    tok = CharTokenizer.from_text("abc", specials=("[MASK]",))
    m = _model(V=tok.vocab_size, T=8).train()
    nb07.score_texts(m, tok, ["abc", "cab"])
    assert m.training


def test_plot_attention_masks_shows_both_patterns():
    fig = nb07.plot_attention_masks(T=6)
    full, causal = (ax.images[0].get_array() for ax in fig.axes[:2])
    assert (full == 1).all() and torch.equal(torch.tensor(causal.data).bool(), models.causal_mask(6))
    plt.close(fig)


def test_plot_bpc_one_panel_per_model_in_bits():
    h = {"step_loss": [2.0] * 30 + [1.0] * 30, "epoch_loss": [2.0, 1.0],
         "eval": [{"epoch": 1, "val_bpc": 2.5}, {"epoch": 2, "val_bpc": 1.6}]}
    fig = nb07.plot_bpc({"CLM": h, "MLM": h}, untrained={"CLM": 6.0})
    assert [ax.get_title() for ax in fig.axes] == ["CLM", "MLM"]
    train_line, val_line = fig.axes[0].lines[:2]
    assert abs(train_line.get_ydata()[0] - 2.0 / 0.6931471805599453) < 1e-6     # nats -> bits
    assert list(val_line.get_xdata()) == [30, 60] and list(val_line.get_ydata()) == [2.5, 1.6]
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 2     # the untrained level: CLM only
    plt.close(fig)
