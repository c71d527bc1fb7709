"""Notebook 10's helpers: the last block's self-attention of a ``TinyViT`` (recomputed from the
block's input, which a forward hook catches), how much of it falls on the shape, and the
figures (attention grids, Sinkhorn assignments, DINO's meters over training).

The course's ViT has no [CLS] token: its representation is the mean of the final tokens.
The attention a [CLS] token would pay is therefore read through the *mean token's query*
(``query="mean"``: the average of the patches' queries, one query per head, attending over
every patch), the closest stand-in for DINO's [CLS] attention maps; ``query="all"`` gives the
attention each patch receives, averaged over every query instead.

Shape legend: B batch, H heads, N patches, hd head width, D width.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from ..models import TinyViT, eval_mode

__all__ = ["block_input", "block_attention", "block_from_attention", "last_block_attention",
           "attention_on_shape", "plot_attention", "plot_assignments", "plot_meters"]


def _check_vit(vit) -> None:
    if not isinstance(vit, TinyViT):
        raise ValueError(f"vit must be a course_utils.models.TinyViT (build_encoder('vit_tiny', ...)), "
                         f"got {type(vit).__name__}")


@torch.no_grad()
def block_input(vit: TinyViT, x: torch.Tensor, index: int = -1) -> torch.Tensor:
    """The tokens (B, N, D) that block ``index`` receives when ``vit`` encodes images x
    (B, C, H, W): caught by a forward pre-hook, in eval mode, without changing the model."""
    _check_vit(vit)
    seen = []
    handle = vit.blocks[index].register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    try:
        with eval_mode(vit):
            vit.forward_features(x)
    finally:
        handle.remove()
    return seen[0]


def _qkv(block, tokens):
    B, N, D = tokens.shape
    H = block.attn.num_heads
    q, k, v = block.attn.qkv(block.norm1(tokens)).split(D, dim=2)            # 3 x (B, N, D)
    return [t.view(B, N, H, D // H).transpose(1, 2) for t in (q, k, v)]      # 3 x (B, H, N, hd)


def block_attention(block, tokens: torch.Tensor) -> torch.Tensor:
    """The attention weights (B, H, N, N) of a ``TransformerBlock`` on its input tokens (B, N, D):
    softmax(q k^T / sqrt(hd)) with q, k from the block's own norm1 and qkv; rows sum to 1."""
    q, k, _ = _qkv(block, tokens)
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)


