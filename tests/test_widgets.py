import sys
import types

import pytest

from course_utils import widgets


def test_static_fallback_calls_once_with_defaults(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    calls = []
    out = widgets.explore(lambda t, k, mode, on: calls.append((t, k, mode, on)) or "drawn",
                          t=(0.05, 1.0, 0.05, 0.2), k=(1, 50, 1, 20), mode=["cosine", "dot"], on=True)
    # returns None, as in live mode, so a cell without ';' shows no stray value
    assert calls == [(0.2, 20, "cosine", True)] and out is None
    assert "static view with the default settings: the fast profile" in capsys.readouterr().out


def test_the_static_view_says_why(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    monkeypatch.setenv("COURSE_NO_WIDGETS", "1")
    assert widgets.static_reason() == "COURSE_NO_WIDGETS is set"
    monkeypatch.delenv("COURSE_NO_WIDGETS")
    monkeypatch.setitem(sys.modules, "ipywidgets", None)           # as if it were not installed
    assert "ipywidgets is not installed" in widgets.static_reason()


def test_no_widgets_outside_a_notebook(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    monkeypatch.delenv("COURSE_NO_WIDGETS", raising=False)
    assert widgets.widgets_available() is False  # plain Python: no ZMQ shell


class ZMQInteractiveShell:  # stands in for ipykernel.zmqshell.ZMQInteractiveShell
    pass


class ColabShell(ZMQInteractiveShell):  # like google.colab._shell.Shell, a subclass
    pass


class TerminalInteractiveShell:
    pass


def _fake_shell(monkeypatch, shell):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    monkeypatch.delenv("COURSE_NO_WIDGETS", raising=False)


@pytest.mark.parametrize("shell", [ZMQInteractiveShell(), ColabShell()], ids=["jupyter", "colab"])
def test_widgets_in_jupyter_and_colab(monkeypatch, shell):
    pytest.importorskip("ipywidgets")
    _fake_shell(monkeypatch, shell)
    assert widgets.widgets_available() is True


def test_real_ipykernel_shell_class_and_subclass_count(monkeypatch):
    pytest.importorskip("ipywidgets")
    zmqshell = pytest.importorskip("ipykernel.zmqshell")
    sub = type("Shell", (zmqshell.ZMQInteractiveShell,), {})
    _fake_shell(monkeypatch, object.__new__(sub))  # no kernel needed to build it
    assert widgets.widgets_available() is True


def test_no_widgets_in_a_terminal_shell(monkeypatch):
    _fake_shell(monkeypatch, TerminalInteractiveShell())
    assert widgets.widgets_available() is False


@pytest.mark.parametrize("env", [("COURSE_PROFILE", "fast"), ("COURSE_NO_WIDGETS", "1")])
def test_fast_profile_and_no_widgets_force_the_static_view(monkeypatch, env):
    pytest.importorskip("ipywidgets")
    _fake_shell(monkeypatch, ColabShell())
    monkeypatch.setenv(*env)
    assert widgets.widgets_available() is False


def test_live_mode_returns_none(monkeypatch):
    """ipywidgets.interact returns the function; explore must not, or a cell shows <function ...>."""
    _fake_shell(monkeypatch, ColabShell())
    seen = {}

    def interact(fn, **kw):
        seen.update(kw)
        fn(**{name: w.value for name, w in kw.items()})
        return fn

    def init(self, value=None, **kw):
        self.value = value

    fake = types.ModuleType("ipywidgets")
    for cls in ("FloatSlider", "IntSlider", "Checkbox", "Dropdown"):
        setattr(fake, cls, type(cls, (), {"__init__": init}))
    fake.interact = interact
    monkeypatch.setitem(sys.modules, "ipywidgets", fake)
    calls = []
    out = widgets.explore(lambda t, on: calls.append((t, on)) or "drawn", t=(0.0, 1.0, 0.1, 0.5), on=False)
    assert out is None and calls == [(0.5, False)]
    assert type(seen["t"]).__name__ == "FloatSlider" and type(seen["on"]).__name__ == "Checkbox"


def test_bad_controls_are_named():
    with pytest.raises(ValueError, match="outside"):
        widgets.explore(lambda t: t, t=(0.0, 1.0, 0.1, 2.0))
    with pytest.raises(ValueError, match=r"\(min, max, step, default\)"):
        widgets.explore(lambda t: t, t=(0.0, 1.0))
    with pytest.raises(ValueError, match="unsupported"):
        widgets.explore(lambda t: t, t="x")
