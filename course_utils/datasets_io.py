"""Real data sets on disk: CIFAR-10 and STL-10 readers, downloads with checksum and resume.

Everything lives under ``data_root()``: ``COURSE_DATA``, or ``~/.cache/ssl_course/data``.
Fetch ahead of time (for an offline classroom, say) with ``python data_scripts/download.py
cifar10`` (or ``stl10``, ``shakespeare``, ``all``); ``download=True`` runs the same code.

The readers parse the files in the formats their authors publish:

* CIFAR-10, python version: pickled dicts with bytes keys; ``b"data"`` is (N, 3072) uint8,
  each row the red, then green, then blue 32x32 plane, row-major.
* STL-10, binary version: ``*_X.bin`` raw uint8, each image stored column-major
  (3 planes of 96x96, each written column by column); ``*_y.bin`` labels 1..10.
"""
from __future__ import annotations

import hashlib
import numbers
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
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
DOWNLOAD_COMMAND = "python data_scripts/download.py {name}"  # the one command every message names


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
        fetch(name, root)
        missing = [f for f in needed if not (folder / f).exists()]
    if missing:
        raise DatasetNotFound(name, folder, missing if len(missing) < len(needed) else None)
    return folder


def _corrupt(path: Path, problem: str, name: str) -> ValueError:
    return ValueError(f"{path} {problem}: the file is corrupt or incomplete. Delete the folder "
                      f"{path.parent} and fetch it again with `{DOWNLOAD_COMMAND.format(name=name)}`.")


def load_cifar10(root=None, train: bool = True, download: bool = False) -> ImageData:
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test images, 32x32, 10 classes.

    images: uint8 (N, 3, 32, 32); labels: int64 (N,) in 0..9.
    """
    files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    folder = _find("cifar10", root, download, files + ["batches.meta"])
    xs, ys = [], []
    for f in files:
        # the format is a pickle; the archive it came from was checked against the authors' md5
        with open(folder / f, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        x = np.asarray(batch.get(b"data", []), dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(batch.get(b"labels", [])) != len(x):
            raise _corrupt(folder / f, f"holds data of shape {x.shape}, not (N, 3072) with N labels",
                           "cifar10")
        xs.append(x.reshape(-1, 3, 32, 32))  # each row: R plane, G plane, B plane, row-major
        ys.extend(batch[b"labels"])
    with open(folder / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
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


# --- downloads -------------------------------------------------------------------------
def verify_checksum(path, md5: str | None = None, sha256: str | None = None) -> Path:
    """Return ``path`` if it has the given digest(s); raise ChecksumError naming both digests if not."""
    if not (md5 or sha256):
        raise ValueError("verify_checksum needs md5 or sha256")
    wanted = {algo: want for algo, want in (("md5", md5), ("sha256", sha256)) if want}
    hashes = {algo: hashlib.new(algo, usedforsecurity=False) for algo in wanted}  # integrity, not security
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            for h in hashes.values():
                h.update(block)
    for algo, want in wanted.items():
        if hashes[algo].hexdigest() != want.lower():
            raise ChecksumError(f"{path} has {algo} {hashes[algo].hexdigest()}, expected {want}: the file "
                                "is corrupt or incomplete. Delete it and run the download again.")
    return Path(path)


def _check(path: Path, md5=None, sha256=None, size=None) -> None:
    if size is not None and path.stat().st_size != size:
        raise ChecksumError(f"{path} has {path.stat().st_size:,} bytes, expected {size:,}: the file is "
                            "incomplete or not the expected one.")
    if md5 or sha256:
        verify_checksum(path, md5, sha256)


def _progress_bar(total, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, disable=not enabled)


def download_file(url: str, dest, md5: str | None = None, sha256: str | None = None, size: int | None = None,
                  chunk_size: int = 1 << 20, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    Bytes go to ``dest.part`` first; an existing ``.part`` (an interrupted download, even by
    Ctrl-C) is resumed with an HTTP ``Range`` request. The checksum (or size) is checked before
    the file is renamed into place, so ``dest`` only ever exists complete. A ``dest`` that is
    already there and verifies is kept without a request. On a mismatch the ``.part`` is
    removed (so a rerun starts clean) and ChecksumError says so.
    """
    dest = Path(dest)
    if dest.exists():
        try:
            _check(dest, md5, sha256, size)
            return dest
        except ChecksumError:
            dest.unlink()  # a stale or damaged copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _stream(url, part, chunk_size, progress, timeout)
    try:
        _check(part, md5, sha256, size)
    except ChecksumError as err:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{err}\nThe corrupt download {part} has been removed, so running the same "
                            f"command again downloads {url} from scratch. If it fails again, the file on "
                            "the server differs from the one this course expects.") from None
    os.replace(part, dest)  # atomic: dest appears whole or not at all
    return dest


