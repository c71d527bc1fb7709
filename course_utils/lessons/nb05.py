"""Notebook 05's figure: the collapse meters of several runs side by side."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt


def plot_collapse(histories: dict, dim: int, steps_per_epoch=1, title: str = "Collapse, measured"):
    """Three panels over training for several runs: std of the normalised projections
    (with 1/sqrt(dim), the healthy level), their effective rank, and kNN accuracy when
    recorded. ``histories``: {run name: history from ``train`` with a collapse_monitor};
    ``steps_per_epoch``: an int, or {run name: int}, to put runs on one axis of steps."""
    has_knn = any("knn" in e for h in histories.values() for e in h["eval"])
    fig, axes = plt.subplots(1, 3 if has_knn else 2, figsize=(13 if has_knn else 9, 3.6))
    panels = [("std", "std of normalised z"), ("erank", "effective rank of z")]
    panels += [("knn", "kNN accuracy")] if has_knn else []
    for ax, (key, label) in zip(axes, panels):
        for name, h in histories.items():
            spe = steps_per_epoch[name] if isinstance(steps_per_epoch, dict) else steps_per_epoch
            pts = [(e["epoch"] * spe, e[key]) for e in h["eval"] if key in e]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name)
        if key == "std":
            ax.axhline(1 / math.sqrt(dim), color="gray", ls="--", lw=1, label="1/sqrt(D)")
        ax.set(xlabel="training step" if steps_per_epoch != 1 else "epoch", ylabel=label, title=label)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
