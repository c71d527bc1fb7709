"""Pretext tasks: a question about an image whose answer the image itself provides.

=============  =======================================  =========================================
task           paper                                    the question (classes)
=============  =======================================  =========================================
rotation       Gidaris et al. 2018, arXiv:1803.07728    by how much was the image turned? (4)
jigsaw         Noroozi & Favaro 2016, arXiv:1603.09246  which permutation shuffled the 3x3 tiles? (P)
colourisation  Zhang et al. 2016, arXiv:1603.08511      the colour of each region, given its
               (in methods/colourisation.py)            brightness? (Q colour bins per region)
context        Doersch et al. 2015, arXiv:1505.05192    where is this patch relative to the centre
                                                        patch? (8 neighbours)
=============  =======================================  =========================================

Each task is a ``Method`` around any encoder with ``forward_features``:
``training_step(batch)`` returns the loss and ``pretext_accuracy``, how often the task was
solved on the batch, for ``train.train`` (the labels in the batch are never used). Each
also has ``pretext_logits(x, generator) -> (logits, targets)``, so :func:`pretext_accuracy`
can measure how well the task itself is solved on held-out images: a task solved too
easily is the first sign of a *shortcut*.

``method(x)`` is the representation, ``encoder.forward_features(x)``, for every task.
Shape legend: B batch, T tiles, P permutations, C/H/W image, D width, t tile side.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment, validate
from ..models import eval_mode
from .base import Method
from .heads import classifier_head


def _check_images(x, name: str, square: bool = False) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects images of shape (B, C, H, W), got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects float images in [0, 1], got dtype {x.dtype}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} expects square images (H == W), got {tuple(x.shape[-2:])}")


def _randint(high: int, shape, x: torch.Tensor, generator=None) -> torch.Tensor:
    """Integers in [0, high) of ``shape`` on x's device, drawn from ``generator``."""
    return augment.random_integers(high, shape, x, generator)


class PretextTask(Method):
    """Base: the loss is the cross-entropy of ``pretext_logits``; the labels are never used.
    Each step also logs ``pretext_accuracy``, how often the task was solved on the batch."""

    def pretext_logits(self, x, generator=None):  # -> logits (M, classes), targets (M,)
        raise NotImplementedError(f"{type(self).__name__} must define pretext_logits(x, generator)")

    def training_step(self, batch):
        x, _ = batch
        logits, targets = self.pretext_logits(x)
        accuracy = (logits.detach().argmax(1) == targets).float().mean()
        return {"loss": F.cross_entropy(logits, targets), "pretext_accuracy": accuracy}


@torch.no_grad()
def pretext_accuracy(method: PretextTask, images, batch_size: int = 256, seed: int = 0) -> float:
    """How often ``method`` answers its own question right on ``images`` (uint8 or float
    (N, C, H, W), or an ImageData), in eval mode and with a fixed random draw."""
    images = images.images if hasattr(images, "images") else images
    if len(images) == 0:
        raise ValueError("images is empty")
    device = next(method.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    correct, total = 0, 0
    with eval_mode(method):
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device)
            x = x.float() / 255 if x.dtype == torch.uint8 else x
            logits, targets = method.pretext_logits(x, generator=g)
            correct += (logits.argmax(1) == targets).sum().item()
            total += len(targets)
    return correct / total


def pretext_monitor(images, knn=None):
    """An ``eval_fn`` for ``train``: the pretext accuracy on held-out ``images`` (and,
    optionally, the metrics of another eval_fn such as ``evaluate.knn_monitor``)."""
    def eval_fn(method):
        out = {"pretext": pretext_accuracy(method, images)}
        return out | (knn(method) if knn is not None else {})
    return eval_fn


# --------------------------------------------------------------------------------------
# rotation (Gidaris, Singh & Komodakis 2018, arXiv:1803.07728)


