import pytest

from course_utils import widgets


def test_static_fallback_calls_once_with_defaults(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    calls = []
    out = widgets.explore(lambda t, k, mode, on: calls.append((t, k, mode, on)) or "drawn",
                          t=(0.05, 1.0, 0.05, 0.2), k=(1, 50, 1, 20), mode=["cosine", "dot"], on=True)
    assert calls == [(0.2, 20, "cosine", True)] and out == "drawn"
    assert "static view" in capsys.readouterr().out


def test_no_widgets_outside_a_notebook(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    assert widgets.widgets_available() is False  # plain Python: no ZMQ shell


def test_bad_controls_are_named():
    with pytest.raises(ValueError, match="outside"):
        widgets.explore(lambda t: t, t=(0.0, 1.0, 0.1, 2.0))
    with pytest.raises(ValueError, match=r"\(min, max, step, default\)"):
        widgets.explore(lambda t: t, t=(0.0, 1.0))
    with pytest.raises(ValueError, match="unsupported"):
        widgets.explore(lambda t: t, t="x")
