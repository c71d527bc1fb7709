"""A fingerprint of every method: its per-epoch losses (and logs) on a short, seeded CPU run,
to show that a refactor keeps behaviour. Run it before and after a change and compare:

    python benchmarks/method_fingerprint.py                       # every method
    python benchmarks/method_fingerprint.py simclr mae            # some of them

Each run: 256 shapes training images, a SmallCNN of width 8 (MAE: a ViT of width 32, depth
2), batch 64, lr 1e-3, 2 epochs, seed 0, on the CPU (bit-exact from run to run there).
"""
from __future__ import annotations

import argparse

import torch

from course_utils import data, models
from course_utils.train import train


def build(name: str):
    from course_utils.methods import byol, colourisation, mae, moco, pretext, simclr, supervised

    torch.manual_seed(0)
    if name == "mae":
        return mae.MAE(models.build_encoder("vit_tiny", dim=32, depth=2, num_heads=2), decoder_dim=32)
    enc = models.build_encoder("small_cnn", width=8)
    t = simclr.shapes_augment(32)
    return {"simclr": lambda: simclr.SimCLR(enc, transform=t, temperature=0.2),
            "moco": lambda: moco.MoCo(enc, queue_size=512, transform=t),
            "byol": lambda: byol.BYOL(enc, 256, 64, 256, transform=(t, t)),
            "simsiam": lambda: byol.SimSiam(enc, 256, 64, 64, transform=t),
            "supervised": lambda: supervised.Supervised(enc, 8),
            "rotation": lambda: pretext.RotationPrediction(enc, hidden_dim=64),
            "jigsaw": lambda: pretext.Jigsaw(enc, num_permutations=24, grid=2, tile_size=13),
            "context": lambda: pretext.ContextPrediction(enc, tile_size=8, upscale=2),
            "colourisation": lambda: colourisation.Colorization(enc)}[name]()


NAMES = ["simclr", "moco", "byol", "simsiam", "supervised", "rotation", "jigsaw", "context", "colourisation", "mae"]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("methods", nargs="*", help=f"any of {', '.join(NAMES)} (default: all)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.methods) - set(NAMES))
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {NAMES}")
    args.methods = args.methods or NAMES
    train_data = data.load_images("shapes", "train", n=256)
    out = {}
    for name in args.methods:
        h = train(build(name), train_data, epochs=2, batch_size=64, lr=1e-3, device="cpu", progress=False, seed=0)
        out[name] = h["epoch_loss"]
        logs = "  ".join(f"{k} {v[-1]:.4f}" for k, v in h["epoch_logs"].items())
        losses = ", ".join(f"{v:.6f}" for v in h["epoch_loss"])
        print(f"{name:14s} epoch losses {losses}" + (f"  ({logs})" if logs else ""))
    return out


if __name__ == "__main__":
    main()
