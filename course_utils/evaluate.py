"""Frozen-encoder evaluation: feature extraction, kNN accuracy and a linear probe.

The rules (each one a known pitfall when broken):

* features come from ``encoder.forward_features``: the backbone, never the projection head;
* the encoder is in ``eval()`` mode (BatchNorm uses its running statistics) under
  ``torch.no_grad()``, and its train/eval mode is restored afterwards;
* images are not augmented;
* kNN uses cosine similarity (L2-normalised features) and a temperature-weighted vote;
* the linear probe trains only a linear layer on the frozen features.

Shape legend: N images, D feature width.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import validate
from .data import as_pair, batches
from .runtime import autocast, runs_dir

PROGRESS_DELAY = 3   # seconds: an evaluation shows a progress bar only when it takes longer


@torch.no_grad()
def extract_features(encoder: nn.Module, data, batch_size: int = 512, device=None):
    """Features (N, D) float32 and labels (N,) of every image, in order, on ``device``.
    On a GPU the encoder runs in its mixed precision (``runtime.amp_dtype``)."""
    if not hasattr(encoder, "forward_features"):
        raise ValueError(f"{type(encoder).__name__} has no forward_features(x); pass the backbone "
                         "(e.g. method.encoder), not the whole method")
    device = torch.device(device) if device is not None else module_device(encoder)
    was_training = encoder.training
    encoder.eval()
    try:
        feats, labels = [], []
        n = len(as_pair(data)[0])
        for x, y in tqdm(batches(data, batch_size, shuffle=False, device=device), desc="features",
                         total=-(-n // batch_size), delay=PROGRESS_DELAY, leave=False):
            with autocast(device):
                feats.append(encoder.forward_features(x).float())
            labels.append(y)
    finally:
        encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def module_device(module: nn.Module) -> torch.device:
    """Where a module's parameters live (the CPU for a module without any)."""
    p = next(iter(module.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _check_features(train_features, train_labels, test_features, test_labels):
    for name, value in (("train_features", train_features), ("train_labels", train_labels),
                        ("test_features", test_features), ("test_labels", test_labels)):
        validate.tensor(name, value, "(N, D)" if name.endswith("features") else "(N,)")
    for name, f in (("train_features", train_features), ("test_features", test_features)):
        if f.dim() != 2:
            raise ValueError(f"{name} must have shape (N, D), got {tuple(f.shape)}")
    if train_features.shape[1] != test_features.shape[1]:
        raise ValueError(f"train and test features differ in width: {train_features.shape[1]} vs "
                         f"{test_features.shape[1]}")
    if len(train_labels) != len(train_features) or len(test_labels) != len(test_features):
        raise ValueError("each feature row needs one label: got "
                         f"{len(train_features)} train rows / {len(train_labels)} labels and "
                         f"{len(test_features)} test rows / {len(test_labels)} labels")
    if len(train_features) == 0 or len(test_features) == 0:
        raise ValueError(f"no rows to evaluate: {len(train_features)} training and {len(test_features)} test "
                         "rows; pass non-empty data sets (a subset larger than 0)")
    for name, labels in (("train_labels", train_labels), ("test_labels", test_labels)):
        if labels.dtype.is_floating_point or labels.dtype == torch.bool or int(labels.min()) < 0:
            raise ValueError(f"{name} must be class indices, integers >= 0, got dtype {labels.dtype} "
                             f"with minimum {labels.min().item()}")


@torch.no_grad()
def knn_predict(train_features, train_labels, test_features, k: int = 20, temperature: float = 0.07,
                num_classes: int | None = None, chunk_size: int = 1024) -> torch.Tensor:
    """Weighted kNN on cosine similarity (Wu et al. 2018, arXiv:1805.01978, Sec. 3.4):
    each of the k nearest training points votes for its class with weight exp(sim / t)."""
    validate.integer("k", k, example="20 neighbours")
    temperature = validate.number("temperature", temperature, example="0.07")
    validate.integer("chunk_size", chunk_size, example="1024 test rows at a time")
    k = min(k, len(train_features))
    num_classes = num_classes or int(train_labels.max()) + 1
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float().to(train.device), dim=1)
    labels = train_labels.to(train.device)
    preds = []
    for start in range(0, len(test), chunk_size):
        sim = test[start:start + chunk_size] @ train.T           # (n, N_train)
        top_sim, top_idx = sim.topk(k, dim=1)                     # (n, k)
        votes = torch.zeros(len(sim), num_classes, device=sim.device)
        votes.scatter_add_(1, labels[top_idx], (top_sim / temperature).exp())
        preds.append(votes.argmax(1))
    return torch.cat(preds)


def knn_accuracy(train_features, train_labels, test_features, test_labels, k: int = 20,
                 temperature: float = 0.07) -> float:
    """Accuracy of :func:`knn_predict` on the test set."""
    _check_features(train_features, train_labels, test_features, test_labels)
    pred = knn_predict(train_features, train_labels, test_features, k, temperature)
    return (pred.cpu() == test_labels.cpu()).float().mean().item()


def linear_probe(train_features, train_labels, test_features, test_labels, epochs: int = 100,
                 lr: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 512, seed: int = 0,
                 min_steps: int = 300) -> dict:
    """Train a linear classifier on frozen, standardised features; return accuracies.

    Runs on the features' device (GPU if they are there). Standardising with the training
    set's mean and standard deviation makes one learning rate work for every encoder.
    Small sets get more epochs, so that the probe always takes at least ``min_steps``
    optimiser steps (an under-trained probe would blame the features). The result depends
    on ``seed`` only, not on what ran before.
    """
    _check_features(train_features, train_labels, test_features, test_labels)
    validate.integer("epochs", epochs, example="100")
    validate.number("lr", lr, example="1e-2")
    validate.number("weight_decay", weight_decay, low_ok=True, example="1e-4, or 0 for none")
    validate.integer("batch_size", batch_size, example="512")
    validate.integer("min_steps", min_steps, low=0, example="300")
    if len(train_features) < 2:
        raise ValueError(f"the linear probe needs at least 2 training rows to standardise the features "
                         f"(their std), got {len(train_features)}; use more labelled images")
    device = train_features.device
    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    xtr, xte = (train_features - mean) / std, (test_features.to(device) - mean) / std
    ytr, yte = train_labels.to(device), test_labels.to(device)
    num_classes = int(max(ytr.max(), yte.max())) + 1
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):   # the initial weights depend on seed alone, and
        torch.manual_seed(seed)               # the caller's random stream is left as it was
        clf = nn.Linear(xtr.shape[1], num_classes)
    clf = clf.to(device)
    with torch.enable_grad():
        opt = torch.optim.AdamW(clf.parameters(), lr=lr, weight_decay=weight_decay)
        per_epoch = max(1, -(-len(xtr) // batch_size))
        epochs = max(epochs, -(-min_steps // per_epoch))
        steps = epochs * per_epoch
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in tqdm(range(epochs), desc="linear probe", delay=PROGRESS_DELAY, leave=False):
            for idx in torch.randperm(len(xtr), generator=g).split(batch_size):
                idx = idx.to(device)
                loss = F.cross_entropy(clf(xtr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    with torch.no_grad():
        train_acc = (clf(xtr).argmax(1) == ytr).float().mean().item()
        test_acc = (clf(xte).argmax(1) == yte).float().mean().item()
    return {"accuracy": test_acc, "train_accuracy": train_acc, "classifier": clf}


def evaluate_encoder(encoder: nn.Module, train_data, test_data, k: int = 20, probe_epochs: int = 100,
                     device=None) -> dict:
    """kNN and linear-probe test accuracy of a frozen encoder: ``{"knn": .., "linear": ..}``."""
    ftr, ytr = extract_features(encoder, train_data, device=device)
    fte, yte = extract_features(encoder, test_data, device=device)
    return {"knn": knn_accuracy(ftr, ytr, fte, yte, k=k),
            "linear": linear_probe(ftr, ytr, fte, yte, epochs=probe_epochs)["accuracy"]}


def knn_monitor(train_data, test_data, k: int = 20):
    """An ``eval_fn`` for ``train``: kNN accuracy of ``method.encoder`` during training."""
    def eval_fn(method):
        ftr, ytr = extract_features(method.encoder, train_data)
        fte, yte = extract_features(method.encoder, test_data)
        return {"knn": knn_accuracy(ftr, ytr, fte, yte, k=k)}
    return eval_fn


# ------------------------------------------------------------------------------------------
# notebook 00's baseline table, reused by later notebooks when it fits their data


def _data_key(train_data, test_data) -> dict:
    name = getattr(train_data, "name", None)
    return {"name": name, "n_train": len(train_data.labels), "n_test": len(test_data.labels)}


def save_baselines(results: dict, train_data, test_data, path=None) -> Path:
    """Save notebook 00's ``results`` together with what they were measured on."""
    from .train import save_checkpoint  # atomic write

    path = Path(path) if path is not None else runs_dir() / "00_baselines.pt"
    save_checkpoint(path, {"data": _data_key(train_data, test_data), "results": dict(results)})
    return path


def load_baselines(train_data, test_data, path=None, suffix: str = " (notebook 00)") -> dict:
    """Notebook 00's results if they were measured on the same data (name and sizes), else
    ``{}`` with a note: numbers from another data set or size are not comparable. Each
    row's name ends in ``suffix``, so a table says which rows were measured elsewhere."""
    path = Path(path) if path is not None else runs_dir() / "00_baselines.pt"
    if not path.exists():
        return {}
    from .train import read_checkpoint
    try:
        saved = read_checkpoint(path, what="baselines file")
    except ValueError as error:          # damaged: the baselines are cheap to measure again
        print(f"note: {error}; measuring the baselines here instead")
        return {}
    if "data" not in saved:
        print(f"note: {path} is from an older version of notebook 00; run 00 again to reuse its baselines")
        return {}
    if saved["data"] != _data_key(train_data, test_data):
        print(f"note: notebook 00's baselines were measured on {saved['data']}, not on "
              f"{_data_key(train_data, test_data)}; measuring here instead")
        return {}
    return {f"{name}{suffix}": row for name, row in saved["results"].items()}
