"""Batched image augmentations with a different random draw for every image.

Per-sample pipelines (torchvision on PIL images in a DataLoader) spend most of their time
in Python, one image at a time. Here each augmentation is a few tensor operations on the
whole batch, on its device: parameters drawn as (B,) tensors, then one ``grid_sample``,
batched matrix product or grouped convolution.

Conventions: images are float (B, C, H, W) in [0, 1]; uint8 images are accepted and
converted to float32 by /255 (so a uint8 batch comes back float32). Outputs keep shape
(except crops), device and dtype, clamped to [0, 1]. Every random function takes
``generator`` (a ``torch.Generator`` on any device) for reproducible draws; without one
it uses PyTorch's global generator. Settings follow SimCLR (Chen et al. 2020,
arXiv:2002.05709, Appendix A).

Shape legend: B batch, C/H/W image.
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision uses

# --------------------------------------------------------------------------------------
# helpers: input checks and random numbers


def _prepare(x: torch.Tensor, name: str) -> torch.Tensor:
    """Check x is (B, C, H, W); uint8 -> float32 in [0, 1]; other floats pass through."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects a batch of images of shape (B, C, H, W), got {shape}")
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255)
    if not x.is_floating_point():
        raise ValueError(f"{name} expects float images in [0, 1] or uint8, got dtype {x.dtype}")
    return x


def _check_p(p: float, name: str = "p") -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


def _check_rgb(x: torch.Tensor, name: str) -> None:
    if x.shape[1] != 3:
        raise ValueError(f"{name} needs RGB images (B, 3, H, W), got {x.shape[1]} channel(s)")


def _rand(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) numbers on x's device and in x's dtype, drawn from ``generator``
    wherever it lives (a CPU generator cannot draw on a GPU: draw there, then move)."""
    if generator is None or generator.device == x.device:
        return torch.rand(shape, device=x.device, dtype=x.dtype, generator=generator)
    return torch.rand(shape, device=generator.device, dtype=x.dtype, generator=generator).to(x.device)


def _uniform(lo: float, hi: float, n: int, x: torch.Tensor, generator) -> torch.Tensor:
    """(n,) numbers uniform in [lo, hi)."""
    return lo + (hi - lo) * _rand((n,), x, generator)


def _choose(p: float, x: torch.Tensor, generator) -> torch.Tensor:
    """Boolean mask (B, 1, 1, 1): which images get an augmentation applied with probability p."""
    return (_rand((x.shape[0],), x, generator) < p).view(-1, 1, 1, 1)


# --------------------------------------------------------------------------------------
# geometry: crop and flip


def _crop_boxes(x: torch.Tensor, scale, ratio, generator):
    """One crop box per image, drawn as torchvision's RandomResizedCrop draws them: area
    fraction uniform in ``scale``, aspect ratio (width / height, in pixels) log-uniform in
    ``ratio``, position uniform. Where the box would stick out, its aspect ratio is pulled
    in until it fits, keeping its area (torchvision redraws up to 10 times instead, then
    falls back to a centre crop with the aspect ratio pulled in the same way).

    Returns w, h: (B,) box width and height as fractions of the image's, and cx, cy: (B,)
    the box centre in ``grid_sample`` coordinates (-1 left/top edge, +1 right/bottom edge).
    """
    B, _, H, W = x.shape
    area = _uniform(scale[0], scale[1], B, x, generator)
    aspect = torch.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), B, x, generator))
    # in pixels (w W) (h H) = area H W and (w W) / (h H) = aspect; w <= 1 and h <= 1 hold
    # when area W / H <= aspect <= W / (area H)
    aspect = torch.minimum(torch.maximum(aspect, area * W / H), W / (area * H))
    w = torch.sqrt(area * aspect * H / W).clamp(max=1.0)  # clamp: rounding only
    h = torch.sqrt(area / aspect * W / H).clamp(max=1.0)
    cx = (1 - w) * (2 * _rand((B,), x, generator) - 1)  # uniform over the centres that fit
    cy = (1 - h) * (2 * _rand((B,), x, generator) - 1)
    return w, h, cx, cy


def random_resized_crop(x: torch.Tensor, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        flip_p: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random box of each image and resize it to ``size`` x ``size``, bilinearly
    (SimCLR's main augmentation, arXiv:2002.05709 Appendix A). With ``flip_p`` > 0 it also
    mirrors each image with probability ``flip_p`` in the same resampling, for free.

    x: (B, C, H, W), any C -> (B, C, size, size). One affine grid for the whole batch.
    """
    x = _prepare(x, "random_resized_crop")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"scale must be (min, max) with 0 < min <= max <= 1, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {ratio}")
    _check_p(flip_p, "flip_p")
    B, C = x.shape[:2]
    w, h, cx, cy = _crop_boxes(x, scale, ratio, generator)
    flip = 1 - 2 * (_rand((B,), x, generator) < flip_p).to(x.dtype)  # -1 mirrors, +1 keeps
    zero = torch.zeros_like(w)
    theta = torch.stack([w * flip, zero, cx, zero, h, cy], dim=1).view(B, 2, 3)  # output -> input coords
    grid = F.affine_grid(theta, [B, C, size, size], align_corners=False)  # (B, size, size, 2)
    # boxes lie inside the image; "border" only repeats the edge pixel within half a pixel of it
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0, 1)  # bilinear weights sum to 1 only up to rounding


