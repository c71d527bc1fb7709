"""One training loop for every method of the course.

A *method* is a ``methods.base.Method``: ``training_step(batch)`` returns the loss or
``dict(loss=..., **logs)``, and ``after_step(step, total_steps)`` runs after every
optimiser step (for example a momentum update of a target network). ``train`` does
everything else: device, batches, optimiser, learning-rate schedule, mixed precision on
CUDA, a progress bar, a history, periodic evaluation, and checkpoints that survive an
interruption and resume exactly where they stopped.

    history = train(method, data, epochs=20, batch_size=256, lr=1e-3,
                    checkpoint=runs_dir() / "simclr.pt")

Run the same cell again and it loads the finished checkpoint instead of training. A
checkpoint remembers every setting that shaped its run (the method's config, the data,
the optimiser's settings, the seed): asked to resume with other settings, ``train``
refuses and says what changed, instead of handing back a run of other settings.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from . import budget, validate
from .data import as_pair, batches
from .runtime import amp_dtype, autocast, get_device, grad_scaler, rng_state, set_rng_state


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


def check_writable(path) -> None:
    """Make sure a checkpoint can be written at ``path`` (its folder made and writable), or
    say where and how to point the course elsewhere."""
    path = Path(path)
    probe = path.with_name(path.name + ".write-test")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"cannot write the checkpoint {path} ({type(error).__name__}: {error}); set "
                              "COURSE_RUNS to a folder you can write to (e.g. COURSE_RUNS=~/course_runs), or "
                              "pass checkpoint= a writable path") from None


def read_checkpoint(path, what: str = "checkpoint") -> dict:
    """The dict stored at ``path`` by ``save_checkpoint``, or an error that names the file and
    the fix (a missing, empty, cut-off or foreign file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}; run the cell that makes it first, or pass the right path")
    if path.stat().st_size == 0:
        raise ValueError(f"the {what} {path} is empty (0 bytes), probably from an interrupted write; "
                         "delete it and run the training cell again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # pickle, zip and EOF errors all mean the same thing here
        raise ValueError(f"the {what} {path} cannot be read ({type(error).__name__}: {error}); it is "
                         "damaged or not a course file: delete it and run the training cell again") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a {what} written by course_utils; delete it and train again")
    return state


def load_checkpoint(path, model: nn.Module) -> dict:
    """Load a checkpoint written by ``train`` into ``model``; refuses one from another model."""
    path = Path(path)
    state = read_checkpoint(path)
    if "model" not in state or "signature" not in state:
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


def cosine_schedule(total_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``final_fraction``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def train(method: nn.Module, data, *, epochs: int | None = None, minutes: float | None = None,
          max_epochs: int | None = None, batch_size: int = 256, lr: float = 1e-3,
          weight_decay: float = 1e-4, optimizer: torch.optim.Optimizer | None = None,
          warmup_epochs: float = 0.0, device=None, checkpoint=None, resume: bool = True,
          eval_fn: Callable[[nn.Module], dict] | None = None, eval_every: int = 1,
          amp: bool = True, max_grad_norm: float | None = None, seed: int = 0,
          progress: bool = True, drop_last: bool = True, desc: str | None = None) -> dict:
    """Train ``method`` on ``data`` (ImageData or (inputs, labels)) for ``epochs`` epochs, or
    for as many whole epochs as fit in ``minutes`` (times ``COURSE_TIME_SCALE``; at least one,
    at most ``max_epochs``), measured on this machine before the run (see ``budget``).

    Returns the history: ``step_loss`` (every step), ``epoch_loss``, ``epoch_time``
    (seconds), ``logs`` ({name: [one value per step]} of what ``training_step`` returned
    beside the loss), ``epoch_logs`` ({name: [mean per epoch]}), ``eval`` (a list of
    ``{"epoch": e, **eval_fn(method)}``), ``eval_time``, ``plan`` (epochs and steps; for a
    budget, also what was measured) and ``seconds`` (time spent in ``train``, all sessions).
    ``checkpoint``: a path; written at the end of every epoch; if it exists and ``resume``
    is true, training continues from it (or returns at once if it is done), provided it
    comes from a run of the same settings. ``amp``: mixed precision where the device has it
    (``runtime.amp_dtype``).
    """
    _check_args(epochs, minutes, max_epochs, batch_size, lr, eval_every, data)
    if checkpoint is not None:
        check_writable(checkpoint)       # before training, not after the first epoch
    t_start = time.perf_counter()
    device = torch.device(device) if device is not None else get_device()
    method.to(device)
    optimizer = optimizer or torch.optim.AdamW(
        [p for p in method.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    dtype = amp_dtype(device) if amp else None
    scaler = grad_scaler(device, dtype)
    n = len(as_pair(data)[0])
    steps_per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} is larger than the data set ({n} images) with "
                         "drop_last=True; use a smaller batch_size")
    if not drop_last and n % batch_size == 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                                     for m in method.modules()):
        raise ValueError(f"with drop_last=False the last batch of every epoch holds 1 image ({n} = "
                         f"{n // batch_size} x {batch_size} + 1), and BatchNorm cannot normalise a single image "
                         "while training; keep drop_last=True (the default) or choose another batch_size")
    length = {"epochs": epochs} if minutes is None else {"minutes": minutes, "time_scale": budget.time_scale(),
                                                         "max_epochs": max_epochs}
    run = run_config(method, data, optimizer, **length, batch_size=batch_size, warmup_epochs=warmup_epochs,
                     seed=seed, drop_last=drop_last, max_grad_norm=max_grad_norm, amp=str(dtype))
    step = functools.partial(_step, device=device, dtype=dtype, scaler=scaler, max_grad_norm=max_grad_norm)
    state = None
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, method)
        _check_same_run(checkpoint, state["config"].get("run", {}), run)
        plan = state["history"]["plan"]
    elif minutes is not None:
        plan = _plan(method, data, optimizer, step, minutes, max_epochs, steps_per_epoch, batch_size,
                     drop_last, device, eval_fn, eval_every, progress, desc)
    else:
        plan = {"epochs": epochs, "steps_per_epoch": steps_per_epoch}
    epochs = plan["epochs"]
    total = epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_schedule(total, int(warmup_epochs * steps_per_epoch)))
    history = {"step_loss": [], "epoch_loss": [], "epoch_time": [], "logs": {}, "epoch_logs": {}, "eval": [],
               "eval_time": [], "plan": plan, "seconds": 0.0}
    start_epoch = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler.is_enabled() and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history, start_epoch = state["history"], state["epoch"]
        set_rng_state(state["rng"])
        print(f"resumed from {checkpoint} after epoch {start_epoch}/{epochs}")
    seconds_before = history["seconds"]
    bar = tqdm(total=total, initial=start_epoch * steps_per_epoch, disable=not progress,
               desc=desc or type(method).__name__)
    for epoch in range(start_epoch, epochs):
        t0, losses, logs = time.perf_counter(), [], {}
        method.train()
        # the shuffle depends only on (seed, epoch): a resumed run sees the same batches
        order = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        for batch in batches(data, batch_size, generator=order, drop_last=drop_last, device=device):
            i = epoch * steps_per_epoch + len(losses)
            loss, step_logs = step(method, optimizer, batch)
            scheduler.step()
            if hasattr(method, "after_step"):
                method.after_step(i, total)
            losses.append(loss.detach())
            for k, v in step_logs.items():   # kept as tensors: reading them every step would stall a GPU
                logs.setdefault(k, []).append(v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v)))
            if len(losses) % 10 == 0 or len(losses) == steps_per_epoch:
                _check_finite(losses, epoch, checkpoint, optimizer)
                bar.set_postfix(loss=f"{losses[-1].item():.4f}")
            bar.update(1)
        _record_epoch(history, losses, logs, time.perf_counter() - t0)
        if eval_fn is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs):
            t_eval = time.perf_counter()
            history["eval"].append({"epoch": epoch + 1, **eval_fn(method)})
            history["eval_time"].append(time.perf_counter() - t_eval)
            method.train()
            bar.set_postfix(loss=f"{history['epoch_loss'][-1]:.4f}", **{
                k: f"{v:.3f}" for k, v in history["eval"][-1].items()
                if k != "epoch" and isinstance(v, (int, float))})   # numbers only: a record may hold a tensor
        history["seconds"] = seconds_before + time.perf_counter() - t_start
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "model": method.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch + 1,
                "history": history, "rng": rng_state(), "signature": model_signature(method),
                "config": {"method": _portable_config(method), "run": run}})
    bar.close()
    return history


