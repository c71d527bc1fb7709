"""SimCLR on the embedded shapes data, as notebook 03 trains it in the ``cpu`` profile.

Prints the training time and the kNN and linear-probe test accuracy of the trained
encoder next to the two baselines of notebook 00 (raw pixels, the same encoder left
random), all measured in this run:

    python benchmarks/simclr_cpu.py                    # notebook 03's cpu settings
    python benchmarks/simclr_cpu.py --epochs 12 --temperature 0.2
    python benchmarks/simclr_cpu.py --threads 1        # e.g. on a shared machine

The defaults are the ``cpu`` settings of notebook 03; change them there and here together.
The course's target: at most 3 minutes of training on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_utils import data, evaluate, models, runtime  # noqa: E402
from course_utils.methods import simclr  # noqa: E402
from course_utils.train import train  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-train", type=int, default=10_000)
    p.add_argument("--n-test", type=int, default=2_000)
    p.add_argument("--width", type=int, default=16, help="SmallCNN width")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--strength", type=float, default=1.0, help="colour-jitter strength")
    p.add_argument("--crop-min", type=float, default=0.5, help="smallest crop, as a fraction of the area")
    p.add_argument("--plain", action="store_true", help="SimCLR's plain augmentations (no hue, no rot90)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default=None, choices=["cuda", "mps", "cpu"])
    p.add_argument("--json", action="store_true", help="also print one line of JSON")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device) if a.device else runtime.get_device()
    runtime.seed_everything(0)
    train_data = data.load_images("shapes", "train", n=a.n_train)
    test_data = data.load_images("shapes", "test", n=a.n_test)
    print(f"device {device}, {torch.get_num_threads()} threads; shapes: {len(train_data)} train / "
          f"{len(test_data)} test images")

    results = {"raw pixels": evaluate.evaluate_encoder(models.PixelEncoder(image_size=32), train_data, test_data,
                                                       device=device)}
    torch.manual_seed(0)
    results["random SmallCNN"] = evaluate.evaluate_encoder(models.SmallCNN(width=a.width), train_data, test_data,
                                                           device=device)
    if a.plain:
        from course_utils import augment
        transform = augment.simclr_augment(32, a.strength, crop_scale=(a.crop_min, 1.0))
    else:
        transform = simclr.shapes_augment(32, a.strength, crop_scale=(a.crop_min, 1.0))
    torch.manual_seed(0)
    model = simclr.SimCLR(models.SmallCNN(width=a.width), transform=transform, temperature=a.temperature,
                          proj_hidden_dim=512, proj_dim=128)
    start = time.perf_counter()
    history = train(model, train_data, epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, device=device,
                    progress=False)
    seconds = time.perf_counter() - start
    results["SimCLR"] = evaluate.evaluate_encoder(model.encoder, train_data, test_data, device=device)

    steps = len(history["step_loss"])
    print(f"SimCLR: {a.epochs} epochs, {steps} steps of batch {a.batch_size}, trained in {seconds:.0f} s "
          f"({steps * a.batch_size / seconds:.0f} images/s; loss {history['epoch_loss'][0]:.3f} -> "
          f"{history['epoch_loss'][-1]:.3f})")
    print(f"{'encoder':<16} {'kNN':>6} {'linear':>7}")
    for name, r in results.items():
        print(f"{name:<16} {r['knn']:>6.3f} {r['linear']:>7.3f}")
    if a.json:
        print(json.dumps({"args": vars(a), "train_seconds": round(seconds, 1),
                          "results": {k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}}))
    return results, seconds


if __name__ == "__main__":
    main()
