"""Throughput of the batched SimCLR augmentations against torchvision's per-sample pipeline.

    python benchmarks/augment_throughput.py [--batch-size 256] [--n-images 4096] [--workers 2]
                                            [--device auto] [--image-size 32] [--views 1]

Both augment the same synthetic uint8 images (smooth random colour fields), --views views
per image, with the same settings (crop, flip, colour jitter 0.4/0.4/0.4/0.1 with p=0.8,
grayscale 0.2):
(a) course_utils.augment.SimCLRTransform on whole uint8 batches, on --device;
(b) torchvision transforms on PIL images, one image at a time, in a Dataset read by a
    DataLoader with --workers processes and --batch-size (each item becomes a PIL image
    from a uint8 array, as torchvision's CIFAR10 data set does).
Both are warmed up first; prints images/s for each and the ratio (a)/(b) from this run.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from course_utils import augment
from course_utils.runtime import get_device


def synthetic_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) uint8: smooth random colour fields plus a little pixel noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    x = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    x = x + 0.05 * torch.randn(n, 3, size, size, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


class PILDataset(Dataset):
    """Item i: ``views`` torchvision-augmented tensors (3, S, S) of image i."""

    def __init__(self, images: torch.Tensor, transform, views: int):
        self.arrays = images.permute(0, 2, 3, 1).contiguous().numpy()  # (n, H, W, 3) uint8
        self.transform, self.views = transform, views

    def __len__(self):
        return len(self.arrays)

    def __getitem__(self, i):
        img = Image.fromarray(self.arrays[i])
        return [self.transform(img) for _ in range(self.views)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_batched(images, batch_size, device, transform, views) -> float:
    """Images per second of ``transform`` applied to uint8 batches already on ``device``."""
    images = images.to(device)
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        out = [transform(x) for _ in range(views)]
    sync(device)
    assert out[0].shape[1:] == (3, transform.image_size, transform.image_size)
    return len(images) / (time.perf_counter() - start)


def time_torchvision(images, batch_size, workers, size, views) -> float:
    """Images per second of torchvision's per-sample pipeline through a DataLoader."""
    tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(),
                    T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(0.2),
                    T.ToTensor()])
    loader = DataLoader(PILDataset(images, tf, views), batch_size=batch_size, num_workers=workers,
                        persistent_workers=workers > 0)
    for _ in zip(range(2), loader):  # warm up: start the workers, touch the code paths
        pass
    n = 0
    start = time.perf_counter()
    for batch in loader:
        n += len(batch[0])
    return n / (time.perf_counter() - start)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--n-images", type=int, default=4096)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cuda, mps or cpu")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--views", type=int, default=1, help="augmented views per image (SSL uses 2)")
    args = p.parse_args(argv)
    device = get_device(None if args.device == "auto" else args.device)
    images = synthetic_images(args.n_images, args.image_size)
    transform = augment.simclr_augment(args.image_size, strength=0.5)  # jitter 0.4, 0.4, 0.4, 0.1
    time_batched(images[:args.batch_size * 4], args.batch_size, device, transform, args.views)  # warm up
    batched = time_batched(images, args.batch_size, device, transform, args.views)
    tv = time_torchvision(images, args.batch_size, args.workers, args.image_size, args.views)
    print(f"{args.n_images} images x {args.views} view(s), {args.image_size}x{args.image_size}, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"(a) course_utils.augment, batched on {device.type}: {batched:9.0f} img/s")
    print(f"(b) torchvision per-sample, {args.workers} workers:  {tv:9.0f} img/s")
    print(f"ratio (a)/(b): {batched / tv:.1f}x")
    return {"batched_images_per_s": batched, "torchvision_images_per_s": tv, "ratio": batched / tv}


if __name__ == "__main__":
    main()
