"""Interactive explorers that degrade gracefully.

    explore(show_temperature, temperature=(0.05, 1.0, 0.05, 0.2))

shows sliders in Jupyter and Colab. Where widgets cannot render (the test run under
nbval, ``jupyter nbconvert --execute``, the ``fast`` profile, or ipywidgets missing) it
calls the function once with the default values, so the notebook still runs and prints
(or draws) the default result.

A control is ``(min, max, step, default)`` for a float slider, the same with ints for an
int slider, a list of options (the first is the default), or a bool (a checkbox).
"""
from __future__ import annotations

import os
from typing import Callable


def widgets_available() -> bool:
    """True in a live notebook front end with ipywidgets; False under tests or headless runs."""
    if os.environ.get("COURSE_PROFILE", "").strip().lower() == "fast" or os.environ.get("COURSE_NO_WIDGETS"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def default_value(control):
    if isinstance(control, bool):
        return control
    if isinstance(control, tuple):
        if len(control) != 4:
            raise ValueError(f"a slider control is (min, max, step, default), got {control!r}")
        lo, hi, _, default = control
        if not lo <= default <= hi:
            raise ValueError(f"slider default {default} lies outside [{lo}, {hi}]")
        return default
    if isinstance(control, list) and control:
        return control[0]
    raise ValueError(f"unsupported control {control!r}: use (min, max, step, default), a list, or a bool")


def _widget(name, control):
    import ipywidgets as w

    if isinstance(control, bool):
        return w.Checkbox(value=control, description=name)
    if isinstance(control, tuple):
        lo, hi, step, default = control
        cls = w.IntSlider if all(isinstance(v, int) for v in control) else w.FloatSlider
        return cls(min=lo, max=hi, step=step, value=default, description=name, continuous_update=False)
    return w.Dropdown(options=control, value=control[0], description=name)


def explore(fn: Callable, **controls):
    """Sliders for ``fn``'s keyword arguments where widgets work; else one call with the defaults."""
    defaults = {name: default_value(c) for name, c in controls.items()}
    if not widgets_available():
        print("(static view with the default settings; run in Jupyter for the interactive version)")
        return fn(**defaults)
    import ipywidgets as w

    return w.interact(fn, **{name: _widget(name, c) for name, c in controls.items()})
