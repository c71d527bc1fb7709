"""Evaluation protocols for notebook 08, and the pitfalls that make frozen evaluation lie.

Protocols (``evaluate`` has the two basic ones, kNN and the linear probe):

* :func:`knn_k_curve`: the kNN accuracy for several k;
* :func:`fine_tune`: train the whole encoder and a linear classifier with labels;
* :func:`label_fraction_indices` and :func:`few_label_curve`: the same protocols with 1 %,
  10 %, ... of the labels, sampled per class.

Pitfalls, each a function that does the wrong thing on purpose so its effect can be
measured: :func:`features_bn_train_mode`, :func:`augmented_features`,
:class:`ProjectedEncoder` (features after the projection head), :func:`knn_predict_unnormalized`.

Also: :func:`tsne_embedding` and :func:`plot_feature_maps` (2-D maps of the features), and
:func:`load_or_train` (a saved encoder of notebooks 00-06, or a quick stand-in).

Shape legend: N images, D feature width, C/H/W image.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import augment, evaluate, models
from .data import batches
from .methods.base import Method, load
from .methods.heads import MLPHead, ProjectedEncoder
from .runtime import Timer, runs_dir

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


class FineTune(Method):
    """Encoder + linear classifier, all trained with cross-entropy on lightly augmented
    images (random crop and flip). The encoder passed in is copied, never changed."""

    def __init__(self, encoder: nn.Module, num_classes: int, crop_scale=(0.5, 1.0)):
        super().__init__(copy.deepcopy(encoder))
        for p in self.encoder.parameters():
            p.requires_grad_(True)
        self.classifier = nn.Linear(self.encoder.num_features, num_classes)
        self.crop_scale = crop_scale

    def classify(self, x):  # (B, C, H, W) -> logits (B, classes)
        return self.classifier(self.encoder.forward_features(x))

    def training_step(self, batch):
        x, y = batch
        if self.crop_scale is not None:
            x = augment.random_resized_crop(x, x.shape[-1], scale=self.crop_scale, flip_p=0.5)
        return F.cross_entropy(self.classify(x), y)


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


def fine_tune(encoder: nn.Module, train_data, test_data, *, epochs: int, lr: float = 1e-3,
              batch_size: int = 128, fraction: float = 1.0, device=None, seed: int = 0,
              checkpoint=None, progress: bool = False) -> dict:
    """Fine-tune a copy of ``encoder`` with a new linear classifier on ``fraction`` of the
    labels (class-balanced). Returns ``{"accuracy", "seconds", "n_labels", "model"}``."""
    from .train import train

    if not hasattr(encoder, "forward_features"):
        raise ValueError(f"{type(encoder).__name__} has no forward_features(x); pass an encoder")
    subset = train_data.subset(label_fraction_indices(train_data.labels, fraction, seed))
    torch.manual_seed(seed)
    model = FineTune(encoder, len(train_data.classes))
    history = train(model, subset, epochs=epochs, batch_size=min(batch_size, len(subset)), lr=lr,
                    device=device, checkpoint=checkpoint, seed=seed, progress=progress)
    return {"accuracy": classifier_accuracy(model, test_data), "seconds": sum(history["epoch_time"]),
            "n_labels": len(subset), "model": model}


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
    images, labels = (data.images, data.labels) if hasattr(data, "images") else data
    if sort_by_label:
        order = torch.argsort(labels.cpu(), stable=True).to(labels.device)
        images, labels = images[order], labels[order]
    device = device or evaluate._module_device(enc)
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
    device = torch.device(device) if device is not None else evaluate._module_device(encoder)
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


# PITFALL: an encoder whose ``forward_features`` is the projection head's output z = g(f(x))
# instead of the representation h = f(x) (SimCLR, arXiv:2002.05709 Sec. 4.2): the one
# ``ProjectedEncoder`` of methods.heads, imported above.


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


# --------------------------------------------------------------------------------------
# 2-D maps of the features


def tsne_embedding(features: torch.Tensor, perplexity: float = 30.0, seed: int = 0):
    """t-SNE (van der Maaten & Hinton 2008) of features (N, D) -> numpy array (N, 2), via
    scikit-learn, on L2-normalised features (so the map shows the cosine geometry that kNN
    uses), with PCA initialisation for a reproducible layout."""
    from sklearn.manifold import TSNE

    if features.dim() != 2 or len(features) < 5:
        raise ValueError(f"features must have shape (N, D) with N >= 5, got {tuple(features.shape)}")
    perplexity = min(perplexity, (len(features) - 1) / 3)
    x = F.normalize(features.float(), dim=1).cpu().numpy()
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(x)


def plot_feature_maps(maps: dict, classes, title: str = "t-SNE of the frozen features", size: float = 3.2):
    """Side-by-side scatter plots: ``maps = {name: (xy (N, 2), labels (N,))}``, one colour per class."""
    import matplotlib.pyplot as plt

    if not maps:
        raise ValueError("maps is empty: pass {name: (xy, labels)}")
    fig, axes = plt.subplots(1, len(maps), figsize=(size * len(maps), size + 0.8), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, (xy, labels)) in zip(axes[0], maps.items()):
        labels = torch.as_tensor(labels).cpu()
        for c in range(len(classes)):
            pts = xy[(labels == c).numpy()]
            ax.scatter(pts[:, 0], pts[:, 1], s=4, color=cmap(c % 10), label=classes[c])
        ax.set(title=name, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    axes[0, -1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, markerscale=3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(curves: dict, title: str, xlabel: str, ylabel: str = "test accuracy", logx: bool = True,
                chance=None):
    """One line per method: ``curves = {name: {x: accuracy}}`` (few-label curves, k curves)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, curve in curves.items():
        xs = sorted(curve)
        ax.plot(xs, [curve[x] for x in xs], marker="o", label=name)
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", lw=1, label="chance")
    if logx:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------