def random_horizontal_flip(x: torch.Tensor, p: float = 0.5,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability p. x: (B, C, H, W), any C -> same."""
    x = _prepare(x, "random_horizontal_flip")
    _check_p(p)
    return torch.where(_choose(p, x, generator), x.flip(-1), x)


# --------------------------------------------------------------------------------------
# colour: jitter and grayscale

# Hue rotation in YIQ space, where Y is luma and (I, Q) the chroma plane. Rotating (I, Q)
# by theta is yiq2rgb @ R(theta) @ rgb2yiq, and R(theta) = I + (cos theta - 1) E + sin theta J
# with E = diag(0, 1, 1) and J the 90-degree turn of (I, Q). So the RGB matrix is
# I + (cos theta - 1) _HUE_COS + sin theta _HUE_SIN: exactly the identity at theta = 0.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                        dtype=torch.float64)
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)
_HUE_COS = _YIQ2RGB @ torch.diag(torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)) @ _RGB2YIQ
_HUE_SIN = _YIQ2RGB @ torch.tensor([[0.0, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64) @ _RGB2YIQ


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> luma (B, 1, H, W), ITU-R 601 weights."""
    w = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _yiq_hue_matrix(h: torch.Tensor) -> torch.Tensor:
    """(B,) hue shifts in turns -> (B, 3, 3) RGB -> RGB matrices rotating chroma in YIQ.

    The angle is -2 pi h because in the (I, Q) plane red -> yellow -> green runs clockwise,
    while HSV's hue (torchvision's) runs red -> yellow -> green for h > 0."""
    theta = -2 * math.pi * h
    c, s = (torch.cos(theta) - 1).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    eye = torch.eye(3, device=h.device, dtype=h.dtype)
    return eye + c * _HUE_COS.to(h.device, h.dtype) + s * _HUE_SIN.to(h.device, h.dtype)


def _apply_jitter(x: torch.Tensor, b: torch.Tensor, c: torch.Tensor, s: torch.Tensor,
                  h: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation and hue with explicit per-image factors.

    x: (B, 3, H, W); b, c, s: (B,) factors (1 keeps the image); h: (B,) hue shift in turns
    (0 keeps). Each step blends as torchvision's ``_blend`` does, ``f x + (1 - f) other``,
    then clamps: brightness blends with black, contrast with the image's mean luma,
    saturation with the luma image. Hue rotates chroma in YIQ space: torchvision shifts hue
    in HSV, which needs a per-pixel branch; the rotation is one 3x3 matrix per image, keeps
    luma exactly, and moves hue the same way by a similar (not equal) amount.
    Factors of exactly 1, 1, 1, 0 return an image in [0, 1] unchanged, bit for bit (to
    about 1e-3 if reduced-precision TF32 matmuls have been switched on for a GPU).
    """
    b, c, s = (f.view(-1, 1, 1, 1) for f in (b, c, s))
    x = (x * b).clamp_(0, 1)                                 # brightness (a new tensor)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)        # (B, 1, 1, 1)
    x = x.mul_(c).add_((1 - c) * mean).clamp_(0, 1)          # contrast
    gray = _gray(x)                                          # (B, 1, H, W)
    x = x.mul_(s).add_((1 - s) * gray).clamp_(0, 1)          # saturation
    x = torch.bmm(_yiq_hue_matrix(h), x.flatten(2)).view_as(x)  # hue: (B, 3, 3) @ (B, 3, H*W)
    return x.clamp_(0, 1)


def color_jitter(x: torch.Tensor, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1, p: float = 0.8, generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image: brightness, contrast and saturation factors uniform in
    [1 - s, 1 + s] (s the strength) and a hue shift uniform in [-hue, hue] turns, as
    torchvision's ColorJitter draws them, applied in that fixed order (torchvision shuffles
    the order per image). x: (B, 3, H, W) -> same.
    """
    x = _prepare(x, "color_jitter")
    _check_rgb(x, "color_jitter")
    for name, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if not v >= 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5] (a fraction of a full turn), got {hue}")
    _check_p(p)
    B = x.shape[0]
    b = _uniform(max(0.0, 1 - brightness), 1 + brightness, B, x, generator)
    c = _uniform(max(0.0, 1 - contrast), 1 + contrast, B, x, generator)
    s = _uniform(max(0.0, 1 - saturation), 1 + saturation, B, x, generator)
    h = _uniform(-hue, hue, B, x, generator)
    # images not chosen get the identity factors, which leave them exactly as they are:
    # cheaper than jittering every image and selecting with torch.where
    keep = ~_choose(p, x, generator).view(-1)
    b, c, s = (f.masked_fill(keep, 1.0) for f in (b, c, s))
    return _apply_jitter(x, b, c, s, h.masked_fill(keep, 0.0))


def random_grayscale(x: torch.Tensor, p: float = 0.2,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image, replace RGB by its luma repeated 3 times.
    x: (B, 3, H, W) -> same."""
    x = _prepare(x, "random_grayscale")
    _check_rgb(x, "random_grayscale")
    _check_p(p)
    return torch.where(_choose(p, x, generator), _gray(x).expand_as(x), x)


# --------------------------------------------------------------------------------------
# blur, solarize, normalize


def _gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """(B,) standard deviations in pixels -> (B, kernel_size) 1-D kernels summing to 1."""
    r = kernel_size // 2
    t = torch.arange(-r, r + 1, device=sigma.device, dtype=sigma.dtype)
    k = torch.exp(-0.5 * (t / sigma.view(-1, 1)) ** 2)
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma=(0.1, 2.0), p: float = 0.5,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image, blur with a Gaussian whose sigma (pixels) is uniform in
    ``sigma`` (SimCLR, arXiv:2002.05709 Appendix A: kernel about 10% of the image side).
    Separable: one grouped convolution per direction for the whole batch, reflect padding.
    x: (B, C, H, W), any C -> same."""
    x = _prepare(x, "gaussian_blur")
    B, C, H, W = x.shape
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    if kernel_size // 2 >= min(H, W):
        raise ValueError(f"kernel_size must be below 2 * min(H, W) = {2 * min(H, W)}, got {kernel_size}")
    if not 0 < sigma[0] <= sigma[1]:
        raise ValueError(f"sigma must be (min, max) with 0 < min <= max, got {sigma}")
    _check_p(p)
    r = kernel_size // 2
    k = _gaussian_kernels(_uniform(sigma[0], sigma[1], B, x, generator), kernel_size)
    k = k.repeat_interleave(C, dim=0)  # (B*C, K): each image's kernel for each of its channels
    y = x.reshape(1, B * C, H, W)      # channels of all images side by side: groups = B*C
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(B * C, 1, 1, -1), groups=B * C)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(B * C, 1, -1, 1), groups=B * C)
    # torch.where rather than identity kernels: convolutions may run in reduced precision (TF32)
    return torch.where(_choose(p, x, generator), y.view(B, C, H, W).clamp_(0, 1), x)


