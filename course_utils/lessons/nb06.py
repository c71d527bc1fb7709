"""Notebook 06's figures: reconstructions in a grid, and MAE's training curves.

Shape legend: B batch, C/H/W image.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..plots import to_hwc


def show_reconstructions(originals, rows: list, title: str, size: float = 1.2):
    """A grid: one column per image; first row the originals, then for each
    ``(label, images)`` in ``rows`` a row of images (B, C, H, W) in [0, 1]."""
    all_rows = [("original", originals)] + list(rows)
    n = len(originals)
    fig, axes = plt.subplots(len(all_rows), n, figsize=(size * n + 1.2, size * len(all_rows) + 0.5),
                             squeeze=False)
    for r, (label, imgs) in enumerate(all_rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(to_hwc(imgs[c]))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    axes[-1, 0].set_xlabel("image 1")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_mae_history(history: dict, title: str = "MAE training"):
    """Two panels: the training loss per step, and ``masked_mse`` of the monitored
    reconstructions per epoch (from a ``ReconstructionMonitor``)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.plot(history["step_loss"], alpha=0.6)
    ax1.set(xlabel="step", ylabel="loss on masked patches", title="training loss")
    pts = [(e["epoch"], e["masked_mse"]) for e in history["eval"] if "masked_mse" in e]
    if pts:
        ax2.plot(*zip(*pts), marker="o")
    ax2.set(xlabel="epoch", ylabel="mean squared error (pixels)", title="masked patches of the shown test images")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
