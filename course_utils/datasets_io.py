"""Real data sets on disk: CIFAR-10 and STL-10 readers, downloads with checksum and resume.

Everything lives under ``data_root()``: ``COURSE_DATA``, or ``~/.cache/ssl_course/data``.
Fetch ahead of time (for an offline classroom, say) with ``python -m course_utils.download
cifar10`` (or ``stl10``, ``shakespeare``, ``all``); ``download=True`` runs the same code.

The readers parse the files in the formats their authors publish:

* CIFAR-10, python version: pickled dicts with bytes keys; ``b"data"`` is (N, 3072) uint8,
  each row the red, then green, then blue 32x32 plane, row-major.
* STL-10, binary version: ``*_X.bin`` raw uint8, each image stored column-major
  (3 planes of 96x96, each written column by column); ``*_y.bin`` labels 1..10.
"""
from __future__ import annotations

import numbers
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# What fetch() downloads: "folder" under the data root, where all of "files" must be; md5s as the
# authors publish them (torchvision checks the same). Tiny Shakespeare has no published digest: its
# size and sha256 are TensorFlow Datasets' (tensorflow_datasets/url_checksums/tiny_shakespeare.txt).
REMOTE = {
    "cifar10": {"url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "md5": "c58f30108f718f92721af3b95e74349a", "folder": "cifar-10-batches-py",
                "files": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]},
    "stl10": {"url": "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
              "md5": "91f7769df0f17e558f3565bffb0c7dfb", "folder": "stl10_binary",
              "files": ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin",
                        "class_names.txt"]},
    "shakespeare": {"url": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                           "tinyshakespeare/input.txt",
                    "size": 1_115_394, "folder": "tinyshakespeare", "files": ["input.txt"],
                    "sha256": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
STL10_SPLITS = ("train", "test", "unlabeled")
DOWNLOAD_COMMAND = "python -m course_utils.download {name}"  # the one command every message names


def data_root() -> Path:
    """``COURSE_DATA`` if set, else ``~/.cache/ssl_course/data``."""
    return Path(os.environ.get("COURSE_DATA") or Path.home() / ".cache" / "ssl_course" / "data").expanduser()


class DatasetNotFound(FileNotFoundError):
    """A real data set is not on disk: the message says how to fetch it and what works offline."""

    def __init__(self, name: str, path: Path, missing: list[str] | None = None):
        offline = ('load_text("pydoc") for text' if name == "shakespeare"
                   else 'load_images("shapes") for images')
        what = f" (missing: {', '.join(missing)})" if missing else ""
        super().__init__(
            f"{name} is not in {path}{what}. Fetch it once with:\n"
            f"    {DOWNLOAD_COMMAND.format(name=name)}\n"
            f"(or pass download=True). Set COURSE_DATA to use a folder elsewhere. Offline, the "
            f"embedded data needs no download: {offline}.")
        self.name, self.path, self.missing = name, Path(path), missing

    def __reduce__(self):  # rebuild from our own arguments (pickling, e.g. out of a worker process)
        return type(self), (self.name, self.path, self.missing)


class ChecksumError(ValueError):
    """A file does not match its published digest (or size)."""


@dataclass(eq=False)  # eq on tensors would be ambiguous
class ImageData:
    """An image data set in memory.

    images: uint8 (N, C, H, W); labels: int64 (N,), -1 where unlabeled; classes[label] names a class.
    """
    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    name: str = ""

    def __post_init__(self):
        x, y = self.images, self.labels
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.dtype != torch.uint8:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W), got "
                             f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.shape != (len(x),):
            raise ValueError(f"labels must be an int64 tensor of shape (N,) = ({len(x)},), got "
                             f"{getattr(y, 'dtype', type(y).__name__)} {tuple(getattr(y, 'shape', ()))}")
        self.classes = [str(c) for c in self.classes]
        if len(y) and (y.min() < -1 or y.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in [-1, {len(self.classes)}) (one class name each, -1 for "
                             f"unlabeled), got values from {y.min().item()} to {y.max().item()}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, n_or_indices) -> ImageData:
        """The first ``n`` images (an int), or the images at the given indices (or boolean mask)."""
        if isinstance(n_or_indices, numbers.Integral):  # also numpy integers
            if not 0 <= n_or_indices <= len(self):
                raise ValueError(f"n_or_indices must be between 0 and {len(self)} images, got {n_or_indices}")
            idx = slice(0, int(n_or_indices))
        else:
            idx = torch.as_tensor(n_or_indices, device=self.images.device)
            if idx.dim() != 1:
                raise ValueError("n_or_indices must be an int or 1-D indices / mask, got shape "
                                 f"{tuple(idx.shape)}")
            idx = idx if idx.dtype == torch.bool else idx.long()  # [] arrives as float32
        return ImageData(self.images[idx], self.labels[idx], self.classes, self.name)

    def float(self) -> torch.Tensor:
        """All images as float32 in [0, 1]: (N, C, H, W)."""
        return self.images.float() / 255

    def to(self, device) -> ImageData:
        """A new ImageData with images and labels on ``device``."""
        return ImageData(self.images.to(device), self.labels.to(device), self.classes, self.name)

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}: {len(self)} images of shape {tuple(self.images.shape[1:])}, "
                f"{len(self.classes)} classes, on {self.images.device})")


