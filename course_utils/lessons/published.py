"""What a long run aims at: published figures of full recipes, and how far this run is from them.

Each notebook's last cell prints ``aim(key, run, dataset)``: the figure a full recipe
reached (with its source), what this run trained, and the ``COURSE_TIME_SCALE`` that would
give this machine as many epochs as the published run. The published recipes differ from
the course's in details (optimiser, batch size, augmentation strengths), so a figure is
the ceiling a long run approaches, not a number it must hit.
"""
from __future__ import annotations

import dataclasses
import math

from ..budget import time_scale

SOLO_LEARN = ("solo-learn (da Costa et al. 2022, JMLR 23(56)), the CIFAR-10 table of its README: "
              "ResNet-18, 1,000 epochs, linear probe")


@dataclasses.dataclass(frozen=True)
class Published:
    method: str
    value: float          # in ``unit``
    unit: str             # "%" (accuracy) or "bits/char"
    what: str             # the metric, e.g. "linear-probe accuracy"
    dataset: str          # the course's name of the data set it was measured on
    epochs: int | None    # of the published run (None: given in steps, not epochs)
    source: str


PUBLISHED = {
    "simclr": Published("SimCLR", 90.74, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "moco": Published("MoCo v2+", 92.94, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "byol": Published("BYOL", 92.58, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "simsiam": Published("SimSiam", 90.51, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "barlow_twins": Published("Barlow Twins", 92.10, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "vicreg": Published("VICReg", 92.07, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "swav": Published("SwAV", 89.17, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "dino": Published("DINO (ResNet-18)", 89.52, "%", "linear-probe accuracy", "cifar10", 1000, SOLO_LEARN),
    "mae": Published("MAE", 68.0, "%", "linear-probe accuracy (83.6% fine-tuned)", "imagenet", 1600,
                     "He et al. 2021 (arXiv:2111.06377): ViT-B/16 pre-trained on ImageNet-1k"),
    "clm": Published("character GPT", 1.4697 / math.log(2), "bits/char", "validation loss", "shakespeare", None,
                     "nanoGPT's README (Karpathy 2022): the shakespeare_char model, 6 layers of width 384, "
                     "context 256, validation loss 1.4697 nats/char after 5,000 steps on one A100"),
}


def _seconds_and_epochs(run) -> tuple[float, int]:
    """(training seconds, epochs trained) of a ``Result`` or of a history dict with "seconds"."""
    if isinstance(run, dict):
        return float(run["seconds"]), int(run["plan"]["epochs"])
    return float(run.seconds), int(run.epochs)


def aim(key: str, run, dataset: str, measured: float | None = None) -> str:
    """Three lines: the published figure for ``key`` (see ``PUBLISHED``), this run's
    figure beside it (``measured``, default the run's linear probe) when the data sets
    match, and the budget scale that would train as many epochs here."""
    if key not in PUBLISHED:
        raise ValueError(f"no published figure for {key!r}; choose one of {sorted(PUBLISHED)}")
    p = PUBLISHED[key]
    value = f"{p.value:.2f} {p.unit}" if p.unit != "%" else f"{p.value:.2f}%"
    lines = [f"{p.method}, published: {p.what} {value} on {p.dataset} ({p.source})."]
    seconds, epochs = _seconds_and_epochs(run)
    if measured is None and getattr(run, "metrics", None):
        measured = 100 * run.metrics["linear"]
    if dataset != p.dataset:
        lines.append(f"This run trained {epochs} epoch(s) on {dataset}: a different data set, so the figures do "
                     "not compare; the gpu profile's long runs are the ones that approach it.")
        return "\n".join(lines)
    here = "" if measured is None else f", reaching {measured:.2f}{'%' if p.unit == '%' else ' ' + p.unit}"
    lines.append(f"This run: {epochs} epoch(s) in {seconds / 60:.1f} min{here}.")
    if p.epochs:
        scale = time_scale() * p.epochs / max(epochs, 1)
        hours = seconds * p.epochs / max(epochs, 1) / 3600
        lines.append(f"{p.epochs:,} epochs at this speed: COURSE_TIME_SCALE={scale:.3g} (about {hours:.1f} h for "
                     "this run).")
    return "\n".join(lines)