def block_from_attention(block, tokens: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
    """The block's output (B, N, D) rebuilt from attention weights ``att`` (B, H, N, N): equal
    to ``block(tokens)`` when att = ``block_attention(block, tokens)`` (the tests check it),
    which shows the weights are the ones the block uses."""
    B, N, D = tokens.shape
    _, _, v = _qkv(block, tokens)
    y = (att @ v).transpose(1, 2).reshape(B, N, D)
    x = tokens + block.attn.resid_drop(block.attn.proj(y))
    return x + block.mlp(block.norm2(x))


@torch.no_grad()
def last_block_attention(vit: TinyViT, x: torch.Tensor, query: str = "mean") -> torch.Tensor:
    """Per head, the attention the last block pays to each patch: (B, H, N). ``query="mean"``:
    the mean token's query (the stand-in for [CLS], see the module docstring); ``"all"``: the
    attention each patch receives, averaged over all queries. Each row sums to 1."""
    if query not in ("mean", "all"):
        raise ValueError(f"query must be 'mean' or 'all', got {query!r}")
    tokens = block_input(vit, x)
    block = vit.blocks[-1]
    with eval_mode(vit):
        if query == "all":
            return block_attention(block, tokens).mean(dim=2)
        q, k, _ = _qkv(block, tokens)
        q_bar = q.mean(dim=2, keepdim=True)                                  # (B, H, 1, hd)
        return (q_bar @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1).squeeze(2)


def attention_on_shape(att: torch.Tensor, mask: torch.Tensor, patch_size: int = 4) -> dict:
    """How much attention falls on the shape. att: (B, H, N) with rows summing to 1; mask:
    (B, S, S) coverage in [0, 1] (``data.shape_factors(...)["mask"]``). Each patch's coverage
    is the mean of the mask over it; ``on_shape`` is the attention mass weighted by coverage,
    per head, averaged over images; ``area`` the shape's share of the image (what a uniform
    attention would put on it); ``lift`` = on_shape / area (1: no preference)."""
    if att.dim() != 3 or mask.dim() != 3 or att.shape[0] != mask.shape[0]:
        raise ValueError(f"att must be (B, H, N) and mask (B, S, S) for the same images; got "
                         f"{tuple(att.shape)} and {tuple(mask.shape)}")
    cover = F.avg_pool2d(mask.float().unsqueeze(1), patch_size).flatten(1).to(att.device)   # (B, N)
    if cover.shape[1] != att.shape[2]:
        raise ValueError(f"the mask gives {cover.shape[1]} patches of {patch_size} px, the attention "
                         f"{att.shape[2]}; pass the ViT's patch_size")
    on = (att.float() * cover.unsqueeze(1)).sum(-1).mean(0)                # (H,)
    area = cover.mean().item()
    return {"on_shape": on, "area": area, "lift": (on.mean() / area).item()}


def plot_attention(images: torch.Tensor, att: torch.Tensor, title: str, mask: torch.Tensor | None = None):
    """A grid: one row per image, the image then one attention map per head (the mask's
    outline on top, if given). images: (B, 3, S, S) in [0, 1]; att: (B, H, N)."""
    B, H, N = att.shape
    n = int(math.isqrt(N))
    fig, axes = plt.subplots(B, H + 1, figsize=(1.6 * (H + 1), 1.6 * B), squeeze=False)
    for b in range(B):
        axes[b, 0].imshow(images[b].permute(1, 2, 0).cpu().clamp(0, 1))
        for h in range(H):
            axes[b, h + 1].imshow(att[b, h].reshape(n, n).cpu(), cmap="inferno")
            if mask is not None:
                axes[b, h + 1].contour(F.avg_pool2d(mask[b][None, None].float(), mask.shape[-1] // n)[0, 0].cpu(),
                                       levels=[0.5], colors="cyan", linewidths=0.8)
        if b == 0:
            axes[0, 0].set_title("image", fontsize=8)
            for h in range(H):
                axes[0, h + 1].set_title(f"head {h}", fontsize=8)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    axes[-1, 0].set_xlabel("patch column")
    axes[-1, 0].set_ylabel("patch row")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_assignments(panels: dict, title: str = "Soft assignments of a batch to the prototypes"):
    """Heat maps of codes (B, K), one panel per entry of ``panels`` ({label: codes}), with each
    prototype's share of the batch (column sums / B) drawn below each."""
    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 5), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]})
    for j, (label, q) in enumerate(panels.items()):
        q = q.detach().float().cpu()
        axes[0, j].imshow(q, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        axes[0, j].set(title=label, xlabel="prototype k", ylabel="sample i")
        axes[1, j].bar(range(q.shape[1]), q.sum(0) / q.shape[0])
        axes[1, j].axhline(1 / q.shape[1], color="gray", ls="--", lw=1, label="1/K")
        axes[1, j].set(xlabel="prototype k", ylabel="share of batch")
        axes[1, j].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_meters(histories: dict, K: int, keys=("teacher_entropy", "kl"), window: int = 10,
                title: str = "DINO's meters over training"):
    """One panel per key of the training logs (``history["logs"]``), one line per run, smoothed
    over ``window`` steps; the entropy panel shows log K (a uniform teacher) as a dashed line."""
    labels = {"teacher_entropy": "teacher entropy (nats)", "kl": "KL(teacher || student) (nats)"}
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, h in histories.items():
            y = torch.stack([torch.as_tensor(v).float() for v in h["logs"][key]])
            w = max(1, min(window, len(y)))
            smooth = F.avg_pool1d(y[None, None], w, stride=1)[0, 0] if len(y) >= w else y
            ax.plot(range(w - 1, w - 1 + len(smooth)), smooth, label=name)
        if key == "teacher_entropy":
            ax.axhline(math.log(K), color="gray", ls="--", lw=1, label="log K (uniform)")
        ax.set(xlabel="training step", ylabel=labels.get(key, key), title=labels.get(key, key))
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
