"""One training loop for every method of the course.

A *method* is an ``nn.Module`` with ``training_step(x, y) -> loss``; it may also define
``after_step(step, total_steps)`` (for example a momentum update of a target network).
``train`` does everything else: device, batches, optimiser, learning-rate schedule,
mixed precision on CUDA, a progress bar, a history, periodic evaluation, and
checkpoints that survive an interruption and resume exactly where they stopped.

    history = train(method, data, epochs=20, batch_size=256, lr=1e-3,
                    checkpoint=runs_dir() / "simclr.pt")

Run the same cell again and it loads the finished checkpoint instead of training.
"""
from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .data import batches
from .runtime import autocast, get_device


def model_signature(model: nn.Module) -> dict:
    """Class name and parameter shapes: enough to tell whether a checkpoint fits a model."""
    return {"class": type(model).__name__,
            "shapes": {k: tuple(v.shape) for k, v in model.state_dict().items()}}


def save_checkpoint(path, state: dict) -> None:
    """Write atomically: to a temporary file beside ``path``, then rename. An interruption
    mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, model: nn.Module) -> dict:
    """Load a checkpoint written by ``train`` into ``model``; refuses one from another model."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; train first or pass the right path")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "signature" not in state:
        raise ValueError(f"{path} is not a checkpoint written by course_utils.train.train")
    expected, found = model_signature(model), state["signature"]
    if expected != found:
        diff = _signature_diff(expected, found)
        raise ValueError(
            f"checkpoint {path} was written by a different model ({found['class']}) than the one "
            f"given ({expected['class']}): {diff}. Delete the file, or pass checkpoint= a new path, "
            "to train this model from scratch.")
    model.load_state_dict(state["model"])
    return state


def _signature_diff(expected: dict, found: dict) -> str:
    if expected["class"] != found["class"]:
        return f"class {found['class']} vs {expected['class']}"
    a, b = expected["shapes"], found["shapes"]
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return f"parameter {k!r} has shape {b.get(k)} in the file but {a.get(k)} in the model"
    return "different parameters"


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cosine_schedule(total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``final_fraction``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def train(method: nn.Module, data, *, epochs: int, batch_size: int = 256, lr: float = 1e-3,
          weight_decay: float = 1e-4, optimizer: torch.optim.Optimizer | None = None,
          warmup_epochs: float = 0.0, device=None, checkpoint=None, resume: bool = True,
          eval_fn: Callable[[nn.Module], dict] | None = None, eval_every: int = 1,
          amp: bool = True, max_grad_norm: float | None = None, seed: int = 0,
          progress: bool = True, drop_last: bool = True) -> dict:
    """Train ``method`` on ``data`` (ImageData or (images, labels)) for ``epochs`` epochs.

    Returns the history: ``step_loss`` (every step), ``epoch_loss``, ``epoch_time``
    (seconds) and ``eval`` (a list of ``{"epoch": e, **eval_fn(method)}``).
    ``checkpoint``: a path; written at the end of every epoch; if it exists and
    ``resume`` is true, training continues from it (or returns at once if it is done).
    """
    _check_args(epochs, batch_size, lr, eval_every, data)
    device = torch.device(device) if device is not None else get_device()
    method.to(device)
    optimizer = optimizer or torch.optim.AdamW(
        [p for p in method.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    n = len(data.images if hasattr(data, "images") else data[0])
    steps_per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the data set ({n} images) with "
                         "drop_last=True; use a smaller batch_size")
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_schedule(total, int(warmup_epochs * steps_per_epoch)))
    history = {"step_loss": [], "epoch_loss": [], "epoch_time": [], "eval": []}
    start_epoch = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, method)
        _check_same_run(checkpoint, state["config"], {"batch_size": batch_size, "n": n, "seed": seed})
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"]
        _set_rng_state(state["rng"])
        print(f"resumed from {checkpoint} after epoch {start_epoch}/{epochs}")
        if state["config"]["epochs"] != epochs:
            print(f"note: the checkpoint was planned for {state['config']['epochs']} epochs; the learning-rate "
                  f"schedule now follows {epochs}, so the result differs from an uninterrupted run")
    bar = tqdm(total=total, initial=start_epoch * steps_per_epoch, disable=not progress,
               desc=type(method).__name__)
    for epoch in range(start_epoch, epochs):
        t0, losses = time.perf_counter(), []
        method.train()
        # the shuffle depends only on (seed, epoch): a resumed run sees the same batches
        order = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        for x, y in batches(data, batch_size, generator=order, drop_last=drop_last, device=device):
            step = epoch * steps_per_epoch + len(losses)
            with autocast(device, enabled=amp):
                loss = method.training_step(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                nn.utils.clip_grad_norm_(method.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            if hasattr(method, "after_step"):
                method.after_step(step, total)
            losses.append(loss.detach())
            if len(losses) % 10 == 0 or len(losses) == steps_per_epoch:
                _check_finite(losses, epoch, checkpoint, optimizer)
                bar.set_postfix(loss=f"{losses[-1].item():.4f}")
            bar.update(1)
        epoch_losses = torch.stack(losses).float().cpu().tolist()
        history["step_loss"] += epoch_losses
        history["epoch_loss"].append(sum(epoch_losses) / len(epoch_losses))
        history["epoch_time"].append(time.perf_counter() - t0)
        if eval_fn is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            history["eval"].append({"epoch": epoch + 1, **eval_fn(method)})
            method.train()
            bar.set_postfix(loss=f"{history['epoch_loss'][-1]:.4f}", **{
                k: f"{v:.3f}" for k, v in history["eval"][-1].items() if k != "epoch"})
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": method.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
                "rng": _rng_state(), "signature": model_signature(method),
                "config": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "n": n}})
    bar.close()
    return history


def _check_same_run(checkpoint, saved: dict, now: dict) -> None:
    """A checkpoint resumes only the run it came from: same data size, batch size and seed
    (else the shuffle and the schedule would silently differ, or a finished run trained on
    other data would be returned as if it were this one)."""
    changed = {k: (saved[k], v) for k, v in now.items() if k in saved and saved[k] != v}
    if changed:
        what = ", ".join(f"{k} {a} in the checkpoint but {b} now" for k, (a, b) in changed.items())
        raise ValueError(
            f"checkpoint {checkpoint} belongs to another run ({what}). Delete the file, or pass "
            "checkpoint= a new path, to train with the new settings.")


def _check_finite(losses, epoch, checkpoint, optimizer):
    recent = torch.stack(losses[-10:])
    if not torch.isfinite(recent).all():
        lr = optimizer.param_groups[0]["lr"]
        kept = f"; the last good checkpoint is kept at {checkpoint}" if checkpoint else ""
        raise FloatingPointError(
            f"the loss became {recent[~torch.isfinite(recent)][0].item()} in epoch {epoch + 1} "
            f"(learning rate {lr:.2e}). Lower lr, check the inputs, or clip gradients with "
            f"max_grad_norm=1.0{kept}.")


def _check_args(epochs, batch_size, lr, eval_every, data):
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if eval_every < 1:
        raise ValueError(f"eval_every must be >= 1, got {eval_every}")
    if not (hasattr(data, "images") or (isinstance(data, (tuple, list)) and len(data) == 2)):
        raise ValueError("data must be an ImageData (from load_images) or an (images, labels) pair")
