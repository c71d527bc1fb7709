"""Batched image augmentations with a different random draw for every image.

Per-sample pipelines (torchvision on PIL images in a DataLoader) spend most of their time
in Python, one image at a time. Here each augmentation is a few tensor operations on the
whole batch, on whatever device the batch is on: the random parameters are drawn as
tensors of shape (B,), and the work is one ``grid_sample``, one ``einsum`` or one grouped
convolution for the batch.

Conventions: images are float (B, C, H, W) in [0, 1] (uint8 is converted by /255);
outputs keep shape (except crops), device and dtype, clamped to [0, 1]. Every function
takes ``generator`` for reproducible draws. Settings follow SimCLR
(Chen et al. 2020, arXiv:2002.05709, Appendix A).

Shape legend: B batch, C/H/W image.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision uses


def _prepare(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} expects a batch of images of shape (B, C, H, W), got {shape}")
    if x.dtype == torch.uint8:
        return x.float() / 255
    if not x.is_floating_point():
        raise ValueError(f"{name} expects float images in [0, 1] or uint8, got dtype {x.dtype}")
    return x


def _check_p(p: float, name: str = "p") -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


def _rand(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) numbers on x's device, drawn from ``generator`` wherever it lives."""
    if generator is None or generator.device == x.device:
        return torch.rand(shape, device=x.device, generator=generator)
    return torch.rand(shape, device=generator.device, generator=generator).to(x.device)


def _uniform(lo: float, hi: float, n: int, x, generator) -> torch.Tensor:
    return lo + (hi - lo) * _rand((n,), x, generator)


def _choose(p: float, x: torch.Tensor, generator) -> torch.Tensor:
    """Boolean mask (B, 1, 1, 1): which images get an augmentation applied with probability p."""
    return (_rand((x.shape[0],), x, generator) < p).view(-1, 1, 1, 1)


