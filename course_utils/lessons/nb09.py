"""Notebook 09's helpers: a monitor that records the cross-correlation matrix and the collapse
meters of notebook 05 during training, the singular-value spectra of several methods'
embeddings, and the figures (heatmaps of C, spectra side by side).

    views = nb09.fixed_views(images, transform)          # two views drawn once, kept fixed
    monitor = nb09.redundancy_monitor(*views, knn=...)   # an eval_fn for lesson.run / train
    nb09.plot_correlations(history)                      # C at the start, during, at the end
    nb09.plot_spectra({"SimCLR": nb09.spectra(simclr, x), ...})

Every method of the notebook has ``encoder`` and ``projection_head``: h = encoder(x) is the
representation the probes read, z = projection_head(h) what the loss sees.

Shape legend: B batch, D width of z, F width of h, C/H/W image.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ..methods.barlow_twins import cross_correlation, off_diagonal
from ..methods.byol import effective_rank
from ..methods.vicreg import embedding_spectrum
from ..models import eval_mode

__all__ = ["decorrelated", "fixed_views", "embed", "spread", "redundancy_monitor", "plot_meters", "spectra", "plot_terms", "plot_correlations", "plot_spectra"]


def decorrelated(B: int, D: int) -> torch.Tensor:
    """A batch (B, D) whose dimensions are exactly what Barlow Twins and VICReg ask for: each
    column has mean 0 and (biased) variance 1, and the columns are uncorrelated. They are D
    columns of a B x B Sylvester-Hadamard matrix after its all-ones column (entries +-1,
    columns orthogonal); B must be a power of 2 and D < B."""
    if B < 2 or B & (B - 1) or not 1 <= D < B:
        raise ValueError(f"decorrelated(B, D) needs B a power of 2 (>= 2) and 1 <= D < B, got B={B}, D={D}")
    h = torch.ones(1, 1)
    while h.shape[0] < B:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h[:, 1:D + 1].clone()


def fixed_views(images: torch.Tensor, transform, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two augmented views (B, C, H, W) of ``images`` (uint8 or float in [0, 1]), drawn once
    with their own random generator state, so every measurement during training sees the
    same pairs and the training run's random stream is left as it was."""
    x = images.float().div(255) if images.dtype == torch.uint8 else images
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return transform(x), transform(x)


