"""What accuracy SimCLR reaches in a time budget, here: notebook 03's main run.

Prints the plan (how many epochs fit), the training time and the kNN and linear-probe
test accuracy of the trained encoder next to the two baselines of notebook 00 (raw
pixels, the same encoder left random), and the margins, all measured in this run:

    python benchmarks/simclr_budget.py                   # notebook 03's cpu settings: 3 minutes
    python benchmarks/simclr_budget.py --epochs 12       # a fixed number of epochs instead
    python benchmarks/simclr_budget.py --threads 1       # e.g. on a shared machine
    python benchmarks/simclr_budget.py --model resnet18 --batch-size 512 --proj-hidden 2048 --minutes 8 \
        --data cifar10                                   # notebook 03's gpu run (CIFAR-10 downloaded)

The defaults are the ``cpu`` settings of notebook 03; change them there and here together.
The course's targets: in 3 minutes on 2 CPU cores, kNN >= 0.75 and linear >= 0.85.
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
    p.add_argument("--data", default="shapes", choices=["shapes", "cifar10"])
    p.add_argument("--model", default="small_cnn", choices=["small_cnn", "resnet18"])
    p.add_argument("--width", type=int, default=16, help="SmallCNN width")
    p.add_argument("--minutes", type=float, default=3.0, help="the training budget (COURSE_TIME_SCALE applies)")
    p.add_argument("--epochs", type=int, default=None, help="a fixed number of epochs instead of --minutes")
    p.add_argument("--proj-hidden", type=int, default=512, help="projection head width")
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
    train_data = data.load_images(a.data, "train", n=a.n_train)
    test_data = data.load_images(a.data, "test", n=a.n_test)
    if device.type == "cuda":
        train_data, test_data = train_data.to(device), test_data.to(device)
    size = train_data.images.shape[-1]
    print(f"device {runtime.describe_device(device)}; {a.data}: {len(train_data)} train / {len(test_data)} test")

    def encoder():
        torch.manual_seed(0)
        kwargs = {"width": a.width} if a.model == "small_cnn" else {}
        return models.build_encoder(a.model, **kwargs).to(device)

    results = {"raw pixels": evaluate.evaluate_encoder(models.PixelEncoder(image_size=size), train_data, test_data,
                                                       device=device)}
    results[f"random {a.model}"] = evaluate.evaluate_encoder(encoder(), train_data, test_data, device=device)
    if a.plain or a.data != "shapes":
        from course_utils import augment
        transform = augment.simclr_augment(size, a.strength, crop_scale=(a.crop_min, 1.0))
    else:
        transform = simclr.shapes_augment(size, a.strength, crop_scale=(a.crop_min, 1.0))
    model = simclr.SimCLR(encoder(), transform=transform, temperature=a.temperature,
                          proj_hidden_dim=a.proj_hidden, proj_dim=128)
    length = {"epochs": a.epochs} if a.epochs else {"minutes": a.minutes}
    start = time.perf_counter()
    history = train(model, train_data, batch_size=a.batch_size, lr=a.lr, device=device, progress=False, **length)
    seconds = time.perf_counter() - start
    results["SimCLR"] = evaluate.evaluate_encoder(model.encoder, train_data, test_data, device=device)

    steps, plan = len(history["step_loss"]), history["plan"]
    budget = f" of a {plan['budget_s']:.0f} s budget" if "budget_s" in plan else ""
    print(f"SimCLR: {plan['epochs']} epochs, {steps} steps of batch {a.batch_size}, {seconds:.0f} s{budget} "
          f"({steps * a.batch_size / sum(history['epoch_time']):.0f} images/s in the epochs; loss "
          f"{history['epoch_loss'][0]:.3f} -> {history['epoch_loss'][-1]:.3f})")
    print(f"{'encoder':<16} {'kNN':>6} {'linear':>7}")
    for name, r in results.items():
        print(f"{name:<16} {r['knn']:>6.3f} {r['linear']:>7.3f}")
    for name in list(results)[:2]:
        print(f"SimCLR minus {name}: kNN {results['SimCLR']['knn'] - results[name]['knn']:+.3f}, "
              f"linear {results['SimCLR']['linear'] - results[name]['linear']:+.3f}")
    if a.json:
        print(json.dumps({"args": vars(a), "train_seconds": round(seconds, 1), "epochs": plan["epochs"],
                          "results": {k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}}))
    return results, seconds


if __name__ == "__main__":
    main()