def _step(method, optimizer, batch, *, device, dtype, scaler, max_grad_norm):
    """One optimiser step: forward under autocast, backward (scaled for float16), clip, step."""
    with autocast(device, dtype=dtype):
        loss, logs = _split(method.training_step(batch), method)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if max_grad_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(method.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss, logs


def _plan(method, data, optimizer, step, minutes, max_epochs, steps_per_epoch, batch_size, drop_last,
          device, eval_fn, eval_every, progress, desc) -> dict:
    """Measure a step (and an evaluation) on a copy of the method, then fit whole epochs."""
    def probe_step(m, opt, batch):
        step(m, opt, batch)
        if hasattr(m, "after_step"):
            m.after_step(0, 1)

    def make_batches():
        return batches(data, batch_size, generator=torch.Generator().manual_seed(1), drop_last=drop_last,
                       device=device)

    limit = 0.04 * minutes * 60 * budget.time_scale()           # measuring takes at most ~4% of the budget
    step_s, eval_s, measure_s = budget.measure(probe_step, method, optimizer, make_batches, eval_fn,
                                               max_seconds=limit)
    plan = budget.plan_epochs(minutes, step_s, steps_per_epoch, eval_s, eval_every if eval_fn else None,
                              measure_s, max_epochs)
    if progress:
        print(f"{desc or type(method).__name__}: {plan}")
    return plan.as_dict()


def _portable_config(method):
    config = getattr(method, "config", None)
    return config.portable() if config is not None else None


def _split(out, method) -> tuple[torch.Tensor, dict]:
    """A training step's result -> (loss, logs)."""
    if isinstance(out, dict):
        if "loss" not in out:
            raise ValueError(f"{type(method).__name__}.training_step returned a dict without 'loss' "
                             f"(keys: {sorted(out)}); return {{'loss': loss, ...}}")
        logs = {k: v for k, v in out.items() if k != "loss"}
        out = out["loss"]
    else:
        logs = {}
    if not torch.is_tensor(out) or out.dim() != 0:
        raise ValueError(f"{type(method).__name__}.training_step must return a scalar loss tensor (or a dict "
                         f"with one under 'loss'), got {type(out).__name__}"
                         + (f" of shape {tuple(out.shape)}" if torch.is_tensor(out) else ""))
    return out, logs


def _record_epoch(history: dict, losses: list, logs: dict, seconds: float) -> None:
    epoch_losses = torch.stack(losses).float().cpu().tolist()
    history["step_loss"] += epoch_losses
    history["epoch_loss"].append(sum(epoch_losses) / len(epoch_losses))
    history["epoch_time"].append(seconds)
    for k, values in logs.items():
        values = torch.stack(values).cpu().tolist()
        history["logs"].setdefault(k, []).extend(values)
        history["epoch_logs"].setdefault(k, []).append(sum(values) / len(values))


def run_config(method: nn.Module, data, optimizer: torch.optim.Optimizer, **settings) -> dict:
    """Every setting that shapes a run, as comparable text: the method's config, what the
    data are, the optimiser and its hyper-parameters, and ``settings`` (epochs, batch
    size, seed, ...). Two runs with equal configs compute the same thing."""
    from .methods.base import describe_value

    config = getattr(method, "config", None)
    out = {f"method.{k}": v for k, v in config.describe().items()} if config is not None else {
        "method": type(method).__name__}
    out |= {f"data.{k}": v for k, v in data_fingerprint(data).items()}
    out["optimizer"] = type(optimizer).__name__
    for k, v in optimizer.defaults.items():
        if k in ("lr", "weight_decay", "betas", "momentum", "eps"):
            out[f"optimizer.{k}"] = describe_value(v)
    groups = [{k: v for k, v in g.items() if k in ("weight_decay",)} for g in optimizer.param_groups]
    out["optimizer.groups"] = describe_value([len(g["params"]) for g in optimizer.param_groups]) + describe_value(groups)
    return out | {k: describe_value(v) for k, v in settings.items()}


def data_fingerprint(data) -> dict:
    """Which data a run saw, cheaply: the name, size, shape and a checksum of about a
    thousand of its items (and their labels), taken at even intervals."""
    (x, y), name = as_pair(data), getattr(data, "name", None)
    step = max(1, len(x) // 1024)                  # about a thousand items: cheap on any data size
    digest = hashlib.sha1()
    for t in (x[::step], y[::step]):
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return {"name": repr(name), "n": str(len(x)), "shape": str(tuple(x.shape[1:])),
            "checksum": digest.hexdigest()[:12]}


def _check_same_run(checkpoint, saved: dict, now: dict) -> None:
    """A checkpoint resumes only the run it came from: every setting equal (else the
    schedule, the batches or the very method would silently differ, or a finished run of
    other settings would be returned as if it were this one)."""
    changed = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    if changed:
        what = "; ".join(f"{k}: {saved.get(k, '(not recorded)')} in the checkpoint, {now.get(k, '(none)')} now"
                         for k in changed[:6])
        more = f" (and {len(changed) - 6} more)" if len(changed) > 6 else ""
        raise ValueError(
            f"checkpoint {checkpoint} belongs to a run with other settings ({what}{more}). Delete the file, "
            "or pass checkpoint= a new path, to train with the new settings.")


def _check_finite(losses, epoch, checkpoint, optimizer):
    recent = torch.stack(losses[-10:])
    if not torch.isfinite(recent).all():
        lr = optimizer.param_groups[0]["lr"]
        kept = f"; the last good checkpoint is kept at {checkpoint}" if checkpoint else ""
        raise FloatingPointError(
            f"the loss became {recent[~torch.isfinite(recent)][0].item()} in epoch {epoch + 1} "
            f"(learning rate {lr:.2e}). Lower lr, check the inputs, or clip gradients with "
            f"max_grad_norm=1.0{kept}.")


def _check_args(epochs, minutes, max_epochs, batch_size, lr, eval_every, data):
    if (epochs is None) == (minutes is None):
        raise ValueError(f"give train either epochs= (a fixed number) or minutes= (a time budget), not "
                         f"{'both' if epochs is not None else 'neither'} (got epochs={epochs!r}, minutes={minutes!r})")
    if epochs is not None:
        validate.integer("epochs", epochs, example="10")
    if minutes is not None:
        budget.check_minutes(minutes)
    if max_epochs is not None:
        validate.integer("max_epochs", max_epochs, example="50, or None for no cap")
    validate.integer("batch_size", batch_size, example="256")
    validate.number("lr", lr, example="1e-3")
    validate.integer("eval_every", eval_every, example="1, to evaluate after every epoch")
    as_pair(data)                        # an ImageData or an (inputs, labels) pair, or a clear error
