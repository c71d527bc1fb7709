"""How fast does one SimCLR epoch run here? Prints images per second and seconds per epoch.

    python benchmarks/simclr_epoch.py                                  # ResNet-18, batch 512, this device
    python benchmarks/simclr_epoch.py --model small_cnn --batch-size 256 --steps 10
    python benchmarks/simclr_epoch.py --compile                        # torch.compile the networks
    python benchmarks/simclr_epoch.py --data synthetic                 # no CIFAR-10 needed

What makes it fast on a GPU, each switchable to see its effect:
* the data set lives on the device as uint8; batches and augmentations are tensor ops
  there (no DataLoader, no PIL);               --data-on-cpu moves them back to the host
* mixed precision (CUDA only: bfloat16, or float16 with a scaler on a T4 or V100);  --no-amp
* channels-last memory order for the CNNs;     --no-channels-last
* one encoder pass for both views (2B images);
* torch.compile of encoder + head;             --compile
The epoch time is extrapolated from timed steps after a warm-up (which includes compiling).

Planning on paper: it also counts the floating-point operations of one step (encoder and
head, forward and backward, and the loss; ``torch.utils.flop_counter`` on the "meta"
device, so counting costs no compute) and prints the epoch time they imply on a T4, an
A100 and an H100 at a stated share of each GPU's peak (--utilisation). The gpu profile's
budgets are planned from these figures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_utils import augment, models, runtime  # noqa: E402
from course_utils.methods.simclr import SimCLR  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet18", choices=["resnet18", "small_cnn", "vit_tiny"])
    p.add_argument("--width", type=int, default=None, help="SmallCNN / ResNet width (default: the model's)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    p.add_argument("--data", default="auto", choices=["auto", "cifar10", "synthetic", "shapes"],
                   help="auto: CIFAR-10 when downloaded, else synthetic CIFAR-shaped images")
    p.add_argument("--epoch-size", type=int, default=50_000, help="images per epoch (CIFAR-10: 50,000)")
    p.add_argument("--compile", action="store_true", help="torch.compile the encoder and the head")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--data-on-cpu", action="store_true", help="keep images on the host (slower on a GPU)")
    p.add_argument("--device", default=None, choices=["cuda", "mps", "cpu"])
    p.add_argument("--utilisation", type=float, default=0.3,
                   help="share of a GPU's peak the estimates assume (default 0.3, typical for small CNNs)")
    return p.parse_args(argv)


# dense tensor-core peaks, TFLOP/s, in the precision each GPU trains in (runtime.amp_dtype)
PEAKS = {"T4 (float16)": 65.0, "A100 (bfloat16)": 312.0, "H100 SXM (bfloat16)": 989.0}


def step_flops(args) -> float:
    """Floating-point operations of one training step (2 x batch images through encoder and
    head, forward and backward, and the NT-Xent loss), counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from course_utils.losses import nt_xent_loss

    with torch.device("meta"):
        method, _ = build(argparse.Namespace(**{**vars(args), "compile": False}), torch.device("meta"))
        x = torch.empty(2 * args.batch_size, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        z = method.project(x)
        nt_xent_loss(z[:args.batch_size], z[args.batch_size:], 0.5).backward()
    return float(counter.get_total_flops())


def estimates(flops: float, steps_per_epoch: float, utilisation: float) -> dict:
    """Seconds per epoch on each GPU of ``PEAKS`` at ``utilisation`` of its peak."""
    return {gpu: flops * steps_per_epoch / (peak * 1e12 * utilisation) for gpu, peak in PEAKS.items()}


def load_data(kind: str, n: int) -> tuple[torch.Tensor, str]:
    """uint8 images (N, 3, 32, 32) and what they are."""
    from course_utils import data

    if kind in ("auto", "cifar10"):
        try:
            return data.load_images("cifar10", "train").images, "CIFAR-10 train"
        except data.DatasetNotFound:
            if kind == "cifar10":
                raise
    if kind == "shapes":
        return data.load_images("shapes", "train", n=n).images, "shapes"
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return images, "synthetic CIFAR-shaped noise"


def build(args, device):
    kwargs = {} if args.width is None or args.model == "vit_tiny" else {"width": args.width}
    encoder = models.build_encoder(args.model, **kwargs)
    channels_last = device.type == "cuda" and not args.no_channels_last and args.model != "vit_tiny"
    method = SimCLR(encoder, transform=augment.simclr_augment(32), temperature=0.5,
                    proj_hidden_dim=2048 if args.model == "resnet18" else 512)
    method.to(device)
    if channels_last:  # the views are channels-last on CUDA anyway (Method.views); this is the weights
        method.to(memory_format=torch.channels_last)
    if args.compile:  # the encoder + head pass of training_step; state_dict keys stay the same
        method.project = torch.compile(method.project)
    return method, channels_last


def run(args) -> dict:
    device = runtime.get_device(args.device)
    n = max(args.batch_size * (args.steps + args.warmup), 2 * args.batch_size)
    images, source = load_data(args.data, min(n, 50_000))
    if not args.data_on_cpu:
        images = images.to(device)
    method, channels_last = build(args, device)
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3, weight_decay=1e-4)
    amp = None if args.no_amp else runtime.amp_dtype(device)   # bfloat16, float16 (T4, V100) or None
    scaler = runtime.grad_scaler(device, amp)

    def step(i):
        idx = torch.randint(0, len(images), (args.batch_size,), device=images.device)
        x = images[idx].to(device, non_blocking=True).float().div_(255)
        with runtime.autocast(device, enabled=amp is not None, dtype=amp):
            loss = method.training_step((x, None))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    with runtime.Timer() as warm:
        for i in range(args.warmup):
            step(i)
    with runtime.Timer() as timed:
        for i in range(args.steps):
            loss = step(i)
        loss.item()
    # the augmentations alone, to see what share of a step they take
    x = images[:args.batch_size].to(device).float().div_(255)
    with runtime.Timer() as aug:
        for _ in range(args.steps):
            method.views(x)
    ips = args.steps * args.batch_size / timed.seconds
    flops = step_flops(args)
    return {"flops": flops, "estimates": estimates(flops, args.epoch_size / args.batch_size, args.utilisation),
            "achieved_tflops": flops * args.steps / timed.seconds / 1e12,
            "device": runtime.describe_device(device), "data": source, "model": args.model,
            "batch_size": args.batch_size, "amp": str(amp).replace("torch.", ""), "compile": args.compile,
            "channels_last": channels_last, "warmup_s": warm.seconds,
            "step_s": timed.seconds / args.steps, "images_per_s": ips, "epoch_s": args.epoch_size / ips,
            "augment_share": aug.seconds / timed.seconds,
            "threads": torch.get_num_threads()}


