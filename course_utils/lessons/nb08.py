"""Notebook 08's lesson code: the encoders of the course to compare (saved by notebooks
00-06 with ``Method.save``, or a quick stand-in trained here), 2-D maps of the features
and the curves of the protocols. The protocols and pitfalls themselves are in
``course_utils.protocols``.

Shape legend: N images, D feature width, C/H/W image.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment, evaluate, models
from ..methods.base import load
from ..methods.heads import MLPHead, ProjectedEncoder
from ..runtime import Timer, runs_dir


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

# The methods of the notebooks after this one: a row once their notebook has saved them (no
# stand-in is trained for them here), with the frozen-encoder protocols only.
LATER = ("barlow_twins", "vicreg", "swav", "dino", "cmc", "clip")
LABELS.update({"barlow_twins": "Barlow Twins", "vicreg": "VICReg", "swav": "SwAV", "dino": "DINO", "cmc": "CMC",
               "clip": "CLIP"})
NOTEBOOK.update({"barlow_twins": "09", "vicreg": "09", "swav": "10", "dino": "10", "cmc": "11", "clip": "11"})


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
    if name not in METHODS + LATER or name == "random":
        raise ValueError(f"name must be one of {METHODS[1:] + LATER}, got {name!r}")
    return Path(directory or runs_dir()) / f"{name}_method.pt"


def wrap_for_evaluation(encoder: nn.Module, info: dict) -> nn.Module:
    """An encoder trained on luminance only (colourisation) is evaluated on luminance."""
    if info.get("input") == "luminance":
        from ..methods.colourisation import GrayscaleInput

        return GrayscaleInput(encoder).eval()
    return encoder


def _shapes_like(image_size: int):
    """The augmentation of the contrastive stand-ins: the shapes preset on 32-pixel shapes
    data, SimCLR's pipeline otherwise."""
    from ..methods import simclr

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
    from ..methods import colourisation, pretext

    if kwargs is not None and name in ("rotation", "jigsaw", "context", "colorization"):
        cls = {"rotation": pretext.RotationPrediction, "jigsaw": pretext.Jigsaw,
               "context": pretext.ContextPrediction, "colorization": colourisation.Colorization}[name]
        return cls(encoder, **kwargs)
    if kwargs is not None:
        raise ValueError(f"method_kwargs can set the pretext tasks (rotation, jigsaw, context, colorization), "
                         f"not {name!r}")
    if name == "supervised":
        from ..methods.supervised import Supervised
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
        return colourisation.Colorization(encoder)
    if name == "simclr":
        from ..methods.simclr import SimCLR
        return SimCLR(encoder, transform=transform, temperature=0.2)
    if name == "moco":
        from ..methods.moco import MoCo
        return MoCo(encoder, queue_size=2048, transform=transform)
    if name == "byol":
        from ..methods.byol import BYOL
        return BYOL(encoder, proj_hidden_dim=512, proj_dim=128, pred_hidden_dim=512,
                    transform=(transform, transform))
    if name == "mae":
        from ..methods.mae import MAE
        return MAE(encoder)
    raise ValueError(f"unknown method {name!r}; choose one of {METHODS}")


def load_or_train(name: str, train_data, *, encoder_name: str, encoder_kwargs: dict,
                  epochs: int | None = None, minutes: float | None = None, batch_size: int = 256,
                  lr: float = 2e-3, device=None, vit_kwargs: dict | None = None,
                  augment_preset: str = "shapes", method_kwargs: dict | None = None, directory=None,
                  seed: int = 0) -> Entry | None:
    """The encoder of ``name``: the one its notebook saved (``encoder_path``) if it exists,
    else a stand-in trained here for ``epochs`` or ``minutes`` (checkpointed as ``08_standin_{name}.pt``,
    so a re-run loads it). ``name="random"`` gives a freshly initialised encoder. Returns
    None when a stand-in's module is not available. ``method_kwargs``: see ``build_stand_in``."""
    device = torch.device(device) if device is not None else evaluate.module_device(nn.Linear(1, 1))
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
    from ..train import train

    print(f"{LABELS[name]}: no saved encoder at {path} (run notebook {NOTEBOOK[name]} to make one); "
          f"training a stand-in for {f'{epochs} epoch(s)' if minutes is None else f'{minutes:g} min'}")
    with Timer() as timer:
        history = train(method, train_data, epochs=epochs, minutes=minutes, batch_size=batch_size, lr=lr,
                        device=device, checkpoint=directory / f"08_standin_{name}.pt", seed=seed, progress=False)
    info = {"method": f"{LABELS[name]} (stand-in)", "train_seconds": sum(history["epoch_time"]),
            "seconds_this_run": timer.seconds, "input": "luminance" if name == "colorization" else "rgb"}
    encoder = method.encoder.eval()
    return Entry(name, wrap_for_evaluation(encoder, info), info, "stand-in", method)


