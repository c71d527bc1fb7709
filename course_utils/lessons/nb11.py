"""Notebook 11's helpers: what each view's encoder knows (probes for shape and for colour),
zero-shot accuracy per prompt, and the figures (similarity matrix, retrieval grids, CPC's
accuracy by distance)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .. import evaluate
from ..captions import COLOUR_NAMES, colour_names
from ..data import shape_factors
from ..methods.clip import embed_images, zero_shot_predict, zero_shot_weights


def colour_labels(split: str, n: int | None) -> torch.Tensor:
    """The shape's colour name of every image of ``load_images("shapes", split, n)`` as a class id (N,)."""
    names = colour_names(shape_factors(split, n)["colour"])
    return torch.tensor([COLOUR_NAMES.index(c) for c in names])


def what_it_knows(encoders: dict, train_data, test_data, probe_epochs: int = 100) -> dict:
    """Linear-probe accuracy of each frozen encoder for the shape (the class) and for the
    shape's colour name: {encoder name: {"shape": acc, "colour": acc}}; printed as a table."""
    n_train, n_test = len(train_data), len(test_data)
    colours = colour_labels("train", n_train), colour_labels("test", n_test)
    rows = {}
    for name, encoder in encoders.items():
        ftr, ytr = evaluate.extract_features(encoder, train_data)
        fte, yte = evaluate.extract_features(encoder, test_data)
        rows[name] = {"shape": evaluate.linear_probe(ftr, ytr, fte, yte, epochs=probe_epochs)["accuracy"],
                      "colour": evaluate.linear_probe(ftr, colours[0].to(ftr.device), fte, colours[1].to(fte.device),
                                                      epochs=probe_epochs)["accuracy"]}
    print(f"{'encoder':<28}{'shape (linear)':>16}{'colour (linear)':>17}")
    for name, r in rows.items():
        print(f"{name:<28}{r['shape']:>16.3f}{r['colour']:>17.3f}")
    return rows


def prompt_accuracies(model, tokenizer, images, labels, classnames, templates) -> dict:
    """Zero-shot test accuracy with each template alone and with all of them ensembled; printed."""
    emb = embed_images(model, images)
    labels = labels.to(emb.device)
    out = {}
    for t in list(templates) + [None]:
        w = zero_shot_weights(model, tokenizer, classnames, templates if t is None else [t])
        out["ensemble of all" if t is None else t] = (zero_shot_predict(emb, w) == labels).float().mean().item()
    for name, acc in out.items():
        print(f"  {name!r:<32} zero-shot accuracy {acc:.3f}")
    return out


def plot_similarity(sim: torch.Tensor, captions, title: str = "Image-caption cosine similarity"):
    """The (B, B) similarity matrix of B images (rows) and their captions (columns)."""
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(sim.cpu(), cmap="viridis")
    ax.set_yticks(range(len(captions)))
    ax.set_yticklabels([c[:40] for c in captions], fontsize=7)
    ax.set(xlabel="caption j", ylabel="image i (its caption)", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_text_to_image(images, queries, top, title: str = "Text to image: the 5 nearest test images"):
    """``queries``: Q texts; ``top``: (Q, k) indices into ``images`` (N, 3, H, W) uint8."""
    Q, k = top.shape
    fig, axes = plt.subplots(Q, k, figsize=(1.5 * k + 2.5, 1.6 * Q), squeeze=False)
    for q in range(Q):
        for j in range(k):
            ax = axes[q][j]
            ax.imshow(images[int(top[q, j])].permute(1, 2, 0).cpu())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[q][0].set_ylabel(queries[q], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_image_to_text(images, best_captions, title: str = "Image to text: the nearest caption"):
    """One image per panel with its nearest caption(s) (a list of str per image) as the title."""
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.2), squeeze=False)
    for ax, img, caps in zip(axes[0], images, best_captions):
        ax.imshow(img.permute(1, 2, 0).cpu())
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("\n".join(c[:30] for c in caps), fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_cpc_accuracy(accuracies: dict, chance: dict, title: str = "CPC: picking the true patch k rows ahead"):
    """``accuracies``: {k: accuracy in the last epoch}; ``chance``: {k: 1 / the number of candidates}."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ks = sorted(accuracies)
    ax.plot(ks, [accuracies[k] for k in ks], marker="o", label="trained CPC")
    ax.plot(ks, [chance[k] for k in ks], color="gray", ls="--", label="chance (1 / candidates)")
    ax.set(xlabel="rows ahead k", ylabel="prediction accuracy", title=title, xticks=ks)
    ax.legend()
    fig.tight_layout()
    return fig