# --- readers ---------------------------------------------------------------------------
def _find(name: str, root, download: bool, needed: list[str]) -> Path:
    """The data set's folder, fetched first when files are missing and ``download`` is true."""
    folder = Path(root or data_root()) / REMOTE[name]["folder"]
    missing = [f for f in needed if not (folder / f).exists()]
    if missing and download:
        from .download import fetch   # here, not at the top: download.py imports this module
        fetch(name, root)
        missing = [f for f in needed if not (folder / f).exists()]
    if missing:
        raise DatasetNotFound(name, folder, missing if len(missing) < len(needed) else None)
    return folder


def _corrupt(path: Path, problem: str, name: str) -> ValueError:
    return ValueError(f"{path} {problem}: the file is corrupt or incomplete. Delete the folder "
                      f"{path.parent} and fetch it again with `{DOWNLOAD_COMMAND.format(name=name)}`.")


def _unpickle(path: Path) -> dict:
    """One CIFAR-10 batch file (a pickled dict with bytes keys), or the corrupt-file error."""
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise _corrupt(path, f"cannot be read as a CIFAR-10 batch ({type(err).__name__}: {err})", "cifar10") from None
    if not isinstance(obj, dict):
        raise _corrupt(path, f"holds a {type(obj).__name__}, not a CIFAR-10 batch", "cifar10")
    return obj


def load_cifar10(root=None, train: bool = True, download: bool = False) -> ImageData:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test images, 32x32, 10 classes.

    images: uint8 (N, 3, 32, 32); labels: int64 (N,) in 0..9.
    """
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    folder = _find("cifar10", root, download, files + ["batches.meta"])
    xs, ys = [], []
    for f in files:
        # the format is a pickle; the archive it came from was checked against the authors' md5
        batch = _unpickle(folder / f)
        x = np.asarray(batch.get(b"data", []), dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(batch.get(b"labels", [])) != len(x):
            raise _corrupt(folder / f, f"holds data of shape {x.shape}, not (N, 3072) with N labels",
                           "cifar10")
        bad = [v for v in batch[b"labels"] if not (isinstance(v, numbers.Integral) and 0 <= v < 10)]
        if bad:
            raise _corrupt(folder / f, f"holds labels outside 0..9 (e.g. {bad[0]!r})", "cifar10")
        xs.append(x.reshape(-1, 3, 32, 32))  # each row: R plane, G plane, B plane, row-major
        ys.extend(batch[b"labels"])
    meta = _unpickle(folder / "batches.meta")
    classes = [c.decode() for c in meta.get(b"label_names", [])] or CIFAR10_CLASSES
    images = torch.from_numpy(np.concatenate(xs))  # (N, 3, 32, 32)
    return ImageData(images, torch.tensor(ys, dtype=torch.int64), classes, "cifar10")


def load_stl10(root=None, split: str = "train", download: bool = False) -> ImageData:
    """STL-10 (Coates et al. 2011): 5,000 train / 8,000 test / 100,000 unlabeled, 96x96.

    images: uint8 (N, 3, 96, 96); labels: int64 (N,) in 0..9, all -1 for ``unlabeled``.
    """
    if split not in STL10_SPLITS:
        raise ValueError(f"split must be one of {STL10_SPLITS}, got {split!r}")
    needed = [f"{split}_X.bin"] + ([f"{split}_y.bin"] if split != "unlabeled" else [])
    folder = _find("stl10", root, download, needed)
    images = _read_stl_images(folder / f"{split}_X.bin")
    if split == "unlabeled":
        labels = torch.full((len(images),), -1, dtype=torch.int64)
    else:
        y = np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8)
        if len(y) != len(images) or y.min() < 1 or y.max() > 10:
            raise _corrupt(folder / f"{split}_y.bin", f"holds {len(y)} labels for {len(images)} images "
                           "(expected one label in 1..10 per image)", "stl10")
        labels = torch.from_numpy(y.astype(np.int64) - 1)  # 1..10 -> 0..9
    names = folder / "class_names.txt"
    classes = names.read_text().split() if names.exists() else STL10_CLASSES  # one name per line
    return ImageData(images, labels, classes, "stl10")


def _read_stl_images(path: Path, chunk: int = 4096) -> torch.Tensor:
    """Column-major STL-10 images -> uint8 (N, 3, 96, 96), converted a chunk at a time so the
    100,000 unlabeled images (2.8 GB) need their own size in memory, not twice that."""
    per_image = 3 * 96 * 96
    n_bytes = path.stat().st_size
    if n_bytes == 0 or n_bytes % per_image:
        raise _corrupt(path, f"has {n_bytes:,} bytes, not a whole number of 3x96x96 images", "stl10")
    raw = np.memmap(path, dtype=np.uint8, mode="r", shape=(n_bytes // per_image, 3, 96, 96))
    images = torch.empty(raw.shape, dtype=torch.uint8)  # (N, C, H, W)
    for i in range(0, len(raw), chunk):
        # stored per plane column by column, so the file's (C, 96, 96) is (C, W, H): swap the last two
        images[i:i + chunk] = torch.from_numpy(np.array(raw[i:i + chunk])).transpose(2, 3)
    del raw  # closes the memory map
    return images
