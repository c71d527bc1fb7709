"""The pictures the notebooks show. Every function returns the matplotlib Figure, with a
title and labelled axes, so a notebook can show it or save it."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch


def to_hwc(img: torch.Tensor):
    img = img.detach().cpu()
    if img.dtype == torch.uint8:
        img = img.float() / 255
    img = img.clamp(0, 1)
    return (img.squeeze(0) if img.shape[0] == 1 else img.permute(1, 2, 0)).numpy()


def show_images(images: torch.Tensor, labels=None, classes=None, ncols: int = 8, title: str = "",
                size: float = 1.3):
    """A grid of images (B, C, H, W), uint8 or float in [0, 1], each titled by its label."""
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(to_hwc(images[i]), cmap="gray" if images.shape[1] == 1 else None)
            if labels is not None:
                lab = int(labels[i])
                ax.set_title(classes[lab] if classes else str(lab), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_views(originals: torch.Tensor, views: list, title: str = "Augmented views", size: float = 1.3):
    """Rows: one original image then its views. originals (B, C, H, W); views: list of (B, C, H, W)."""
    n, v = len(originals), len(views)
    fig, axes = plt.subplots(n, v + 1, figsize=(size * (v + 1), size * n + 0.4), squeeze=False)
    for i in range(n):
        for j, img in enumerate([originals[i]] + [view[i] for view in views]):
            ax = axes[i, j]
            ax.imshow(to_hwc(img))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("original" if j == 0 else f"view {j}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: dict, title: str = "Training", smooth: int = 10, keys=None,
                 ylabel: str = "accuracy", logs=()):
    """Loss per step (smoothed) and, if present, evaluation metrics per epoch.

    ``keys`` chooses which evaluation metrics share the right panel (default: all of them);
    ``logs`` adds what the training steps logged (``history["epoch_logs"]``, a mean per
    epoch), e.g. ``logs=["pretext_accuracy"]``. Give only metrics on one scale, and an
    ``ylabel`` that names it."""
    logs = [logs] if isinstance(logs, str) else list(logs)
    unknown = [k for k in logs if k not in history.get("epoch_logs", {})]
    if unknown:
        raise ValueError(f"logs {unknown} are not in the history's epoch_logs; available: "
                         f"{sorted(history.get('epoch_logs', {}))}")
    has_eval = bool(history.get("eval"))
    right = has_eval or bool(logs)
    fig, axes = plt.subplots(1, 2 if right else 1, figsize=(10 if right else 5, 3.5), squeeze=False)
    ax = axes[0, 0]
    loss = torch.tensor(history["step_loss"], dtype=torch.float32)
    ax.plot(loss.numpy(), alpha=0.3, label="per step")
    if len(loss) >= smooth > 1:
        kernel = torch.ones(smooth) / smooth
        sm = torch.conv1d(loss.view(1, 1, -1), kernel.view(1, 1, -1)).flatten()
        ax.plot(range(smooth - 1, len(loss)), sm.numpy(), label=f"mean of {smooth}")
    ax.set(xlabel="step", ylabel="loss", title="training loss")
    ax.legend()
    if right:
        ax = axes[0, 1]
        if has_eval:
            epochs = [e["epoch"] for e in history["eval"]]
            available = [k for k in history["eval"][0] if k != "epoch"]
            chosen = available if keys is None else list(keys)
            unknown = [k for k in chosen if k not in available]
            if unknown:
                raise ValueError(f"keys {unknown} are not in the history's evaluations; available: {available}")
            for key in chosen:
                ax.plot(epochs, [e[key] for e in history["eval"]], marker="o", label=key)
        for key in logs:
            values = history["epoch_logs"][key]
            ax.plot(range(1, len(values) + 1), values, marker=".", ls="--", label=f"{key} (training)")
        ax.set(xlabel="epoch", ylabel=ylabel, title="evaluation during training")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_results(results: dict, title: str = "Comparison", ylabel: str = "test accuracy", chance=None):
    """Grouped bars: ``results = {"raw pixels": {"knn": .2, "linear": .3}, ...}``."""
    names = list(results)
    metrics = list(dict.fromkeys(m for r in results.values() for m in r))
    width = 0.8 / max(1, len(metrics))
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names) + 2), 3.8))
    for j, m in enumerate(metrics):
        xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(names))]
        vals = [results[nm].get(m, float("nan")) for nm in names]
        bars = ax.bar(xs, vals, width, label=m)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", lw=1, label="chance")
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set(ylabel=ylabel, title=title, ylim=(0, 1.05))
    ax.legend()
    fig.tight_layout()
    return fig


def results_table(results: dict, digits: int = 3) -> str:
    """The same ``results`` dict as an aligned text table (also returned, for tests)."""
    metrics = list(dict.fromkeys(m for r in results.values() for m in r))
    w = max(len(n) for n in results) + 2
    lines = ["".ljust(w) + "".join(m.rjust(10) for m in metrics)]
    for name, r in results.items():
        cells = []
        for m in metrics:
            v = r.get(m)
            cells.append((f"{v:.{digits}f}" if isinstance(v, float) else str(v if v is not None else "-")).rjust(10))
        lines.append(name.ljust(w) + "".join(cells))
    text = "\n".join(lines)
    print(text)
    return text