def random_resized_crop(x: torch.Tensor, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        flip_p: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random box of each image (area fraction in ``scale``, aspect ratio in
    ``ratio``, log-uniform) and resize it to ``size`` x ``size``, bilinearly.
    With ``flip_p`` > 0, also flips horizontally in the same resampling.

    x: (B, C, H, W) -> (B, C, size, size). One affine grid for the batch does it all.
    """
    x = _prepare(x, "random_resized_crop")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if not (0 < scale[0] <= scale[1] <= 1):
        raise ValueError(f"scale must be (min, max) with 0 < min <= max <= 1, got {scale}")
    if not (0 < ratio[0] <= ratio[1]):
        raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {ratio}")
    _check_p(flip_p, "flip_p")
    B, _, H, W = x.shape
    area = _uniform(scale[0], scale[1], B, x, generator)
    log_r = _uniform(math.log(ratio[0]), math.log(ratio[1]), B, x, generator)
    aspect = torch.exp(log_r)
    # crop width and height as fractions of the image (clipped to fit inside it)
    w = torch.sqrt(area * aspect).clamp(max=1.0)
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    # centre in normalised coordinates [-1, 1], uniform over the positions that fit
    cx = (1 - w) * (2 * _rand((B,), x, generator) - 1)
    cy = (1 - h) * (2 * _rand((B,), x, generator) - 1)
    flip = 1 - 2 * (_rand((B,), x, generator) < flip_p).to(x.dtype)  # -1 flips
    theta = torch.zeros(B, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, (B, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_horizontal_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None):
    """Mirror each image left-right with probability p. x: (B, C, H, W)."""
    x = _prepare(x, "random_horizontal_flip")
    _check_p(p)
    return torch.where(_choose(p, x, generator), x.flip(-1), x)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> luma (B, 1, H, W)."""
    w = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _check_rgb(x, name):
    if x.shape[1] != 3:
        raise ValueError(f"{name} needs RGB images (B, 3, H, W), got {x.shape[1]} channel(s)")


def _yiq_hue_matrix(h: torch.Tensor) -> torch.Tensor:
    """(B,) hue shifts in turns -> (B, 3, 3) RGB->RGB matrices rotating chroma in YIQ."""
    rgb2yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           device=h.device, dtype=h.dtype)
    yiq2rgb = torch.linalg.inv(rgb2yiq)
    c, s = torch.cos(2 * math.pi * h), torch.sin(2 * math.pi * h)
    rot = torch.zeros(len(h), 3, 3, device=h.device, dtype=h.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    return yiq2rgb @ rot @ rgb2yiq


def _apply_jitter(x, b, c, s, h):
    """Brightness, contrast, saturation, hue with explicit per-sample factors (B,) each.

    Brightness multiplies; contrast blends with the image's mean luma; saturation blends
    with the luma image; hue rotates chroma in YIQ space. (torchvision shifts hue in HSV;
    the YIQ rotation is a cheap, smooth approximation of it.)"""
    x = (x * b.view(-1, 1, 1, 1)).clamp(0, 1)
    mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (mean + c.view(-1, 1, 1, 1) * (x - mean)).clamp(0, 1)
    gray = _gray(x)
    x = (gray + s.view(-1, 1, 1, 1) * (x - gray)).clamp(0, 1)
    x = torch.einsum("bij,bjhw->bihw", _yiq_hue_matrix(h), x)
    return x.clamp(0, 1)


def color_jitter(x: torch.Tensor, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1, p: float = 0.8, generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image: random brightness, contrast and saturation factors in
    [1 - s, 1 + s] and a hue shift in [-hue, hue] turns (as torchvision's ColorJitter).
    x: (B, 3, H, W)."""
    x = _prepare(x, "color_jitter")
    _check_rgb(x, "color_jitter")
    for name, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if v < 0:
            raise ValueError(f"{name} must be >= 0, got {v}")
    if not 0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5] (a fraction of a full turn), got {hue}")
    _check_p(p)
    B = x.shape[0]
    b = _uniform(max(0.0, 1 - brightness), 1 + brightness, B, x, generator)
    c = _uniform(max(0.0, 1 - contrast), 1 + contrast, B, x, generator)
    s = _uniform(max(0.0, 1 - saturation), 1 + saturation, B, x, generator)
    h = _uniform(-hue, hue, B, x, generator)
    return torch.where(_choose(p, x, generator), _apply_jitter(x, b, c, s, h), x)


def random_grayscale(x: torch.Tensor, p: float = 0.2, generator: torch.Generator | None = None):
    """With probability p per image, replace RGB by its luma repeated 3 times. x: (B, 3, H, W)."""
    x = _prepare(x, "random_grayscale")
    _check_rgb(x, "random_grayscale")
    _check_p(p)
    return torch.where(_choose(p, x, generator), _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma=(0.1, 2.0), p: float = 0.5,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image, blur with a Gaussian of random sigma in ``sigma``
    (pixels). Separable, one grouped convolution per direction for the whole batch."""
    x = _prepare(x, "gaussian_blur")
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    if not 0 < sigma[0] <= sigma[1]:
        raise ValueError(f"sigma must be (min, max) with 0 < min <= max, got {sigma}")
    _check_p(p)
    B, C, H, W = x.shape
    sig = _uniform(sigma[0], sigma[1], B, x, generator)
    r = kernel_size // 2
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-t.view(1, -1) ** 2 / (2 * sig.view(-1, 1) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(C, dim=0)  # (B*C, K)
    y = x.reshape(1, B * C, H, W)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(B * C, 1, 1, -1), groups=B * C)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(B * C, 1, -1, 1), groups=B * C)
    return torch.where(_choose(p, x, generator), y.view(B, C, H, W), x)


def solarize(x: torch.Tensor, threshold: float = 0.5, p: float = 0.2, generator: torch.Generator | None = None):
    """With probability p per image, invert every pixel value above ``threshold``."""
    x = _prepare(x, "solarize")
    _check_p(p)
    return torch.where(_choose(p, x, generator) & (x >= threshold), 1 - x, x)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std per channel."""
    m = torch.as_tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.as_tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


class SimCLRTransform:
    """SimCLR's augmentation pipeline (arXiv:2002.05709, Appendix A), batched.

    crop and flip -> colour jitter (prob. ``jitter_p``) -> grayscale -> [blur] -> [solarize].
    Colour jitter at strength s: brightness = contrast = saturation = 0.8 s, hue = 0.2 s.
    Every setting is a public attribute, so it can be changed after construction.
    """

    def __init__(self, image_size: int = 32, crop_scale=(0.08, 1.0), flip_p: float = 0.5,
                 jitter_strength: float = 0.5, jitter_p: float = 0.8, grayscale_p: float = 0.2,
                 blur_p: float = 0.0, solarize_p: float = 0.0):
        if jitter_strength < 0:
            raise ValueError(f"jitter_strength must be >= 0, got {jitter_strength}")
        for name, p in (("flip_p", flip_p), ("jitter_p", jitter_p), ("grayscale_p", grayscale_p),
                        ("blur_p", blur_p), ("solarize_p", solarize_p)):
            _check_p(p, name)
        self.image_size, self.crop_scale, self.flip_p = image_size, tuple(crop_scale), flip_p
        self.jitter_strength, self.jitter_p, self.grayscale_p = jitter_strength, jitter_p, grayscale_p
        self.blur_p, self.solarize_p = blur_p, solarize_p

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = random_resized_crop(x, self.image_size, scale=self.crop_scale, flip_p=self.flip_p,
                                generator=generator)
        s = self.jitter_strength
        if s > 0 and self.jitter_p > 0:
            x = color_jitter(x, 0.8 * s, 0.8 * s, 0.8 * s, min(0.5, 0.2 * s), p=self.jitter_p, generator=generator)
        if self.grayscale_p > 0:
            x = random_grayscale(x, self.grayscale_p, generator=generator)
        if self.blur_p > 0:
            k = max(3, int(0.1 * self.image_size) // 2 * 2 + 1)  # about 10% of the image, odd
            x = gaussian_blur(x, k, p=self.blur_p, generator=generator)
        if self.solarize_p > 0:
            x = solarize(x, p=self.solarize_p, generator=generator)
        return x

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class TwoViews:
    """``x1, x2 = TwoViews(transform)(x)``: two independent draws over the same batch."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, x, generator=None):
        return self.transform(x, generator=generator), self.transform(x, generator=generator)


class MultiViews:
    """``views = MultiViews(transform, n_views)(x)``: a list of independent draws."""

    def __init__(self, transform, n_views: int = 2):
        if n_views < 1:
            raise ValueError(f"n_views must be >= 1, got {n_views}")
        self.transform, self.n_views = transform, n_views

    def __call__(self, x, generator=None):
        return [self.transform(x, generator=generator) for _ in range(self.n_views)]


def simclr_augment(image_size: int = 32, strength: float = 0.5, **kwargs) -> SimCLRTransform:
    """SimCLR's preset. Strength 0.5 is the paper's choice for CIFAR-10 (Appendix B.9)."""
    return SimCLRTransform(image_size=image_size, jitter_strength=strength, **kwargs)