def solarize(x: torch.Tensor, threshold: float = 0.5, p: float = 0.2,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image, invert (v -> 1 - v) every value >= ``threshold``
    (BYOL's solarization, arXiv:2006.07733 Table 6). x: (B, C, H, W), any C -> same."""
    x = _prepare(x, "solarize")
    _check_p(p)
    return torch.where(_choose(p, x, generator) & (x >= threshold), 1 - x, x)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std per channel; mean, std: C numbers (or one). x: (B, C, H, W) -> same, not
    clamped (the result is no longer in [0, 1])."""
    x = _prepare(x, "normalize")
    m = torch.as_tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    if not (s > 0).all():
        raise ValueError(f"std must be > 0 for every channel, got {std}")
    if m.shape[1] not in (1, x.shape[1]) or s.shape[1] not in (1, x.shape[1]):
        raise ValueError(f"mean and std need 1 or C = {x.shape[1]} numbers, got {mean}, {std}")
    return (x - m.to(x.device)) / s.to(x.device)


# --------------------------------------------------------------------------------------
# pipelines and presets


@dataclasses.dataclass
class SimCLRTransform:
    """SimCLR's augmentation pipeline (arXiv:2002.05709, Appendix A), batched.

    crop + flip -> colour jitter (prob. ``jitter_p``) -> grayscale -> [blur] -> [solarize].
    Colour jitter at strength s: brightness = contrast = saturation = 0.8 s, hue = 0.2 s.
    Blur is off by default: the paper drops it for 32x32 CIFAR images; when on, its kernel is
    about 10% of ``image_size``, made odd. Every setting is a public attribute (change one,
    or use ``dataclasses.replace``). ``t(x, generator=None)``: (B, 3, H, W) -> (B, 3, S, S)
    with S = image_size.
    """

    image_size: int = 32
    crop_scale: tuple = (0.08, 1.0)
    flip_p: float = 0.5
    jitter_strength: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0
    solarize_p: float = 0.0

    def __post_init__(self):
        self.crop_scale = tuple(self.crop_scale)
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"image_size must be a positive int, got {self.image_size!r}")
        if not self.jitter_strength >= 0:
            raise ValueError(f"jitter_strength must be >= 0, got {self.jitter_strength}")
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            _check_p(getattr(self, name), name)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = random_resized_crop(x, self.image_size, scale=self.crop_scale, flip_p=self.flip_p,
                                generator=generator)  # the flip folded into the crop: one resampling
        s = self.jitter_strength
        if s > 0 and self.jitter_p > 0:
            x = color_jitter(x, 0.8 * s, 0.8 * s, 0.8 * s, min(0.5, 0.2 * s), p=self.jitter_p,
                             generator=generator)
        if self.grayscale_p > 0:
            x = random_grayscale(x, self.grayscale_p, generator=generator)
        if self.blur_p > 0:
            k = max(3, int(0.1 * self.image_size) // 2 * 2 + 1)  # about 10% of the image, odd
            x = gaussian_blur(x, k, p=self.blur_p, generator=generator)
        if self.solarize_p > 0:
            x = solarize(x, p=self.solarize_p, generator=generator)
        return x


class TwoViews:
    """``x1, x2 = TwoViews(transform)(x)``: two independent draws over the same batch.
    x: (B, C, H, W) -> two tensors shaped like ``transform(x)``."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None):
        return self.transform(x, generator=generator), self.transform(x, generator=generator)

    def __repr__(self) -> str:
        return f"TwoViews({self.transform!r})"


class MultiViews:
    """``views = MultiViews(transform, n_views)(x)``: a list of n_views independent draws."""

    def __init__(self, transform, n_views: int = 2):
        if not isinstance(n_views, int) or n_views < 1:
            raise ValueError(f"n_views must be an int >= 1, got {n_views!r}")
        self.transform, self.n_views = transform, n_views

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> list:
        return [self.transform(x, generator=generator) for _ in range(self.n_views)]

    def __repr__(self) -> str:
        return f"MultiViews({self.transform!r}, n_views={self.n_views})"


def simclr_augment(image_size: int = 32, strength: float = 0.5, **kwargs) -> SimCLRTransform:
    """SimCLR's preset; ``kwargs`` go to SimCLRTransform. Strength 0.5 is the paper's choice
    for CIFAR-10 (arXiv:2002.05709, Appendix B.9); 1.0 is its ImageNet setting."""
    return SimCLRTransform(image_size=image_size, jitter_strength=strength, **kwargs)


# --------------------------------------------------------------------------------------
# for the embedded shapes data (simclr.shapes_augment), and random integers for the pretext tasks
def random_rot90(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each image by a random multiple of 90 degrees. x: (B, C, H, W) with H == W."""
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"random_rot90 expects square images (B, C, H, H), got {tuple(x.shape)}")
    k = (_rand((x.shape[0],), x, generator) * 4).long().clamp(max=3).view(-1, 1, 1, 1)
    out = x
    for r in (1, 2, 3):
        out = torch.where(k == r, torch.rot90(x, r, dims=(2, 3)), out)
    return out


def random_hue(x: torch.Tensor, hue: float = 0.5, p: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image's hue by a random amount in [-hue, hue] turns (0.5 = any hue).
    x: (B, 3, H, W) in [0, 1]."""
    x = _prepare(x, "random_hue")
    _check_rgb(x, "random_hue")
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5] turns, got {hue}")
    B = x.shape[0]
    ones = torch.ones(B, device=x.device, dtype=x.dtype)
    h = _uniform(-hue, hue, B, x, generator)
    shifted = _apply_jitter(x, ones, ones, ones, h)
    return torch.where(_choose(p, x, generator), shifted, x)


def random_integers(high: int, shape, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Integers in [0, high) of ``shape`` on x's device, drawn from ``generator`` (as every
    augmentation here draws: see ``_rand``)."""
    return (_rand(shape, x, generator) * high).long().clamp(max=high - 1)
