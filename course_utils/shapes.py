"""The embedded image data set: procedurally drawn shapes, no download needed.

Each image shows one shape (the class) drawn at a random position, size and rotation,
in a random colour on a random two-colour gradient background, with a few faint
distractor strokes and pixel noise. The class is the *shape alone*: colour, position,
size, rotation and background are nuisances. That is what makes it a fair test bed
for self-supervised learning:

* raw pixels are dominated by the nuisances, so kNN on pixels does poorly;
* a randomly initialised CNN does no better by kNN and only a little better by a linear
  probe (notebook 00 measures both);
* augmentations that change colour and crop (SimCLR's) teach exactly the invariances
  that separate shape from nuisance, so SSL features do clearly better.

Everything is drawn with batched tensor maths (an implicit function per shape,
evaluated on a 2x super-sampled grid, then averaged for anti-aliasing): 12,000 images
take under 20 seconds on one CPU core. The same seed gives the same images on every machine.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SHAPE_CLASSES = ("disk", "ring", "square", "triangle", "plus", "star", "crescent", "heart")


def _inside(cls: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-mask (0/1) of each class's shape in its own frame (unit size).

    cls: (B,) class ids; u, v: (B, S, S) shape-frame coordinates. Returns (B, S, S).
    Each class's field is evaluated only on the images of that class.
    """
    out = torch.zeros_like(u)
    for k, field_fn in enumerate(_FIELDS):
        idx = (cls == k).nonzero().squeeze(1)
        if idx.numel():
            out[idx] = (field_fn(u[idx], v[idx]) < 0).float()
    return out


def _polar(u, v):
    return torch.sqrt(u * u + v * v), torch.atan2(v, u)


# signed "distance-like" fields, negative inside, one per class in SHAPE_CLASSES order
_FIELDS = (
    lambda u, v: u * u + v * v - 0.81,                                       # disk
    lambda u, v: (torch.sqrt(u * u + v * v) - 0.62).abs() - 0.3,             # ring
    lambda u, v: torch.maximum(u.abs(), v.abs()) - 0.75,                     # square
    lambda u, v: _triangle(u, v),                                            # triangle
    lambda u, v: torch.minimum(torch.maximum(u.abs() - 0.95, v.abs() - 0.3),
                               torch.maximum(v.abs() - 0.95, u.abs() - 0.3)),  # plus
    lambda u, v: _star(u, v),                                                # star
    lambda u, v: torch.maximum(u * u + v * v - 0.9025,
                               0.5184 - ((u - 0.45) ** 2 + v * v)),          # crescent
    lambda u, v: _heart(u, v),                                               # heart
)


def _star(u, v):
    r, theta = _polar(u, v)
    return r - (0.62 + 0.35 * torch.cos(5 * theta))


def _triangle(u, v):
    # equilateral triangle with circumradius 1: max over the three edge half-planes
    d = []
    for k in range(3):
        a = math.pi / 2 + k * 2 * math.pi / 3
        d.append(-(u * math.cos(a) + v * math.sin(a)) - 0.5)
    return torch.stack(d).amax(0)


def _heart(u, v):
    x, y = u * 1.15, -v * 1.15 + 0.15
    return (x * x + y * y - 1) ** 3 - x * x * y ** 3


def _random_colours(n: int, g: torch.Generator) -> torch.Tensor:
    """Saturated-ish random colours (n, 3) in [0, 1] via random hue, saturation, value."""
    h = torch.rand(n, generator=g)
    s = 0.35 + 0.65 * torch.rand(n, generator=g)
    val = 0.35 + 0.65 * torch.rand(n, generator=g)
    k = (torch.arange(3).float().view(1, 3) * 2 / 6 + h.view(-1, 1)) % 1.0  # hue offsets for r,g,b
    rgb = (torch.cos(2 * math.pi * k) + 1) / 2  # smooth hue wheel
    return val.view(-1, 1) * (1 - s.view(-1, 1) + s.view(-1, 1) * rgb)


