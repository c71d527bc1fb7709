"""Real data sets on disk: CIFAR-10 and STL-10 readers, downloads with checksum and resume.

Everything lives under one folder, ``data_root()``: the ``COURSE_DATA`` environment
variable, or ``~/.cache/ssl_course/data``. Fetch ahead of time (for example for an
offline classroom) with ``python data_scripts/download.py cifar10``.

The readers parse the files in the formats their authors publish:

* CIFAR-10, python version: pickled dicts with bytes keys; ``b"data"`` is (N, 3072) uint8,
  each row the red, then green, then blue 32x32 plane, row-major.
* STL-10, binary version: ``*_X.bin`` raw uint8, each image stored column-major
  (3 planes of 96x96, each written column by column); ``*_y.bin`` labels 1..10.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# The published archives and their digests (md5 from the data sets' authors, as torchvision uses).
REMOTE = {
    "cifar10": {"url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "md5": "c58f30108f718f92721af3b95e74349a", "folder": "cifar-10-batches-py"},
    "stl10": {"url": "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
              "md5": "91f7769df0f17e558f3565bffb0c7dfb", "folder": "stl10_binary"},
    # no digest is published for Tiny Shakespeare; it is checked by its size instead
    "shakespeare": {"url": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                    "size": 1_115_394, "folder": "tinyshakespeare"},
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STL10_SPLITS = ("train", "test", "unlabeled")


def data_root() -> Path:
    """``COURSE_DATA`` if set, else ``~/.cache/ssl_course/data``."""
    return Path(os.environ.get("COURSE_DATA") or Path.home() / ".cache" / "ssl_course" / "data").expanduser()


class DatasetNotFound(FileNotFoundError):
    """A real data set is not on disk: the message says how to fetch it and what works offline."""

    def __init__(self, name: str, path: Path):
        offline = 'load_text("pydoc") for text' if name == "shakespeare" else 'load_images("shapes") for images'
        super().__init__(
            f"{name} is not in {path}. Fetch it once with:\n"
            f"    python data_scripts/download.py {name}\n"
            f"(or pass download=True). Set COURSE_DATA to use a folder elsewhere. Offline, the "
            f"embedded data needs no download: {offline}.")
        self.name, self.path = name, path


class ChecksumError(ValueError):
    """A downloaded file does not match its published digest."""


@dataclass
class ImageData:
    """An image data set in memory. images: uint8 (N, C, H, W); labels: int64 (N,), -1 if unlabeled."""
    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    name: str = ""

    def __post_init__(self):
        if not isinstance(self.images, torch.Tensor) or self.images.dim() != 4 or self.images.dtype != torch.uint8:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W), got "
                             f"{getattr(self.images, 'dtype', type(self.images))} {tuple(getattr(self.images, 'shape', ()))}")
        if self.labels.dim() != 1 or len(self.labels) != len(self.images):
            raise ValueError(f"labels must have shape (N,) = ({len(self.images)},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, n_or_indices) -> "ImageData":
        """The first ``n`` images (an int), or the images at the given indices."""
        idx = slice(0, n_or_indices) if isinstance(n_or_indices, int) else torch.as_tensor(n_or_indices)
        return ImageData(self.images[idx], self.labels[idx], self.classes, self.name)

    def float(self) -> torch.Tensor:
        """All images as float32 in [0, 1]."""
        return self.images.float() / 255

    def to(self, device) -> "ImageData":
        return ImageData(self.images.to(device), self.labels.to(device), self.classes, self.name)

    def __repr__(self) -> str:
        return (f"ImageData({self.name!r}: {len(self)} images of shape {tuple(self.images.shape[1:])}, "
                f"{len(self.classes)} classes, on {self.images.device})")


def load_cifar10(root=None, train: bool = True, download: bool = False) -> ImageData:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test images, 32x32, 10 classes."""
    folder = Path(root or data_root()) / REMOTE["cifar10"]["folder"]
    if not (folder / "batches.meta").exists():
        if not download:
            raise DatasetNotFound("cifar10", folder)
        fetch("cifar10", root)
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    xs, ys = [], []
    for f in files:
        if not (folder / f).exists():
            raise DatasetNotFound("cifar10", folder / f)
        with open(folder / f, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.extend(batch[b"labels"])
    with open(folder / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
    classes = [c.decode() for c in meta.get(b"label_names", [])] or CIFAR10_CLASSES
    return ImageData(torch.from_numpy(np.concatenate(xs)), torch.tensor(ys, dtype=torch.int64), classes, "cifar10")


def load_stl10(root=None, split: str = "train", download: bool = False) -> ImageData:
    """STL-10 (Coates et al. 2011): 5,000 train / 8,000 test / 100,000 unlabeled, 96x96."""
    if split not in STL10_SPLITS:
        raise ValueError(f"split must be one of {STL10_SPLITS}, got {split!r}")
    folder = Path(root or data_root()) / REMOTE["stl10"]["folder"]
    x_path = folder / f"{split}_X.bin"
    if not x_path.exists():
        if not download:
            raise DatasetNotFound("stl10", folder)
        fetch("stl10", root)
    raw = np.fromfile(x_path, dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise ValueError(f"{x_path} has {raw.size} bytes, not a whole number of 3x96x96 images: the file is "
                         "corrupt or incomplete; delete it and download again")
    images = torch.from_numpy(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy())  # column-major -> (H, W)
    if split == "unlabeled":
        labels = torch.full((len(images),), -1, dtype=torch.int64)
    else:
        labels = torch.from_numpy(np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8).astype(np.int64) - 1)
    names = folder / "class_names.txt"
    classes = names.read_text().split() if names.exists() else [str(i) for i in range(10)]
    return ImageData(images, labels, classes, "stl10")


def verify_checksum(path, md5: str | None = None, sha256: str | None = None) -> None:
    """Raise ChecksumError unless ``path`` has the given digest(s)."""
    for algo, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        h = hashlib.new(algo)
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != expected:
            raise ChecksumError(f"{path} has {algo} {h.hexdigest()}, expected {expected}: the file is "
                                "corrupt or incomplete.")


def download_file(url: str, dest, md5: str | None = None, sha256: str | None = None,
                  size: int | None = None, chunk_size: int = 1 << 16) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``: resumes a partial file with an HTTP
    Range request, verifies the checksum (or size), and only then renames into place."""
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        resumed = have > 0 and response.status == 206
        if not resumed:  # the server ignored Range (or a fresh start): begin again
            have = 0
        total = response.length + have if response.length is not None else None
        with open(part, "ab" if resumed else "wb") as out, \
                tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name) as bar:
            for chunk in iter(lambda: response.read(chunk_size), b""):
                out.write(chunk)
                bar.update(len(chunk))
    try:
        verify_checksum(part, md5, sha256)
        if size is not None and part.stat().st_size != size:
            raise ChecksumError(f"{part} has {part.stat().st_size} bytes, expected {size}: the file is "
                                "incomplete or wrong.")
    except ChecksumError as err:
        part.unlink()
        raise ChecksumError(f"{err} It has been removed; run the download again.") from None
    os.replace(part, dest)
    return dest


def extract_archive(path, dest) -> None:
    """Extract a .tar.gz into ``dest``, refusing members that would land outside it."""
    dest = Path(dest).resolve()
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if member.name.startswith("/") or not target.is_relative_to(dest):
                raise ValueError(f"{path} contains {member.name!r}, which would be written outside {dest}; "
                                 "refusing to extract it")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **kwargs)


def fetch(name: str, root=None) -> Path:
    """Download and unpack one of ``REMOTE``'s data sets into ``root`` (default data_root())."""
    if name not in REMOTE:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(REMOTE)}")
    spec, root = REMOTE[name], Path(root or data_root())
    folder = root / spec["folder"]
    if name == "shakespeare":
        target = folder / "input.txt"
        if not target.exists():
            download_file(spec["url"], target, size=spec["size"])
        return target
    archive = root / Path(spec["url"]).name
    if archive.exists():
        try:
            verify_checksum(archive, md5=spec["md5"])
        except ChecksumError:
            print(f"{archive} is corrupt; downloading it again")
            archive.unlink()
    if not archive.exists():
        download_file(spec["url"], archive, md5=spec["md5"])
    tmp = root / (spec["folder"] + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    extract_archive(archive, tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp / spec["folder"], folder)  # appears whole, or not at all
    shutil.rmtree(tmp, ignore_errors=True)
    return folder