def main(argv=None):
    args = parse_args(argv)
    r = run(args)
    print(f"device          {r['device']}   (torch {torch.__version__}, {r['threads']} CPU threads)")
    print(f"data            {r['data']}")
    print(f"model           {r['model']}, batch {r['batch_size']} (x2 views), autocast {r['amp']}, "
          f"channels-last {r['channels_last']}, torch.compile {r['compile']}")
    print(f"warm-up         {args.warmup} steps in {r['warmup_s']:.1f} s")
    print(f"step            {r['step_s'] * 1000:.0f} ms  ({args.steps} timed steps)")
    share = 100 * r["augment_share"]
    print(f"throughput      {r['images_per_s']:.0f} images/s  (augmentations alone: {share:.0f}% of that time)")
    print(f"one epoch       {r['epoch_s']:.1f} s for {args.epoch_size:,} images")
    print(f"one step        {r['flops'] / 1e9:.1f} GFLOP counted (forward + backward); achieved here "
          f"{r['achieved_tflops']:.2f} TFLOP/s")
    print(f"on paper        one epoch at {100 * args.utilisation:.0f}% of peak: " + ", ".join(
        f"{gpu} {sec:.1f} s" for gpu, sec in r["estimates"].items()))
    return r


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"(benchmark wall time {time.time() - t0:.0f} s)")
