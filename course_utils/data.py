"""One entry point for every image data set of the course: ``load_images(name, split)``.

=========  ==========================================  ===========================
name       what                                        needs
=========  ==========================================  ===========================
shapes     8 procedurally drawn shape classes, 32x32   nothing (embedded, default)
digits     scikit-learn's 8x8 handwritten digits,      nothing (ships with sklearn)
           upscaled to 32x32 RGB
cifar10    CIFAR-10, 10 classes, 32x32                 ``python -m course_utils.download cifar10``
stl10      STL-10, 10 classes, 96x96 (+ unlabeled)     ``python -m course_utils.download stl10``
=========  ==========================================  ===========================

Every loader returns an :class:`ImageData` (uint8 images (N, C, H, W), int64 labels);
``batches`` iterates over it in mini-batches with a reproducible shuffle.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from .datasets_io import DatasetNotFound, ImageData, load_cifar10, load_stl10
from .shapes import SHAPE_CLASSES, make_shapes

__all__ = ["load_images", "shape_factors", "ImageData", "DatasetNotFound", "batches", "DATASETS", "SHAPE_CLASSES"]

DATASETS = ("shapes", "digits", "cifar10", "stl10")
SPLITS = ("train", "test")

# default sizes of the embedded set: about 10k train / 2k test, as the cpu profile uses
SHAPES_SIZES = {"train": 10_000, "test": 2_000}


def load_images(name: str = "shapes", split: str = "train", n: int | None = None,
                root=None, download: bool = False, seed: int = 0) -> ImageData:
    """Load an image data set by name; ``download=True`` fetches CIFAR-10 / STL-10 when
    they are missing.

    ``n`` asks for ``n`` images: the first ``n`` of a real data set; for ``shapes``, ``n``
    images drawn for that size (a different ``n`` draws a different set, so compare
    numbers only between runs with the same ``n``)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
    valid = SPLITS + (("unlabeled",) if name == "stl10" else ())
    if split not in valid:
        raise ValueError(f"split must be one of {valid} for {name!r}, got {split!r}")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of images or None, got {n}")
    if name == "shapes":
        data = _shapes(split, n or SHAPES_SIZES[split], seed)
    elif name == "digits":
        data = _digits(split, seed)
    elif name == "cifar10":
        data = load_cifar10(root=root, train=(split == "train"), download=download)
    else:
        data = load_stl10(root=root, split=split, download=download)
    if n is not None and n < len(data):
        data = data.subset(n)
    return data


@lru_cache(maxsize=8)
def _shapes_cached(split: str, n: int, seed: int):
    # train and test draw from different seeds, so no test image is a copy of a train image
    return make_shapes(n, seed=2 * seed + (0 if split == "train" else 1), return_factors=True)


def shape_factors(split: str = "train", n: int | None = None, seed: int = 0) -> dict:
    """What drew each image of ``load_images("shapes", split, n, seed=seed)``, in the same
    order: a dict of tensors, one row per image (``shapes.FACTORS`` says what each holds):
    the shape's pixel mask, its colour, size, rotation and centre, the background colours.
    Probes for these say what an encoder kept besides the class."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} for the shapes, got {split!r}")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive number of images or None, got {n!r}")
    _, _, factors = _shapes_cached(split, n or SHAPES_SIZES[split], seed)
    return {k: v.clone() for k, v in factors.items()}


def _shapes(split: str, n: int, seed: int) -> ImageData:
    images, labels, _ = _shapes_cached(split, n, seed)
    # copies, so that a learner who edits a batch in place never changes the cached set
    return ImageData(images=images.clone(), labels=labels.clone(), classes=list(SHAPE_CLASSES), name="shapes")


def _digits(split: str, seed: int) -> ImageData:
    """sklearn's 1,797 digits (8x8, 0..16) -> 32x32 RGB uint8, split 80/20 reproducibly."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    x = F.interpolate(x, size=32, mode="bilinear", align_corners=False).clamp(0, 1)
    x = (x.expand(-1, 3, -1, -1) * 255).round().to(torch.uint8)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(y))
    idx = perm[:cut] if split == "train" else perm[cut:]
    return ImageData(images=x[idx].contiguous(), labels=y[idx], classes=[str(d) for d in range(10)],
                     name="digits")


def as_pair(data, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) of an ImageData or of an (inputs, labels) pair: the one place that
    tells the two apart."""
    if isinstance(data, ImageData):
        return data.images, data.labels
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return data[0], data[1]
    raise ValueError(f"{name} must be an ImageData (from load_images) or an (inputs, labels) pair of tensors, "
                     f"got {type(data).__name__}")


def batches(data, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None,
            drop_last: bool = False, device=None):
    """Yield (images float (B, C, H, W) in [0, 1], labels (B,)) mini-batches.

    uint8 images become floats in [0, 1]; any other tensor (token ids, say) passes as it is.

    ``data`` is an ImageData or an (images, labels) pair. Keeping whole data sets as
    tensors (on the GPU when there is one) is the fastest input pipeline for small images.
    """
    images, labels = as_pair(data)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for i in range(0, stop, batch_size):
        idx = order[i:i + batch_size].to(images.device)
        x = images[idx]
        if device is not None:
            x = x.to(device, non_blocking=True)
        x = x.float().div_(255) if x.dtype == torch.uint8 else x  # token ids stay integers
        y = labels[idx].to(x.device)
        yield x, y
