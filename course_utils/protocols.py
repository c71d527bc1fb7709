"""Evaluation protocols for notebook 08, and the pitfalls that make frozen evaluation lie.

Protocols (``evaluate`` has the two basic ones, kNN and the linear probe):

* :func:`knn_k_curve`: the kNN accuracy for several k;
* :func:`fine_tune`: train the whole encoder and a linear classifier with labels;
* :func:`label_fraction_indices` and :func:`few_label_curve`: the same protocols with 1 %,
  10 %, ... of the labels, sampled per class.

Pitfalls, each a function that does the wrong thing on purpose so its effect can be
measured: :func:`features_bn_train_mode`, :func:`augmented_features`,
``methods.heads.ProjectedEncoder`` (features after the projection head), :func:`knn_predict_unnormalized`.

The lesson code of notebook 08 (the encoders of notebooks 00-06 or their stand-ins,
t-SNE maps, curves) is in ``course_utils.lessons.nb08``.

Shape legend: N images, D feature width, C/H/W image.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from . import evaluate, models
from .data import as_pair, batches

# --------------------------------------------------------------------------------------
# protocols


def knn_k_curve(train_features, train_labels, test_features, test_labels, ks=(1, 5, 20, 50, 200),
                temperature: float = 0.07) -> dict:
    """kNN test accuracy for each k in ``ks``: ``{k: accuracy}``."""
    if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be a non-empty list of ints >= 1, got {ks!r}")
    return {k: evaluate.knn_accuracy(train_features, train_labels, test_features, test_labels, k, temperature)
            for k in ks}


def label_fraction_indices(labels: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Indices of a class-balanced subset holding ``fraction`` of the labelled examples.

    From each class c with n_c examples, fraction * n_c rounded half up are drawn at
    random (at least 1, so every class keeps an example). labels: (N,) -> sorted indices (M,) int64.
    Examples labelled -1 (unlabelled) are never chosen."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError(f"labels must be a 1-D tensor (N,), got {getattr(labels, 'shape', type(labels))}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    g = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    chosen = []
    for c in labels[labels >= 0].unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        n = max(1, int(fraction * len(idx) + 0.5))
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    if not chosen:
        raise ValueError("labels holds no labelled example (all are -1)")
    return torch.cat(chosen).sort().values


def few_label_curve(train_features, train_labels, test_features, test_labels, fractions=(0.01, 0.1, 1.0),
                    protocol: str = "linear", seed: int = 0, probe_epochs: int = 100, k: int = 20) -> dict:
    """Test accuracy of a linear probe (or kNN) trained on ``fraction`` of the labels, for
    each fraction: ``{fraction: accuracy}``. The features are frozen; only the labels shrink."""
    if protocol not in ("linear", "knn"):
        raise ValueError(f"protocol must be 'linear' or 'knn', got {protocol!r}")
    curve = {}
    for fraction in fractions:
        idx = label_fraction_indices(train_labels, fraction, seed).to(train_features.device)
        f, y = train_features[idx], train_labels.to(train_features.device)[idx]
        if protocol == "knn":
            curve[fraction] = evaluate.knn_accuracy(f, y, test_features, test_labels, k=k)
        else:
            curve[fraction] = evaluate.linear_probe(f, y, test_features, test_labels, epochs=probe_epochs,
                                                    seed=seed)["accuracy"]
    return curve


@torch.no_grad()
def classifier_accuracy(model: nn.Module, data, batch_size: int = 512) -> float:
    """Accuracy on ``data`` of ``model.classify(x)`` (or ``model(x)``) -> logits, in eval
    mode (mode restored)."""
    device = next(model.parameters()).device
    logits = getattr(model, "classify", model)
    correct, total = 0, 0
    with models.eval_mode(model):
        for x, y in batches(data, batch_size, shuffle=False, device=device):
            correct += (logits(x).argmax(1) == y).sum().item()
            total += len(y)
    return correct / max(1, total)


def fine_tune(encoder: nn.Module, train_data, test_data, *, epochs: int | None = None,
              minutes: float | None = None, lr: float = 1e-3,
              batch_size: int = 128, fraction: float = 1.0, device=None, seed: int = 0,
              checkpoint=None, progress: bool = False) -> dict:
    """Fine-tune a copy of ``encoder`` with a new linear classifier (``Supervised``, as the
    baseline of notebook 00 trains) on ``fraction`` of the labels (class-balanced), for
    ``epochs`` or a budget of ``minutes`` (see ``train``). Returns ``{"accuracy", "seconds",
    "n_labels", "model", "plan"}`` (``plan``: see ``train``)."""
    from .train import train

    if not hasattr(encoder, "forward_features"):
        raise ValueError(f"{type(encoder).__name__} has no forward_features(x); pass an encoder")
    from .methods.supervised import Supervised

    subset = train_data.subset(label_fraction_indices(train_data.labels, fraction, seed))
    torch.manual_seed(seed)
    encoder = copy.deepcopy(encoder)              # the encoder passed in is never changed
    for p in encoder.parameters():
        p.requires_grad_(True)
    model = Supervised(encoder, len(train_data.classes))   # the whole network learns, crop and flip
    history = train(model, subset, epochs=epochs, minutes=minutes, batch_size=min(batch_size, len(subset)),
                    lr=lr, device=device, checkpoint=checkpoint, seed=seed, progress=progress)
    return {"accuracy": classifier_accuracy(model, test_data), "seconds": sum(history["epoch_time"]),
            "n_labels": len(subset), "model": model, "plan": history["plan"]}


# --------------------------------------------------------------------------------------
# pitfalls: each does one thing wrong, on purpose


@torch.no_grad()
def features_bn_train_mode(encoder: nn.Module, data, batch_size: int = 64, sort_by_label: bool = False,
                           device=None) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """PITFALL: features computed with the encoder in *train* mode, so BatchNorm normalises
    with each batch's own statistics (and updates its running statistics).

    Works on a copy of ``encoder``. ``sort_by_label`` feeds the images class by class, as
    a folder-by-folder evaluation would. Returns (features (N, D), labels (N,), changed):
    ``changed`` says whether the copy's running statistics moved, i.e. whether doing this
    to the real encoder would have altered it."""
    enc = copy.deepcopy(encoder).train()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    images, labels = as_pair(data)
    if sort_by_label:
        order = torch.argsort(labels.cpu(), stable=True).to(labels.device)
        images, labels = images[order], labels[order]
    device = device or evaluate.module_device(enc)
    feats, ys = [], []
    for x, y in batches((images, labels), batch_size, shuffle=False, device=device):
        feats.append(enc.forward_features(x).float())
        ys.append(y)
    after = enc.state_dict()
    changed = any(not torch.equal(before[k], after[k]) for k in before)
    return torch.cat(feats), torch.cat(ys), changed


@torch.no_grad()
def augmented_features(encoder: nn.Module, data, transform, batch_size: int = 512, seed: int = 0,
                       device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """PITFALL: features of *augmented* images (eval mode otherwise), one random view per
    image, drawn reproducibly from ``seed``. Returns (features (N, D), labels (N,))."""
    device = torch.device(device) if device is not None else evaluate.module_device(encoder)
    g = torch.Generator(device=device).manual_seed(seed)
    was_training = encoder.training
    encoder.eval()
    feats, ys = [], []
    try:
        for x, y in batches(data, batch_size, shuffle=False, device=device):
            feats.append(encoder.forward_features(transform(x, generator=g)).float())
            ys.append(y)
    finally:
        encoder.train(was_training)
    return torch.cat(feats), torch.cat(ys)


@torch.no_grad()
def knn_predict_unnormalized(train_features, train_labels, test_features, k: int = 20,
                             temperature: float = 0.07, stable: bool = False) -> torch.Tensor:
    """PITFALL: :func:`evaluate.knn_predict` without the L2 normalisation, so 'similarity'
    is a raw dot product: long feature vectors win every vote, whatever their direction.

    ``stable=False`` weights votes by exp(dot / t) as written, which overflows to inf for
    dot products above about 6 (t = 0.07), and then inf votes tie; ``stable=True``
    subtracts each row's largest dot product first, isolating the effect of the norms.
    (N_train, D), (N_train,), (N_test, D) -> predicted labels (N_test,)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    k = min(k, len(train_features))
    num_classes = int(train_labels.max()) + 1
    sim = test_features.float() @ train_features.float().T                     # (N_test, N_train)
    top_sim, top_idx = sim.topk(k, dim=1)
    if stable:
        top_sim = top_sim - top_sim[:, :1]
    votes = torch.zeros(len(sim), num_classes, device=sim.device)
    votes.scatter_add_(1, train_labels.to(sim.device)[top_idx], (top_sim / temperature).exp())
    return votes.argmax(1)


def state_fingerprint(module: nn.Module) -> dict:
    """A copy of every parameter and buffer, to show later that evaluation changed nothing."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def weights_digest(module: nn.Module, length: int = 10) -> str:
    """A short hash of every parameter and buffer: names a checkpoint after the weights it
    started from, so a later, different encoder never reuses it."""
    import hashlib

    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:length]


def changed_entries(module: nn.Module, fingerprint: dict) -> list:
    """Names of the parameters/buffers that differ from ``fingerprint``."""
    now = module.state_dict()
    return [k for k in fingerprint if not torch.equal(fingerprint[k], now[k].detach())]