def rotate_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, as RotNet trains (its Sec. 2.3: the four rotated
    copies of an image go in the same mini-batch).

    x: (B, C, H, H) -> images (4B, C, H, H), labels (4B,): block r (rows r*B .. r*B+B-1)
    holds every image turned by r * 90 degrees counter-clockwise, with label r."""
    _check_images(x, "rotate_batch", square=True)
    images = torch.cat([torch.rot90(x, r, dims=(2, 3)) for r in range(4)])     # (4B, C, H, H)
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))        # (4B,)
    return images, labels


class RotationPrediction(PretextTask):
    """RotNet: encoder + MLP head classifying the rotation (0, 90, 180, 270 degrees).
    Images get a light random crop and flip first, as in supervised training."""

    def __init__(self, encoder: nn.Module, hidden_dim: int = 512, crop_scale=(0.6, 1.0)):
        super().__init__(encoder)
        self.crop_scale = crop_scale
        self.head = classifier_head(encoder.num_features, hidden_dim, 4)

    def pretext_logits(self, x, generator=None):
        if self.training and self.crop_scale is not None:
            x = augment.random_resized_crop(x, x.shape[-1], scale=self.crop_scale, flip_p=0.5,
                                            generator=generator)
        images, labels = rotate_batch(x)
        return self.head(self.encoder.forward_features(images)), labels


# --------------------------------------------------------------------------------------
# tiles: the grid that jigsaw and context prediction cut an image into


def tile_layout(image_size: int, grid: int = 3, tile_size: int | None = None) -> tuple[int, int, int]:
    """(cell, tile, start): the image is a ``grid`` x ``grid`` array of ``cell``-pixel cells
    starting at pixel ``start``; a ``tile``-pixel tile is cut from each cell. ``tile_size``
    None means tile = cell (no gap); tile < cell leaves a gap of cell - tile pixels."""
    if not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid must be an int >= 2, got {grid!r}")
    cell = image_size // grid
    if cell < 1:
        raise ValueError(f"image_size {image_size} is too small for a {grid}x{grid} grid")
    tile = cell if tile_size is None else tile_size
    if not isinstance(tile, int) or not 1 <= tile <= cell:
        raise ValueError(f"tile_size must be an int in [1, {cell}] (the cell size of a {grid}x{grid} "
                         f"grid on {image_size}-pixel images), got {tile_size!r}")
    return cell, tile, (image_size - grid * cell) // 2


def extract_tiles(x: torch.Tensor, grid: int = 3, tile_size: int | None = None, jitter: bool = True,
                  generator=None) -> torch.Tensor:
    """Cut each image into ``grid`` x ``grid`` tiles, in row-major order (tile k sits in
    row k // grid, column k % grid).

    With tile_size < cell each tile is placed inside its cell at a random offset (``jitter``,
    drawn per tile and image) or centred (no jitter): the gaps and the jitter keep a network
    from matching tiles by their borders (Noroozi & Favaro Sec. 3; Doersch et al. Sec. 3).
    x: (B, C, H, H) -> (B, T, C, t, t) with T = grid * grid."""
    _check_images(x, "extract_tiles", square=True)
    B, C, H, _ = x.shape
    cell, t, start = tile_layout(H, grid, tile_size)
    T, gap = grid * grid, cell - t
    if jitter and gap > 0:
        oy, ox = _randint(gap + 1, (B, T), x, generator), _randint(gap + 1, (B, T), x, generator)
    else:
        oy = ox = torch.full((B, T), gap // 2, device=x.device, dtype=torch.long)
    k = torch.arange(T, device=x.device)
    top = start + (k // grid) * cell + oy                                  # (B, T)
    left = start + (k % grid) * cell + ox                                  # (B, T)
    r = torch.arange(t, device=x.device)
    rows = (top.unsqueeze(-1) + r).unsqueeze(-1)                           # (B, T, t, 1)
    cols = (left.unsqueeze(-1) + r).unsqueeze(-2)                          # (B, T, 1, t)
    b = torch.arange(B, device=x.device).view(B, 1, 1, 1)
    tiles = x.permute(0, 2, 3, 1)[b, rows, cols]                           # (B, T, t, t, C)
    return tiles.permute(0, 1, 4, 2, 3).contiguous()                       # (B, T, C, t, t)


def normalize_tiles(tiles: torch.Tensor, eps: float = 0.05) -> torch.Tensor:
    """Give every tile the same mean colour and contrast, so that low-level statistics (the
    brightness of a background gradient, say) cannot tell where a tile came from
    (Noroozi & Favaro normalise each tile's mean and standard deviation, Sec. 3).

    Each channel of each tile is standardised, then mapped back into [0, 1] around grey:
    0.5 + 0.2 * z. tiles: (..., C, t, t) -> same shape."""
    if tiles.dim() < 3:
        raise ValueError(f"tiles must have shape (..., C, t, t), got {tuple(tiles.shape)}")
    mean = tiles.mean(dim=(-1, -2), keepdim=True)
    std = tiles.std(dim=(-1, -2), keepdim=True) if tiles.shape[-1] * tiles.shape[-2] > 1 else 0 * mean
    return (0.5 + 0.2 * (tiles - mean) / (std + eps)).clamp(0, 1)


def _check_upscale(upscale) -> None:
    if not isinstance(upscale, int) or upscale < 1:
        raise ValueError(f"upscale must be an int >= 1, got {upscale!r}")


def upscale_images(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Enlarge images (B, C, H, W) by an integer ``factor`` (bilinear); 1 returns x itself."""
    _check_upscale(factor)
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def drop_colour(tiles: torch.Tensor, generator=None) -> torch.Tensor:
    """Keep one random colour channel of every tile and copy it into the others, so that
    nothing can be read from how the channels line up (Doersch et al.'s colour dropping,
    Sec. 3.1, against chromatic aberration). tiles: (..., C, t, t) -> same shape."""
    if tiles.dim() < 3:
        raise ValueError(f"tiles must have shape (..., C, t, t), got {tuple(tiles.shape)}")
    flat = tiles.reshape(-1, *tiles.shape[-3:])                            # (M, C, t, t)
    keep = _randint(flat.shape[1], (len(flat),), flat, generator)
    kept = flat[torch.arange(len(flat), device=flat.device), keep]         # (M, t, t)
    return kept.unsqueeze(1).expand_as(flat).reshape(tiles.shape)


def _clean_tiles(tiles, normalize: bool, colour_drop: bool, generator):
    if colour_drop:
        tiles = drop_colour(tiles, generator)
    return normalize_tiles(tiles) if normalize else tiles


# --------------------------------------------------------------------------------------
# jigsaw (Noroozi & Favaro 2016, arXiv:1603.09246)


@lru_cache(maxsize=4)
def all_permutations(n: int) -> torch.Tensor:
    """Every permutation of range(n) in lexicographic order: (n!, n) int64. n <= 10.

    Built from those of range(k - 1): each first element f, followed by the smaller
    permutations written in the remaining k - 1 elements."""
    if not isinstance(n, int) or not 1 <= n <= 10:
        raise ValueError(f"n must be an int in [1, 10] (10! rows already take 290 MB), got {n!r}")
    perms = torch.zeros(1, 0, dtype=torch.long)
    for k in range(1, n + 1):
        rows = []
        for first in range(k):
            rest = torch.tensor([i for i in range(k) if i != first], dtype=torch.long)
            rows.append(torch.cat([torch.full((len(perms), 1), first), rest[perms]], dim=1))
        perms = torch.cat(rows)
    return perms


def hamming_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Number of positions at which permutations differ. a: (P, T), b: (Q, T) -> (P, Q)."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have shapes (P, T) and (Q, T), got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return (a.unsqueeze(1) != b.unsqueeze(0)).sum(-1)


def max_hamming_permutations(num_permutations: int, num_tiles: int = 9, seed: int = 0,
                             max_candidates: int = 400_000) -> torch.Tensor:
    """A set of permutations far apart from each other, chosen greedily (max-min).

    Start from a random permutation; then repeatedly add the candidate whose *smallest*
    Hamming distance to the permutations chosen so far is largest (ties: the first in
    lexicographic order). Noroozi & Favaro's Algorithm 1 maximises the *average* distance;
    max-min guarantees that no two chosen permutations are close, so no two classes of
    the task are nearly the same puzzle. Candidates: all num_tiles! permutations, or
    ``max_candidates`` random ones when there are more.
    Returns (P, T) int64, P = num_permutations, T = num_tiles."""
    if not isinstance(num_tiles, int) or num_tiles < 2:
        raise ValueError(f"num_tiles must be an int >= 2, got {num_tiles!r}")
    total = math.factorial(num_tiles)
    g = torch.Generator().manual_seed(seed)
    if total <= max_candidates:
        candidates = all_permutations(num_tiles)
    else:
        candidates = torch.stack([torch.randperm(num_tiles, generator=g) for _ in range(max_candidates)])
    if not isinstance(num_permutations, int) or not 1 <= num_permutations <= len(candidates):
        raise ValueError(f"num_permutations must be an int in [1, {len(candidates)}] for {num_tiles} tiles, "
                         f"got {num_permutations!r}")
    columns = candidates.to(torch.int8).T.contiguous()          # (T, N): one row per position, fast to scan

    def distance_to(j):  # Hamming distance of every candidate to candidate j: (N,)
        agree = torch.zeros(columns.shape[1], dtype=torch.int8)
        for pos in range(num_tiles):
            agree += columns[pos] == columns[pos, j]
        return num_tiles - agree

    chosen = [int(torch.randint(len(candidates), (1,), generator=g))]
    min_dist = distance_to(chosen[0])                              # (N,) distance to the nearest chosen
    for _ in range(num_permutations - 1):
        j = int(min_dist.argmax())                                 # farthest from its nearest chosen one
        chosen.append(j)
        min_dist = torch.minimum(min_dist, distance_to(j))
    return candidates[chosen].clone()


def shuffle_tiles(tiles: torch.Tensor, permutations: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Put the tiles of image b in the order ``permutations[index[b]]``: position i of the
    result shows the tile from position ``permutations[index[b], i]`` of the original.
    tiles (B, T, ...), permutations (P, T), index (B,) -> (B, T, ...)."""
    if permutations.dim() != 2 or permutations.shape[1] != tiles.shape[1]:
        raise ValueError(f"permutations must be (P, T={tiles.shape[1]}), got {tuple(permutations.shape)}")
    if index.shape != (tiles.shape[0],):
        raise ValueError(f"index must have shape (B,) = ({tiles.shape[0]},), got {tuple(index.shape)}")
    order = permutations.to(tiles.device)[index.to(tiles.device)]               # (B, T)
    return tiles[torch.arange(len(tiles), device=tiles.device).unsqueeze(1), order]


class Jigsaw(PretextTask):
    """Solve a 3x3 jigsaw puzzle: cut the image into tiles (with gaps and jitter), shuffle
    them by one of P permutations of maximal Hamming distance, and classify which one.

    Every tile goes through the same encoder on its own (the paper's "context-free
    network": no tile sees another), a shared layer maps each tile's features to
    ``hidden_dim``, and an MLP on the T concatenated vectors predicts the permutation.
    ``tile_size`` None: no gaps; ``jitter``: random tile offsets within their cells;
    ``normalize``: per-tile colour normalisation (:func:`normalize_tiles`); ``colour_drop``:
    keep one random colour channel per tile (:func:`drop_colour`); ``upscale``: enlarge
    the images by this factor first, so that small images give tiles big enough to see
    something (32-pixel images: 3x3 tiles of 8 pixels, or of 16 after ``upscale=2``)."""

    def __init__(self, encoder: nn.Module, num_permutations: int = 64, grid: int = 3,
                 tile_size: int | None = None, jitter: bool = True, normalize: bool = False,
                 colour_drop: bool = False, upscale: int = 1, hidden_dim: int = 256, seed: int = 0):
        super().__init__(encoder)
        _check_upscale(upscale)
        validate.integer("grid", grid, low=2, example="3, for 3x3 tiles")
        validate.integer("hidden_dim", hidden_dim, example="256")
        validate.integer("seed", seed, low=0, example="0")
        self.grid, self.tile_size, self.upscale = grid, tile_size, upscale
        self.jitter, self.normalize, self.colour_drop = jitter, normalize, colour_drop
        self.register_buffer("permutations", max_hamming_permutations(num_permutations, grid * grid, seed))
        self.tile_fc = nn.Sequential(nn.Linear(encoder.num_features, hidden_dim), nn.ReLU(inplace=True))
        self.head = classifier_head(grid * grid * hidden_dim, hidden_dim, num_permutations)

    def puzzle(self, x, generator=None):
        """Images (B, C, H, H) -> shuffled tiles (B, T, C, t, t), permutation index (B,)."""
        x = upscale_images(x, self.upscale)
        tiles = extract_tiles(x, self.grid, self.tile_size, self.jitter, generator)
        tiles = _clean_tiles(tiles, self.normalize, self.colour_drop, generator)
        index = _randint(len(self.permutations), (len(x),), x, generator)
        return shuffle_tiles(tiles, self.permutations, index), index

    def pretext_logits(self, x, generator=None):
        tiles, index = self.puzzle(x, generator)
        B, T = tiles.shape[:2]
        h = self.encoder.forward_features(tiles.flatten(0, 1))       # (B*T, D): each tile alone
        h = self.tile_fc(h).view(B, -1)                               # (B, T*hidden)
        return self.head(h), index


# --------------------------------------------------------------------------------------
# context prediction (Doersch, Gupta & Efros 2015, arXiv:1505.05192)

# tile indices of the 8 neighbours of the centre tile (4) of a 3x3 grid; label k <-> NEIGHBOURS[k]
NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)
NEIGHBOUR_NAMES = ("top-left", "top", "top-right", "left", "right", "bottom-left", "bottom", "bottom-right")


def context_pairs(x: torch.Tensor, tile_size: int | None = None, jitter: bool = True, generator=None):
    """One (centre, neighbour) patch pair per image and the neighbour's position.

    x: (B, C, H, H) -> centre (B, C, t, t), neighbour (B, C, t, t), labels (B,) in [0, 8):
    the neighbour is tile NEIGHBOURS[label] of the 3x3 grid (named in NEIGHBOUR_NAMES)."""
    tiles = extract_tiles(x, 3, tile_size, jitter, generator)          # (B, 9, C, t, t)
    labels = _randint(8, (len(x),), x, generator)
    where = torch.tensor(NEIGHBOURS, device=x.device)[labels]
    return tiles[:, 4], tiles[torch.arange(len(x), device=x.device), where], labels


class ContextPrediction(PretextTask):
    """Doersch et al.'s pair network: the centre patch and one neighbour go through the same
    encoder separately; a shared layer maps each to ``hidden_dim``; an MLP on the two
    concatenated vectors predicts which of the 8 neighbours it is. Gaps and jitter keep it
    from matching borders; ``colour_drop`` (the paper's "colour dropping", Sec. 3.1) from
    reading chromatic aberration; ``normalize``, ``upscale``: as in :class:`Jigsaw`."""

    def __init__(self, encoder: nn.Module, tile_size: int | None = None, jitter: bool = True,
                 normalize: bool = False, colour_drop: bool = False, upscale: int = 1, hidden_dim: int = 256):
        super().__init__(encoder)
        _check_upscale(upscale)
        validate.integer("hidden_dim", hidden_dim, example="256")
        self.tile_size, self.jitter, self.upscale = tile_size, jitter, upscale
        self.normalize, self.colour_drop = normalize, colour_drop
        self.patch_fc = nn.Sequential(nn.Linear(encoder.num_features, hidden_dim), nn.ReLU(inplace=True))
        self.head = classifier_head(2 * hidden_dim, hidden_dim, 8)

    def pretext_logits(self, x, generator=None):
        centre, neighbour, labels = context_pairs(upscale_images(x, self.upscale), self.tile_size,
                                                  self.jitter, generator)
        pair = torch.stack([centre, neighbour], dim=1)                # (B, 2, C, t, t)
        pair = _clean_tiles(pair, self.normalize, self.colour_drop, generator)
        h = self.patch_fc(self.encoder.forward_features(pair.flatten(0, 1)))   # (2B, hidden)
        return self.head(h.view(len(x), -1)), labels