# the encoders of the course: saved by notebooks 00-06, or trained here as stand-ins

METHODS = ("random", "supervised", "rotation", "jigsaw", "colorization", "context", "simclr", "moco",
           "byol", "mae")
LABELS = {"random": "random encoder", "supervised": "supervised", "rotation": "rotation", "jigsaw": "jigsaw",
          "colorization": "colourisation", "context": "context", "simclr": "SimCLR", "moco": "MoCo",
          "byol": "BYOL", "mae": "MAE"}
NOTEBOOK = {"supervised": "00", "rotation": "01", "jigsaw": "01", "colorization": "01", "context": "01",
            "simclr": "03", "moco": "04", "byol": "05", "mae": "06"}


@dataclass
class Entry:
    """One encoder to compare: ``encoder`` (eval mode, ready for ``forward_features``),
    ``info`` (what its notebook saved), ``source`` ("saved", "stand-in" or "untrained")."""
    name: str
    encoder: nn.Module
    info: dict = field(default_factory=dict)
    source: str = "saved"
    method: nn.Module | None = None  # the whole method of a stand-in (heads included)

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    @property
    def train_seconds(self) -> float | None:
        """Seconds its training took, as recorded when it was trained; None if not recorded."""
        seconds = self.info.get("train_seconds")
        return None if seconds is None else float(seconds)


def encoder_path(name: str, directory=None) -> Path:
    """Where notebook NN saves the method of ``name`` (encoder, heads and the metrics it
    measured, by ``Method.save``): ``runs_dir()/"{name}_method.pt"``."""
    if name not in METHODS or name == "random":
        raise ValueError(f"name must be one of {METHODS[1:]}, got {name!r}")
    return Path(directory or runs_dir()) / f"{name}_method.pt"


def wrap_for_evaluation(encoder: nn.Module, info: dict) -> nn.Module:
    """An encoder trained on luminance only (colourisation) is evaluated on luminance."""
    if info.get("input") == "luminance":
        from .methods.pretext import GrayscaleInput

        return GrayscaleInput(encoder).eval()
    return encoder