def load_saved(name: str, device=None, directory=None) -> Entry | None:
    """The encoder a later notebook saved for ``name`` (one of ``LATER``), or None if that
    notebook has not run yet in this profile. CMC's entry reads both of its views (the L and
    the ab encoder, features concatenated: ``cmc.JointEncoder``), as the CMC paper evaluates it;
    CLIP's is its image encoder."""
    if name not in LATER:
        raise ValueError(f"load_saved is for the methods of notebooks 09-11, {LATER}; got {name!r} "
                         "(use load_or_train for the others)")
    path = encoder_path(name, directory)
    if not path.exists():
        return None
    device = torch.device(device) if device is not None else evaluate.module_device(nn.Linear(1, 1))
    method = load(path, device)
    if name == "cmc":
        from ..methods.cmc import JointEncoder

        encoder = JointEncoder(method).eval()
    else:
        encoder = method.encoder.eval()
    return Entry(name, encoder, method.info, "saved", method)


def load_later(device=None, directory=None) -> dict:
    """{name: Entry} for each method of ``LATER`` that its notebook has saved (``load_saved``);
    prints one line for each that is not saved yet, naming the notebook to run."""
    found = {}
    for name in LATER:
        entry = load_saved(name, device=device, directory=directory)
        if entry is None:
            print(f"{LABELS[name]}: not saved yet in this profile (run notebook {NOTEBOOK[name]}, then this one)")
        else:
            found[name] = entry
    return found


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
    return ProjectedEncoder(encoder, head.to(evaluate.module_device(encoder))).eval()


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



# --------------------------------------------------------------------------------------
# what this run's table says, in sentences computed from it

SSL = ("rotation", "jigsaw", "colorization", "context", "simclr", "moco", "byol", "mae") + LATER


def verdicts(results: dict, entries: dict, n_test: int) -> list[str]:
    """The sentences section 7 reads off the table, each computed from ``results``
    ({name: {"kNN": ..., "linear": ..., "lin 10%": ..., "ft 10%": ...}}) with the noise of
    ``n_test`` test images (``common.verdict``): the best method under each protocol; the
    supervised encoder against the best self-supervised one; every self-supervised method
    against the random encoder; fine-tuning against the frozen probe with the same labels."""
    from .common import verdict

    label = {n: entries[n].label for n in results}
    lines = []
    protocols = [k for k in ("kNN", "linear", "lin 1%", "lin 10%", "ft 10%") if any(k in r for r in results.values())]
    for k in protocols:
        scored = {n: r[k] for n, r in results.items() if k in r}
        best = max(scored, key=scored.get)
        lines.append(f"best under {k}: {label[best]} ({scored[best]:.3f})")
    ssl = [n for n in results if n in SSL]
    if "supervised" in results and ssl:
        for k in ("kNN", "linear"):
            top = max(ssl, key=lambda n: results[n][k])
            lines.append(verdict("supervised", results["supervised"][k], f"the best SSL method ({label[top]})",
                                 results[top][k], f"{k} accuracy", n_test))
    if "random" in results:
        for n in ssl:
            lines.append(verdict(label[n], results[n]["linear"], "the random encoder", results["random"]["linear"],
                                 "linear-probe accuracy", n_test))
    for n, r in results.items():
        ft = next((k for k in r if k.startswith("ft ")), None)
        lin = ft and "lin " + ft[3:]
        if ft and lin in r:
            lines.append(verdict(f"{label[n]} fine-tuned", r[ft], "its frozen probe", r[lin],
                                 f"accuracy with {ft[3:]} of the labels", n_test))
    return lines