def draw_shapes(labels: torch.Tensor, image_size: int = 32, seed: int = 0,
                noise: float = 0.04, clutter: int = 2, return_factors: bool = False):
    """Draw one image per label. labels: (B,) ints in [0, 8). Returns uint8 (B, 3, H, W),
    and with ``return_factors=True`` also the nuisance factors that drew each image
    (see :data:`FACTORS`); the images are the same either way."""
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D (B,), got shape {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= len(SHAPE_CLASSES)):
        raise ValueError(f"labels must be in [0, {len(SHAPE_CLASSES)}), got {labels.min()}..{labels.max()}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    g = torch.Generator().manual_seed(seed)
    B, S = labels.numel(), 2 * image_size  # draw at 2x, then average-pool for anti-aliasing
    lin = (torch.arange(S).float() + 0.5) / S * 2 - 1  # pixel centres in [-1, 1]
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    xx, yy = xx.expand(B, S, S), yy.expand(B, S, S)

    # background: a linear gradient between two random colours, in a random direction
    c0, c1 = _random_colours(B, g), _random_colours(B, g)
    ang = 2 * math.pi * torch.rand(B, generator=g)
    t = ((xx * torch.cos(ang).view(-1, 1, 1) + yy * torch.sin(ang).view(-1, 1, 1)) + 1.5) / 3
    img = c0.view(B, 3, 1, 1) + (c1 - c0).view(B, 3, 1, 1) * t.unsqueeze(1)  # (B, 3, S, S)

    # clutter: thin random line segments in random colours (nuisance structure)
    for _ in range(clutter):
        p = torch.rand(B, 2, generator=g) * 2 - 1
        a = math.pi * torch.rand(B, generator=g)
        dist = ((xx - p[:, 0, None, None]) * torch.sin(a).view(-1, 1, 1)
                - (yy - p[:, 1, None, None]) * torch.cos(a).view(-1, 1, 1)).abs()
        along = ((xx - p[:, 0, None, None]) * torch.cos(a).view(-1, 1, 1)
                 + (yy - p[:, 1, None, None]) * torch.sin(a).view(-1, 1, 1)).abs()
        seg = ((dist < 0.04) & (along < 0.45)).float().unsqueeze(1)
        img = img * (1 - seg) + _random_colours(B, g).view(B, 3, 1, 1) * seg

    # the shape: random scale, rotation and position, colour far enough from the background
    scale = 0.5 + 0.3 * torch.rand(B, generator=g)
    rot = 2 * math.pi * torch.rand(B, generator=g)
    centre = (torch.rand(B, 2, generator=g) * 2 - 1) * (1 - scale.view(-1, 1)) * 0.9
    dx, dy = xx - centre[:, 0, None, None], yy - centre[:, 1, None, None]
    cr, sr = torch.cos(rot).view(-1, 1, 1), torch.sin(rot).view(-1, 1, 1)
    u = (cr * dx + sr * dy) / scale.view(-1, 1, 1)
    v = (-sr * dx + cr * dy) / scale.view(-1, 1, 1)
    mask = _inside(labels, u, v).unsqueeze(1)  # (B, 1, S, S)
    fg = _random_colours(B, g)
    bg_mean = (c0 + c1) / 2
    too_close = (fg - bg_mean).abs().sum(1) < 0.6
    fg[too_close] = 1 - bg_mean[too_close]  # guarantee the shape is visible
    img = img * (1 - mask) + fg.view(B, 3, 1, 1) * mask

    img = F.avg_pool2d(img, 2)  # (B, 3, H, W)
    img = img + noise * torch.randn(img.shape, generator=g)
    images = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    if not return_factors:
        return images
    return images, {"mask": F.avg_pool2d(mask, 2).squeeze(1), "colour": fg, "background": torch.stack([c0, c1], 1),
                    "scale": scale, "rotation": rot, "centre": centre}


# what ``return_factors=True`` gives, per image: everything the generator chose except the class
FACTORS = {
    "mask": "(H, W) the fraction of each pixel the shape covers, 0 to 1 (anti-aliased edges)",
    "colour": "(3,) the shape's RGB colour, 0 to 1",
    "background": "(2, 3) the two RGB colours of the background gradient",
    "scale": "() the shape's size, 0.5 to 0.8 of the half-width of the image",
    "rotation": "() the shape's rotation in radians, 0 to 2 pi",
    "centre": "(2,) the shape's centre (x, y), each in [-1, 1]: x to the right, y downwards",
}


def make_shapes(n: int, seed: int = 0, image_size: int = 32, chunk: int = 2048, return_factors: bool = False):
    """``n`` images with balanced labels: returns (images uint8 (n, 3, H, W), labels (n,)),
    and with ``return_factors=True`` a third item, the dict of :data:`FACTORS` (one row per image)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(SHAPE_CLASSES)
    labels = labels[torch.randperm(n, generator=g)]
    parts = [draw_shapes(labels[i:i + chunk], image_size, seed=seed * 1_000_003 + i, return_factors=True)
             for i in range(0, n, chunk)]
    images = torch.cat([images for images, _ in parts])
    if not return_factors:
        return images, labels
    return images, labels, {k: torch.cat([f[k] for _, f in parts]) for k in FACTORS}
