"""Throughput of the batched SimCLR augmentations against torchvision's per-sample pipeline.

    python benchmarks/augment_throughput.py [--batch-size 256] [--n-images 4096] [--workers 2]

Both produce two views per image from the same uint8 images. (a) course_utils.augment on
whole batches, on the chosen device; (b) torchvision transforms on PIL images, one at a
time, in a DataLoader with --workers processes. Prints images/s for each and the ratio,
measured in the same run.
"""
from __future__ import annotations

import argparse
import time

import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader, Dataset

from course_utils import augment
from course_utils.runtime import get_device
from course_utils.shapes import make_shapes


class PILDataset(Dataset):
    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = T.functional.to_pil_image(self.images[i])
        return self.transform(img), self.transform(img)


def time_batched(images, batch_size, device, transform):
    images = images.to(device)
    n = 0
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x1, x2 = transform(x), transform(x)
        n += len(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def time_torchvision(images, batch_size, workers, size):
    tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(),
                    T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(0.2),
                    T.ToTensor()])
    loader = DataLoader(PILDataset(images, tf), batch_size=batch_size, num_workers=workers,
                        persistent_workers=workers > 0)
    next(iter(loader))  # warm up the workers
    n = 0
    start = time.perf_counter()
    for x1, x2 in loader:
        n += len(x1)
    return n / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--n-images", type=int, default=4096)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    args = p.parse_args()
    device = get_device() if args.device == "auto" else torch.device(args.device)
    images, _ = make_shapes(args.n_images, seed=0, image_size=args.image_size)
    transform = augment.simclr_augment(args.image_size, strength=0.5)
    time_batched(images[:args.batch_size * 2], args.batch_size, device, transform)  # warm-up
    batched = time_batched(images, args.batch_size, device, transform)
    tv = time_torchvision(images, args.batch_size, args.workers, args.image_size)
    print(f"images {args.n_images} x 2 views, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"course_utils.augment (batched, {device.type}): {batched:8.0f} img/s")
    print(f"torchvision per-sample ({args.workers} workers): {tv:8.0f} img/s")
    print(f"ratio: {batched / tv:.1f}x")


if __name__ == "__main__":
    main()