@torch.no_grad()
def embed(method, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(h, z) for images x in eval mode: the encoder's features (B, F) and the projection (B, D)."""
    with eval_mode(method):
        x = x.to(next(method.parameters()).device)
        h = method.encoder.forward_features(x)
        return h.float(), method.projection_head(h).float()


def spread(z: torch.Tensor) -> float:
    """The mean over dimensions of the standard deviation of z (B, D) along the batch, not
    normalised: VICReg's variance hinge asks for at least 1 in every dimension, and complete
    collapse (one point for every image) drives it to 0. (Notebook 05's ``embedding_std``
    normalises each embedding first; Barlow Twins and VICReg leave the mean of z free, and a
    large common offset would make healthy normalised embeddings look collapsed.)"""
    return z.float().std(dim=0).mean().item()


def redundancy_monitor(x1: torch.Tensor, x2: torch.Tensor, knn=None, block: int = 64):
    """An ``eval_fn`` for ``train``: on the fixed view pairs x1, x2 (see ``fixed_views``), the
    cross-correlation C of the two views' projections: its top-left ``block`` x ``block``
    corner (``c_block``, a tensor, for the heatmaps), the mean of its diagonal (``on_diag``,
    1 = invariant) and the mean |C_ij| off it (``off_diag``, 0 = no redundancy); the collapse
    meters: ``spread`` of z (0 = complete collapse), the effective rank of the centred z
    (``erank``, notebook 05's meter; low = dimensional collapse) and of the centred h
    (``erank_h``); and ``knn`` accuracy if a kNN monitor is given."""
    def eval_fn(method):
        h1, z1 = embed(method, x1)
        _, z2 = embed(method, x2)
        # eps relative to the embeddings' own variance, so that small outputs (an untrained
        # network in eval mode) are standardised as well as large ones
        eps = 1e-5 * torch.cat([z1, z2]).var(dim=0, unbiased=False).mean().clamp_min(1e-12).item()
        c = cross_correlation(z1, z2, eps=eps)
        out = {"c_block": c[:block, :block].cpu(), "on_diag": torch.diagonal(c).mean().item(),
               "off_diag": off_diagonal(c).abs().mean().item(), "spread": spread(z1),
               "erank": effective_rank(z1 - z1.mean(0)), "erank_h": effective_rank(h1 - h1.mean(0))}
        return out | (knn(method) if knn is not None else {})
    return eval_fn


def plot_meters(histories: dict, dim: int, steps_per_epoch: int = 1, title: str = "Collapse, measured"):
    """Three panels over training for several runs recorded by ``redundancy_monitor``: the
    spread of z (with VICReg's target 1), the effective rank of z (out of ``dim``) and the
    kNN accuracy, against training steps when ``steps_per_epoch`` is given."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (("spread", "spread of z: mean std along the batch"), ("erank", f"effective rank of z (of {dim})"),
              ("knn", "kNN accuracy"))
    for ax, (key, label) in zip(axes, panels):
        for name, h in histories.items():
            pts = [(e["epoch"] * steps_per_epoch, e[key]) for e in h["eval"] if key in e]
            ax.plot(*zip(*pts), marker="o", label=name)
        if key == "spread":
            ax.axhline(1.0, color="gray", ls="--", lw=1, label="VICReg's target 1")
        ax.set(xlabel="training step" if steps_per_epoch != 1 else "epoch", title=label)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def spectra(method, x: torch.Tensor) -> dict:
    """The normalised singular values of the centred embeddings of images x, for z and for h
    (``embedding_spectrum``), and their effective ranks (``byol.effective_rank``, on the
    centred matrices, so that one measure runs through notebooks 05 and 09)."""
    h, z = embed(method, x)
    h, z = h - h.mean(0), z - z.mean(0)
    return {"z": embedding_spectrum(z), "h": embedding_spectrum(h), "erank_z": effective_rank(z),
            "erank_h": effective_rank(h)}


def plot_correlations(history: dict, title: str = "Cross-correlation C of the two views", moments=None):
    """Heatmaps of ``c_block`` from ``history["eval"]`` (``redundancy_monitor``'s records): the
    first record, one in the middle and the last (or the epochs in ``moments``), on one colour
    scale from -1 to 1; the identity is the target."""
    records = [e for e in history["eval"] if "c_block" in e]
    if not records:
        raise ValueError("plot_correlations needs a history whose eval records hold c_block: train with "
                         "eval_fn=nb09.redundancy_monitor(...)")
    if moments is None:
        picks = sorted({0, len(records) // 2, len(records) - 1})
    else:
        picks = [next(i for i, e in enumerate(records) if e["epoch"] == m) for m in moments]
    fig, axes = plt.subplots(1, len(picks), figsize=(3.4 * len(picks) + 0.8, 3.4), squeeze=False)
    for ax, i in zip(axes[0], picks):
        e = records[i]
        im = ax.imshow(e["c_block"].numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(f"epoch {e['epoch']}: mean C_ii {e['on_diag']:.2f}\nmean |C_ij| {e['off_diag']:.3f}",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    fig.suptitle(title)
    return fig


def plot_spectra(results: dict, title: str = "Singular-value spectra of the embeddings"):
    """Two panels, projection z and representation h: for each method the normalised
    singular values (log scale) against their index, with the effective rank in the legend.
    ``results``: {method name: ``spectra(...)``}."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, key, label in ((axes[0], "z", "projection z (what the loss sees)"),
                           (axes[1], "h", "representation h (what the probes read)")):
        for name, r in results.items():
            s = r[key].clamp_min(1e-7)
            ax.plot(range(1, len(s) + 1), s.numpy(), label=f"{name} (erank {r['erank_' + key]:.1f})")
        ax.set(yscale="log", xlabel="singular value index", ylabel="singular value / largest", title=label)
        ax.set_ylim(1e-5, 1.5)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_terms(history: dict, keys, weights: dict | None = None, title: str = "The loss's terms", smooth: int = 10):
    """One panel per term a method logged at every step (``history["logs"]``): the raw value
    and a running mean of ``smooth`` steps, with the term's weight in the loss, if given in
    ``weights``, in the panel's title. Terms of very different sizes get panels of their own."""
    missing = [k for k in keys if k not in history.get("logs", {})]
    if missing:
        raise ValueError(f"plot_terms: {missing} not in the history's step logs; available: "
                         f"{sorted(history.get('logs', {}))}")
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        v = torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in history["logs"][key]]).cpu()
        ax.plot(v.numpy(), alpha=0.3)
        if len(v) >= smooth > 1:
            sm = torch.conv1d(v.view(1, 1, -1), torch.full((1, 1, smooth), 1 / smooth)).flatten()
            ax.plot(range(smooth - 1, len(v)), sm.numpy())
        weight = "" if not weights or key not in weights else f" (weight {weights[key]:g})"
        ax.set(xlabel="step", title=key + weight)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
