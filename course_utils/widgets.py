"""Interactive explorers that degrade gracefully.

    explore(show_temperature, temperature=(0.05, 1.0, 0.05, 0.2))

shows sliders in Jupyter and Colab. Where widgets cannot render or are not wanted (the
``fast`` profile, which the test run under nbval uses; ipywidgets missing; no notebook
front end; or the environment variable ``COURSE_NO_WIDGETS=1``) it calls the function
once with the default values, so the notebook still runs and prints (or draws) the
default result. Set ``COURSE_NO_WIDGETS=1`` to force this static view, e.g. for
``jupyter nbconvert --execute`` runs, whose kernel looks like a live notebook's but has
no front end to draw the sliders. Either way ``explore`` returns None, so a cell ending
in ``explore(...)`` shows nothing beyond what the function itself prints or draws.

A control is ``(min, max, step, default)`` for a float slider, the same with ints for an
int slider, a list of options (the first is the default), or a bool (a checkbox).
"""
from __future__ import annotations

import os
from typing import Callable


def widgets_available() -> bool:
    """True in a live notebook front end with ipywidgets; False under tests or headless runs
    (``static_reason`` says which)."""
    return static_reason() is None


def static_reason() -> str | None:
    """Why ``explore`` shows the static view here, or None where sliders can be drawn.

    A live front end is a kernel whose shell is ipykernel's ``ZMQInteractiveShell`` or a
    subclass of it (Colab's ``google.colab._shell.Shell`` is one). The static view is forced
    under the ``fast`` profile (``COURSE_PROFILE=fast``) and when ``COURSE_NO_WIDGETS`` is set
    to a non-empty value (``COURSE_NO_WIDGETS=1``), e.g. for plain ``jupyter nbconvert
    --execute`` runs.
    """
    if os.environ.get("COURSE_PROFILE", "").strip().lower() == "fast":
        return "the fast profile draws no sliders (it is what the tests run)"
    if os.environ.get("COURSE_NO_WIDGETS"):
        return "COURSE_NO_WIDGETS is set"
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return "ipywidgets is not installed (pip install ipywidgets)"
    shell = get_ipython()
    # compare class names along the MRO: subclasses count, and ipykernel need not be imported
    if shell is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__):
        return None
    return "there is no notebook front end to draw sliders (run it in Jupyter or Colab)"


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

    style = {"description_width": "initial"}       # the whole name, not "temperat..."
    if isinstance(control, bool):
        return w.Checkbox(value=control, description=name, style=style)
    if isinstance(control, tuple):
        lo, hi, step, default = control
        cls = w.IntSlider if all(isinstance(v, int) for v in control) else w.FloatSlider
        return cls(min=lo, max=hi, step=step, value=default, description=name, continuous_update=False,
                   style=style)
    return w.Dropdown(options=control, value=control[0], description=name, style=style)


def explore(fn: Callable, **controls) -> None:
    """Sliders for ``fn``'s keyword arguments where widgets work; else one call with the defaults.

    The static view (one call with the defaults) is used wherever :func:`widgets_available`
    is False: the ``fast`` profile, no ipywidgets, no notebook front end, or
    ``COURSE_NO_WIDGETS=1`` in the environment (set it to force the static view, e.g. for
    ``jupyter nbconvert --execute``). Returns None in both cases.
    """
    defaults = {name: default_value(c) for name, c in controls.items()}
    reason = static_reason()
    if reason is not None:
        print(f"(static view with the default settings: {reason})")
        fn(**defaults)
        return None
    import ipywidgets as w

    w.interact(fn, **{name: _widget(name, c) for name, c in controls.items()})
    return None
