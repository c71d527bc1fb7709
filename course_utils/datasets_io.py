"""(temporary minimal version; the full loaders are being written)"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


def data_root() -> Path:
    return Path(os.environ.get("COURSE_DATA", Path.home() / ".cache" / "ssl_course" / "data")).expanduser()


class DatasetNotFound(FileNotFoundError):
    pass


@dataclass
class ImageData:
    images: torch.Tensor
    labels: torch.Tensor
    classes: list
    name: str = ""

    def __len__(self):
        return len(self.images)

    def subset(self, n):
        idx = slice(0, n) if isinstance(n, int) else torch.as_tensor(n)
        return ImageData(self.images[idx], self.labels[idx], self.classes, self.name)

    def float(self):
        return self.images.float() / 255

    def to(self, device):
        return ImageData(self.images.to(device), self.labels.to(device), self.classes, self.name)


def _missing(name):
    raise DatasetNotFound(f"{name} is not in {data_root()}; fetch it with `python data_scripts/download.py {name}` "
                          "or use the embedded load_images('shapes') offline")


def load_cifar10(root=None, train=True, download=False):
    _missing("cifar10")


def load_stl10(root=None, split="train", download=False):
    _missing("stl10")