def _shapes_like(image_size: int):
    """The augmentation of the contrastive stand-ins: the shapes preset on 32-pixel shapes
    data, SimCLR's pipeline otherwise."""
    from .methods import simclr

    return simclr.shapes_augment(image_size)


def build_stand_in(name: str, encoder_name: str, encoder_kwargs: dict, num_classes: int, image_size: int = 32,
                   vit_kwargs: dict | None = None, augment_preset: str = "shapes",
                   method_kwargs: dict | None = None):
    """A fresh method object for ``name`` around a new encoder, or None (with a note) when
    its module is not available. Returns (method, encoder_name, encoder_kwargs) or None.

    ``method_kwargs``: per method name, the keyword arguments of its class, e.g.
    ``{"jigsaw": dict(grid=2, num_permutations=24, tile_size=13)}`` to match notebook 01's
    settings; a method not named there gets the defaults of ``_make_method``."""

    unknown = sorted(set(method_kwargs or {}) - set(METHODS))
    if unknown:
        raise ValueError(f"method_kwargs has unknown method names {unknown}; use names from {METHODS}")
    transform = _shapes_like(image_size) if augment_preset == "shapes" else augment.simclr_augment(image_size)
    if name == "mae":
        kwargs = dict(vit_kwargs or {})
        kwargs.setdefault("image_size", image_size)
        encoder_name, encoder_kwargs = "vit_tiny", kwargs
    encoder = models.build_encoder(encoder_name, **encoder_kwargs)
    try:
        method = _make_method(name, encoder, num_classes, transform, augment_preset, image_size,
                              (method_kwargs or {}).get(name))
    except ImportError as err:
        print(f"note: {LABELS[name]} is skipped: its module is not available ({err})")
        return None
    return method, encoder_name, encoder_kwargs


