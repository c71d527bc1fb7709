"""The published figure each notebook aims at, and the scale that would get there."""
import types

import pytest

from course_utils.lessons import published


def _run(seconds, epochs, linear=None):
    return types.SimpleNamespace(seconds=seconds, epochs=epochs, metrics=None if linear is None else {"linear": linear})


def test_the_scale_is_computed_from_the_run(monkeypatch):
    monkeypatch.setenv("COURSE_TIME_SCALE", "2")
    text = published.aim("simclr", _run(480.0, 25, linear=0.612), "cifar10")
    assert "90.74%" in text and "solo-learn" in text
    assert "25 epoch(s) in 8.0 min, reaching 61.20%" in text
    assert "COURSE_TIME_SCALE=80 " in text                   # 2 x 1000 / 25
    assert "about 5.3 h" in text                             # 480 s x 40


def test_other_data_sets_do_not_compare():
    text = published.aim("byol", {"seconds": 60.0, "plan": {"epochs": 3}}, "shapes")
    assert "92.58%" in text and "do not compare" in text and "COURSE_TIME_SCALE" not in text


def test_bits_per_character_and_unknown_keys():
    text = published.aim("clm", {"seconds": 360.0, "plan": {"epochs": 2}}, "shakespeare", measured=2.3)
    assert "2.12 bits/char" in text and "reaching 2.30 bits/char" in text and "COURSE_TIME_SCALE" not in text
    with pytest.raises(ValueError, match="no published figure for 'simclar'"):
        published.aim("simclar", _run(1, 1), "cifar10")