def _stream(url: str, part: Path, chunk_size: int, progress: bool, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (or start it over when the server ignores Range)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "course_utils", **({"Range": f"bytes={have}-"} if have else {})}
    keep = f" The {have:,} bytes already in {part} are kept: run again to resume." if have else ""
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the .part is whole; the checksum decides
            return
        raise ConnectionError(f"{url} answered HTTP {err.code} ({err.reason}).{keep}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ConnectionError(f"could not reach {url} ({getattr(err, 'reason', err)}). Offline? Fetch the "
                              "data on a machine with a network and copy the folder; set COURSE_DATA to "
                              f"it.{keep}") from None
    with response:
        start = have if response.status == 206 else 0  # 200: the server ignored Range, start over
        content_range = response.headers.get("Content-Range", "")
        if start and not content_range.startswith(f"bytes {have}-"):
            part.unlink()
            raise ConnectionError(f"{url} answered Range {content_range!r} for bytes={have}-; the partial "
                                  "download was removed: run again to start over.")
        total = start + response.length if response.length is not None else None
        got = start
        bar = _progress_bar(total, start, part.name, progress)
        with open(part, "ab" if start else "wb") as out, bar:
            while block := response.read(chunk_size):
                out.write(block)
                got += len(block)
                bar.update(len(block))
    if total is not None and got < total:  # the connection dropped early (urllib does not raise)
        raise ConnectionError(f"the download of {url} stopped after {got:,} of {total:,} bytes. "
                              f"{part} is kept: run the same command again to resume.")


def extract_archive(path, dest) -> Path:
    """Extract a .tar / .tar.gz into ``dest`` and return ``dest``.

    A downloaded archive is untrusted input: a member named ``../x`` or ``/etc/x`` would be
    written outside ``dest``, and a link would let a later member escape through it. The data
    sets of the course hold only folders and regular files, so anything else is refused
    before a single file is written.
    """
    dest = Path(dest)
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            name = m.name.replace("\\", "/")  # a Windows separator counts too
            if os.path.isabs(m.name) or name.startswith("/") or ".." in name.split("/"):
                raise ValueError(f"{path} contains {m.name!r}, which would be written outside {dest}; "
                                 "refusing to extract it")
            if not (m.isfile() or m.isdir()):
                raise ValueError(f"{path} contains {m.name!r}, a link or special file (which could point "
                                 f"outside {dest}); refusing to extract it")
        dest.mkdir(parents=True, exist_ok=True)
        # Python >= 3.12 (and 3.8.17+, 3.11.4+) also apply the 'data' filter as a second guard
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **kwargs)
    return dest


def missing_files(name: str, root=None) -> list[str]:
    """The files of data set ``name`` that are not (yet) under ``root`` (default data_root())."""
    spec = _spec(name)
    folder = Path(root or data_root()) / spec["folder"]
    return [f for f in spec["files"] if not (folder / f).exists()]


def _spec(name: str) -> dict:
    if name not in REMOTE:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(REMOTE)}")
    return REMOTE[name]


def fetch(name: str, root=None, url: str | None = None, keep_archive: bool = False,
          progress: bool = True) -> Path:
    """Download, verify and unpack data set ``name`` into ``root`` (default data_root());
    return its folder. Does nothing when it is already there. ``url`` overrides the
    registry's address (a mirror); the checksum must still match."""
    spec, root = _spec(name), Path(root or data_root())
    folder, url = root / spec["folder"], url or spec["url"]
    say = print if progress else (lambda *a: None)
    if not spec.get("md5"):  # a single file: present means it verifies
        dest = folder / spec["files"][0]
        present = dest.exists() and _verifies(dest, spec)
        if not present:
            say(f"{name}: downloading {url}")
            download_file(url, dest, sha256=spec.get("sha256"), size=spec.get("size"), progress=progress)
        say(f"{name}: {'already in' if present else 'saved to'} {dest}")
        return folder
    if not missing_files(name, root):
        say(f"{name}: already in {folder} (all {len(spec['files'])} files present)")
        return folder
    archive = root / Path(url).name
    say(f"{name}: downloading {url}")
    download_file(url, archive, md5=spec["md5"], progress=progress)  # skips a complete, verified archive
    say(f"{name}: extracting {archive.name}")
    _unpack(archive, root, spec["folder"])
    if not keep_archive:
        archive.unlink()
    say(f"{name}: ready in {folder}")
    return folder


def _verifies(path: Path, spec: dict) -> bool:
    try:
        _check(path, spec.get("md5"), spec.get("sha256"), spec.get("size"))
        return True
    except ChecksumError:
        return False


def _unpack(archive: Path, root: Path, folder: str) -> None:
    """Extract to a scratch folder, then move ``folder`` into place in one rename, so an
    interrupted extraction never leaves a half-filled data folder that looks complete."""
    tmp = root / f".{folder}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    extract_archive(archive, tmp)
    if not (tmp / folder).is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{archive} does not contain the folder {folder!r}")
    shutil.rmtree(root / folder, ignore_errors=True)  # a partial copy from earlier
    os.replace(tmp / folder, root / folder)
    shutil.rmtree(tmp, ignore_errors=True)