def _make_method(name, encoder, num_classes, transform, augment_preset, image_size, kwargs=None):
    from .methods import pretext

    if kwargs is not None and name in ("rotation", "jigsaw", "context", "colorization"):
        cls = {"rotation": pretext.RotationPrediction, "jigsaw": pretext.Jigsaw,
               "context": pretext.ContextPrediction, "colorization": pretext.Colorization}[name]
        return cls(encoder, **kwargs)
    if kwargs is not None:
        raise ValueError(f"method_kwargs can set the pretext tasks (rotation, jigsaw, context, colorization), "
                         f"not {name!r}")
    if name == "supervised":
        from .methods.supervised import Supervised
        return Supervised(encoder, num_classes)
    if name == "rotation":
        return pretext.RotationPrediction(encoder)
    if name in ("jigsaw", "context"):
        # notebook 01's tiles: small images are enlarged 2x for context prediction and cut
        # 2x2 for jigsaw (3x3 tiles of a 32-pixel image are too small to learn much from)
        small = image_size <= 48
        if name == "jigsaw":
            grid = 2 if small else 3
            tile = round(0.8 * (image_size // grid))
            return pretext.Jigsaw(encoder, num_permutations=24 if small else 100, grid=grid, tile_size=tile)
        upscale = 2 if small else 1
        return pretext.ContextPrediction(encoder, tile_size=max(8, int(0.78 * (image_size * upscale // 3))),
                                         upscale=upscale)
    if name == "colorization":
        return pretext.Colorization(encoder)
    if name == "simclr":
        from .methods.simclr import SimCLR
        return SimCLR(encoder, transform=transform, temperature=0.2)
    if name == "moco":
        from .methods.moco import MoCo
        return MoCo(encoder, queue_size=2048, transform=transform)
    if name == "byol":
        from .methods.byol import BYOL
        return BYOL(encoder, proj_hidden_dim=512, proj_dim=128, pred_hidden_dim=512,
                    transform=(transform, transform))
    if name == "mae":
        from .methods.mae import MAE
        return MAE(encoder)
    raise ValueError(f"unknown method {name!r}; choose one of {METHODS}")


def load_or_train(name: str, train_data, *, encoder_name: str, encoder_kwargs: dict, epochs: int,
                  batch_size: int = 256, lr: float = 2e-3, device=None, vit_kwargs: dict | None = None,
                  augment_preset: str = "shapes", method_kwargs: dict | None = None, directory=None,
                  seed: int = 0) -> Entry | None:
    """The encoder of ``name``: the one its notebook saved (``encoder_path``) if it exists,
    else a stand-in trained here for ``epochs`` (checkpointed as ``08_standin_{name}.pt``,
    so a re-run loads it). ``name="random"`` gives a freshly initialised encoder. Returns
    None when a stand-in's module is not available. ``method_kwargs``: see ``build_stand_in``."""
    device = torch.device(device) if device is not None else evaluate._module_device(nn.Linear(1, 1))
    directory = Path(directory or runs_dir())
    if name == "random":
        torch.manual_seed(seed)
        encoder = models.build_encoder(encoder_name, **encoder_kwargs).to(device).eval()
        return Entry(name, encoder, {"method": "random", "train_seconds": 0.0}, "untrained")
    path = encoder_path(name, directory)
    if path.exists():
        method = load(path, device)
        return Entry(name, wrap_for_evaluation(method.encoder, method.info), method.info, "saved", method)
    torch.manual_seed(seed)
    built = build_stand_in(name, encoder_name, encoder_kwargs, len(train_data.classes),
                           train_data.images.shape[-1], vit_kwargs, augment_preset, method_kwargs)
    if built is None:
        return None
    method, enc_name, enc_kwargs = built
    from .train import train

    print(f"{LABELS[name]}: no saved encoder at {path} (run notebook {NOTEBOOK[name]} to make one); "
          f"training a stand-in for {epochs} epoch(s)")
    with Timer() as timer:
        history = train(method, train_data, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                        checkpoint=directory / f"08_standin_{name}.pt", seed=seed, progress=False)
    info = {"method": f"{LABELS[name]} (stand-in)", "train_seconds": sum(history["epoch_time"]),
            "seconds_this_run": timer.seconds, "input": "luminance" if name == "colorization" else "rgb"}
    encoder = method.encoder.eval()
    return Entry(name, wrap_for_evaluation(encoder, info), info, "stand-in", method)


def projection_head_from_checkpoint(checkpoint, encoder: nn.Module) -> ProjectedEncoder | None:
    """The encoder followed by the projection head stored in a training checkpoint (e.g.
    ``runs_dir()/"03_simclr.pt"``), or None if the file is missing, holds no MLP head, was
    written by an older version of the course, or was trained with other encoder weights
    than ``encoder``'s."""
    path = Path(checkpoint)
    if not path.exists():
        return None
    try:
        method = load(path)
    except ValueError:       # no config in it: an older or foreign file
        return None
    head = getattr(method, "projection_head", None)
    mine, theirs = encoder.state_dict(), method.encoder.state_dict()
    if not isinstance(head, MLPHead) or set(mine) != set(theirs) or any(
            not torch.equal(theirs[k], mine[k].cpu()) for k in mine):
        return None
    return ProjectedEncoder(encoder, head.to(evaluate._module_device(encoder))).eval()


def encoder_with_head(entry: Entry | None, checkpoint) -> ProjectedEncoder | None:
    """The encoder of ``entry`` followed by its projection head: the head of its method
    (saved or trained here), or the one in its notebook's training ``checkpoint``; None if neither."""
    if entry is None:
        return None
    head = getattr(entry.method, "projection_head", None)
    if isinstance(head, MLPHead):
        return ProjectedEncoder(entry.encoder, head.eval()).eval()
    return None if checkpoint is None else projection_head_from_checkpoint(checkpoint, entry.encoder)


def results_row(entry: Entry, metrics: dict) -> dict:
    """One row of the comparison table: the metrics plus the training time."""
    seconds = entry.train_seconds
    return {**metrics, "train s": None if seconds is None else round(seconds)}


def fractions_label(fraction: float) -> str:
    """0.1 -> "10%", 0.005 -> "0.5%": a fraction of the labels as a column name."""
    return f"{fraction:.0%}" if fraction >= 0.01 else f"{fraction:.1%}"

