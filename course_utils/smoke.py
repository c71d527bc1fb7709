"""The ``gpu`` profile's code on a CPU, in about a minute a notebook: ``COURSE_SMOKE=1``.

``COURSE_PROFILE=gpu COURSE_SMOKE=1`` runs every notebook with its ``gpu`` settings (the
same data sets, read by the same readers, and the same architectures: ResNet-18, ViT-Tiny,
the 6-layer text model) with only the amounts cut: images, batch sizes, budgets, epochs,
steps. ``write_data(root)`` writes the data sets in their real on-disk formats (CIFAR-10's
python batches, STL-10's binaries, the Shakespeare text), small, for ``COURSE_DATA=root``:

    python -m course_utils.smoke /tmp/smoke_data
    COURSE_DATA=/tmp/smoke_data COURSE_PROFILE=gpu COURSE_SMOKE=1 jupyter lab

The figures such a run prints mean nothing; that it runs to the end is the test. What a
CPU cannot run at all (CUDA autocast, channels-last on CUDA) is unit-tested apart.
"""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np

# the amounts a smoke run keeps, by setting name (or how the name ends)
IMAGES, TEST_IMAGES, BATCH, MINUTES, TEXT_CHARS = 64, 32, 16, 0.02, 8_000


def enabled() -> bool:
    """``COURSE_SMOKE`` is set to 1 (or yes / true)."""
    return os.environ.get("COURSE_SMOKE", "").strip().lower() in ("1", "yes", "true")


def _is_size(name: str) -> bool:
    return name.startswith("n_") and name != "n_chars" or name.endswith("_n")


def cut(name: str, value):
    """The smoke-run value of one setting: amounts cut, everything else as it was. A size
    of None (all of a data set) becomes small too."""
    if name == "block_size":          # the text model's context: same layers, shorter windows
        return min(value, 64)
    if name == "n_blanks":
        return min(value, 10)
    if _is_size(name):
        size = TEST_IMAGES if name.endswith("test") else IMAGES
        return size if value is None else min(value, size)
    if name == "n_chars":
        return TEXT_CHARS
    if value is None or isinstance(value, bool):
        return value
    if name.endswith("minutes"):
        return MINUTES
    if name == "probe_epochs":
        return 2
    if name.endswith("epochs"):
        return min(value, 1)
    if name.endswith("batch_size") or name == "small_batch":
        return min(value, BATCH)
    if name == "batch_sizes":
        return [8, BATCH]
    if name == "bound_repeats":
        return min(value, 2)
    if name.endswith("_steps"):
        return min(value, 20)
    if name.endswith("_samples"):
        return min(value, 2_000)
    if name == "ks":
        return [k for k in value if k <= 20]
    return value


def cut_settings(settings: dict) -> dict:
    """Every setting of a profile through ``cut``."""
    return {k: cut(k, v) for k, v in settings.items()}


def write_data(root, n_train: int = 250, n_test: int = 128, text_chars: int = 20_000) -> Path:
    """CIFAR-10, STL-10 and Tiny Shakespeare in their real formats under ``root``, small.

    The images are the course's shapes (32x32 for CIFAR-10, 96x96 for STL-10), so that a
    smoke run sees structured pictures; the text is the embedded corpus."""
    from .data import load_images
    from .datasets_io import CIFAR10_CLASSES, REMOTE
    from .text import load_text

    root = Path(root)
    cifar = root / REMOTE["cifar10"]["folder"]
    cifar.mkdir(parents=True, exist_ok=True)
    shapes = load_images("shapes", "train", n=n_train + n_test)
    x = shapes.images.numpy().reshape(len(shapes), -1)             # row: R plane, G plane, B plane
    y = shapes.labels.tolist()
    per = n_train // 5
    for i in range(5):
        rows = slice(i * per, (i + 1) * per)
        _pickle(cifar / f"data_batch_{i + 1}", {b"data": x[rows], b"labels": y[rows]})
    _pickle(cifar / "test_batch", {b"data": x[n_train:], b"labels": y[n_train:]})
    _pickle(cifar / "batches.meta", {b"label_names": [c.encode() for c in CIFAR10_CLASSES]})

    stl = root / REMOTE["stl10"]["folder"]
    stl.mkdir(parents=True, exist_ok=True)
    big = shapes.images[:n_test].numpy().repeat(3, axis=2).repeat(3, axis=3)   # 96x96, nearest
    column_major = big.transpose(0, 1, 3, 2).copy()                # STL-10 stores each plane by columns
    labels = np.asarray(shapes.labels[:n_test].numpy() + 1, dtype=np.uint8)   # 1..10 on disk
    for split in ("train", "test"):
        (stl / f"{split}_X.bin").write_bytes(column_major.tobytes())
        (stl / f"{split}_y.bin").write_bytes(labels.tobytes())
    (stl / "unlabeled_X.bin").write_bytes(column_major.tobytes())

    text = root / REMOTE["shakespeare"]["folder"]
    text.mkdir(parents=True, exist_ok=True)
    (text / "input.txt").write_text(load_text("pydoc")[:text_chars], encoding="utf-8")
    return root


def _pickle(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m course_utils.smoke FOLDER   (writes small CIFAR-10, STL-10 and text files)")
    print(f"wrote smoke data sets to {write_data(sys.argv[1])}; use COURSE_DATA={sys.argv[1]}")
