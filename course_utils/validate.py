"""Argument checks shared by the package: each error names the argument, what it must be,
what it got, and an example of a good value. A string such as ``"0.1"`` is refused rather
than converted, so that a typo in a settings cell is seen at once and not half-used.
"""
from __future__ import annotations

import math

import torch

__all__ = ["number", "integer", "tensor"]


def number(name: str, value, *, low: float = 0.0, low_ok: bool = False, high: float = math.inf,
           example: str = "") -> float:
    """``value`` as a float, if it is a finite plain number in (low, high) (``[low, ...`` when
    ``low_ok``); else a ValueError naming ``name``. A one-element tensor is accepted."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    plain = isinstance(value, (int, float)) and not isinstance(value, bool)
    above = plain and (value >= low if low_ok else value > low)
    if not (plain and above and value <= high and math.isfinite(value)):
        side = ">=" if low_ok else ">"
        limit = f"{side} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
        hint = f" (e.g. {example})" if example else ""
        raise ValueError(f"{name} must be a finite number {limit}{hint}, got {value!r}")
    return float(value)


def integer(name: str, value, *, low: int = 1, example: str = "") -> int:
    """``value`` if it is a plain int >= low (not a bool, not a float such as 2.0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        hint = f" (e.g. {example})" if example else ""
        raise ValueError(f"{name} must be an int >= {low}{hint}, got {value!r}")
    return value


def tensor(name: str, value, shape: str = "") -> torch.Tensor:
    """``value`` if it is a torch tensor; else an error that says how to make one."""
    if not isinstance(value, torch.Tensor):
        of = f" of shape {shape}" if shape else ""
        raise ValueError(f"{name} must be a torch tensor{of}, got {type(value).__name__}; "
                         f"convert it with torch.as_tensor({name})")
    return value
