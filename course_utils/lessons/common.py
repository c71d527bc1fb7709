"""What every training notebook does around its method, written once: ``prepare`` and ``run``.

    lesson = prepare(settings, device, notebook="03")      # data, baselines, encoders
    model = SimCLR(lesson.new_encoder(), transform=..., temperature=settings.temperature)
    result = lesson.run("simclr", model)                   # train (or resume), time, evaluate
    result.history, result.seconds, result.metrics         # {"knn": ..., "linear": ...}
    result.save("simclr")                                  # for notebook 08: runs_dir()/simclr_method.pt

``settings`` is a notebook's settings cell (``runtime.choose_settings``); ``run`` takes
its defaults from it: ``epochs``, ``batch_size``, ``lr``, ``eval_every``, ``probe_epochs``.

Each run's checkpoint is named after the run and a digest of every setting that shapes it
(the method's config, the data, the training settings): change a setting and rerun the
cell, and a new run trains in a file of its own, while the old one stays on disk for when
the setting is changed back.

Data flow of a notebook::

    settings --prepare--> Lesson(train_data, test_data, results = baselines)
                             | new_encoder()
                             v
               method = Method(encoder, ...)
                             | lesson.run(name, method)
                             v
      train(method, data, checkpoint=runs_dir()/"NN_name_digest.pt") -> history
                             | evaluate the frozen encoder (kNN, linear probe)
                             v
               Result(method, history, seconds, metrics) --save--> runs_dir()/"key_method.pt"
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from .. import data as data_lib
from .. import evaluate, models, runtime
from ..budget import time_scale
from ..runtime import Timer, get_profile, runs_dir
from ..train import data_fingerprint, train


@dataclasses.dataclass
class Result:
    """One training run: the trained ``method``, its ``history`` (see ``train``), the
    seconds its training took (over all sessions, if it was resumed), the frozen
    encoder's ``metrics`` (None if not evaluated) and the ``checkpoint`` file."""
    name: str
    method: nn.Module
    history: dict
    seconds: float
    metrics: dict | None
    checkpoint: Path

    @property
    def epochs(self) -> int:
        """The epochs the run trained: fixed, or what its budget fitted (``history["plan"]``)."""
        return self.history["plan"]["epochs"]

    def save(self, key: str, **info) -> Path:
        """Save the method for later notebooks (08 compares them all) as
        ``runs_dir()/f"{key}_method.pt"``, with its training time and metrics."""
        return self.method.save(runs_dir() / f"{key}_method.pt", train_seconds=self.seconds,
                                **(self.metrics or {}), **info)


class Lesson:
    """A notebook's data and shared glue; build it with ``prepare``."""

    def __init__(self, settings, device: torch.device, notebook: str, train_data=None, test_data=None):
        """``train_data``/``test_data``: labelled images (``ImageData``), or None for a
        notebook whose data are not images (07: text); then every run names its data."""
        self.settings, self.device, self.notebook = settings, device, notebook
        self.train_data, self.test_data = train_data, test_data
        images = getattr(train_data, "images", None)
        self.image_size = None if images is None else images.shape[-1]
        self.num_classes = len(train_data.classes) if hasattr(train_data, "classes") else None
        self.chance = 1 / self.num_classes if self.num_classes else None
        self.results: dict[str, dict] = {}
        self.times: list[dict] = []
        self.started = runtime.STARTED or time.perf_counter()   # the notebook's setup() cell, if run
        self._knn_sets = None

    # encoders and evaluation ------------------------------------------------------------

    def new_encoder(self, name: str | None = None, **kwargs) -> nn.Module:
        """A fresh encoder on the device: ``settings.encoder`` with ``settings.encoder_kwargs``
        unless ``name``/``kwargs`` say otherwise (channels-last weights on CUDA)."""
        if name is None:
            name, kwargs = self.settings.encoder, {**self.settings.encoder_kwargs, **kwargs}
        encoder = models.build_encoder(name, **kwargs)
        if self.device.type == "cuda" and name != "vit_tiny":
            return encoder.to(self.device, memory_format=torch.channels_last)
        return encoder.to(self.device)

    def evaluate(self, encoder: nn.Module) -> dict:
        """kNN and linear-probe test accuracy of a frozen encoder on the lesson's data."""
        probe_epochs = getattr(self.settings, "probe_epochs", 100)
        return evaluate.evaluate_encoder(encoder, self.train_data, self.test_data, probe_epochs=probe_epochs)

    def knn_monitor(self, train_n: int = 5000, test_n: int = 1000) -> Callable:
        """An ``eval_fn`` for ``train``: kNN accuracy on (at most) ``train_n``/``test_n`` images."""
        if self._knn_sets is None:
            self._knn_sets = (self.train_data.subset(min(len(self.train_data), train_n)),
                              self.test_data.subset(min(len(self.test_data), test_n)))
        return evaluate.knn_monitor(*self._knn_sets)

    def baselines(self, random_encoder: bool = True) -> dict:
        """``results`` with notebook 00's rows (if measured on this data) or raw pixels measured
        here, and a random encoder of this notebook's architecture (measured here)."""
        self.results.update(evaluate.load_baselines(self.train_data, self.test_data))
        self.results.pop("random encoder (notebook 00)", None)       # measured below, with this encoder
        if "raw pixels (notebook 00)" not in self.results:
            self.results["raw pixels"] = self.evaluate(models.PixelEncoder(image_size=self.image_size))
        if random_encoder:
            torch.manual_seed(0)
            self.results["random encoder"] = self.evaluate(self.new_encoder())
        return self.results

    # training ------------------------------------------------------------------------------

    def checkpoint(self, name: str, method: nn.Module, data, **train_settings) -> Path:
        """``runs_dir()/f"{notebook}_{name}_{digest}.pt"``: the digest covers the method's
        config, the data and the training settings, so other settings get another file."""
        config = method.config.describe() if hasattr(method, "config") else {"method": type(method).__name__}
        text = repr(sorted(config.items())) + repr(sorted(data_fingerprint(data).items()))
        text += repr(sorted((k, repr(v)) for k, v in train_settings.items()))
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        return runs_dir() / f"{self.notebook}_{name}_{digest}.pt"

    def run(self, name: str, method: nn.Module, data=None, *, epochs: int | None = None,
            minutes: float | None = None, batch_size: int | None = None, lr: float | None = None,
            eval_every: int | None = None, monitor: Callable | bool | None = True, evaluate: bool = True,
            progress: bool = True, quiet: bool = False, **train_kwargs) -> Result:
        """Train ``method`` on ``data`` (default: the lesson's training set), or load the run if
        it finished before; then evaluate its frozen encoder (``evaluate=True``).

        How long: ``minutes`` (a time budget, see ``train``) or ``epochs``; if neither is
        given, the settings' ``minutes`` (when not None) or else their ``epochs``. Other
        defaults come from the settings too: ``batch_size``, ``lr``, and ``eval_every`` (on
        the full training set; every epoch on other data). ``monitor``: True watches the kNN
        accuracy during training, a function is an ``eval_fn`` of your own, None or False
        watches nothing. ``train_kwargs`` go to ``train``. Every run joins ``time_table()``."""
        s = self.settings
        data = self.train_data if data is None else data
        if data is None:
            raise ValueError(f"lesson.run({name!r}, ...) needs data: this lesson was built without a training set")
        on_train = data is self.train_data
        if minutes is None and epochs is None:
            minutes = getattr(s, "minutes", None)
            epochs = s.epochs if minutes is None else None
        length = {"epochs": epochs} if minutes is None else {"minutes": minutes, "time_scale": time_scale()}
        settings = dict(batch_size=batch_size if batch_size is not None else s.batch_size,
                        lr=lr if lr is not None else s.lr, **train_kwargs)
        if monitor is True:
            monitor = self.knn_monitor()
        if eval_every is None:
            eval_every = getattr(s, "eval_every", 1) if on_train else 1
        path = self.checkpoint(name, method, data, **length, **settings)
        with Timer() as timer:
            history = train(method, data, device=self.device, checkpoint=path, eval_fn=monitor or None,
                            eval_every=eval_every, progress=progress,
                            epochs=epochs, minutes=minutes, desc=name, **settings)
        seconds = sum(history["epoch_time"])
        with Timer() as eval_timer:
            metrics = self.evaluate(method.encoder) if evaluate else None
        plan = history["plan"]
        self.record(name, timer.seconds, eval_timer.seconds if evaluate else 0.0, epochs=plan["epochs"],
                    budget_s=plan.get("budget_s"), planned_s=plan.get("planned_s"))
        if not quiet:
            scores = f" | kNN {metrics['knn']:.3f}, linear {metrics['linear']:.3f}" if metrics else ""
            print(f"{name}: {plan['epochs']} epoch(s) of training in {seconds:.0f} s (this cell: "
                  f"{timer.seconds + eval_timer.seconds:.0f} s){scores}")
            if metrics and self.results:
                print(self.margins(name, metrics))
        return Result(name, method, history, seconds, metrics, path)

    def margins(self, name: str, metrics: dict) -> str:
        """How far ``metrics`` are above each baseline (raw pixels, a random encoder), in points."""
        rows = [f"  {name} minus {base}: kNN {100 * (metrics['knn'] - r['knn']):+.1f} points, linear "
                f"{100 * (metrics['linear'] - r['linear']):+.1f}" for base, r in self.results.items()
                if base.startswith(("raw pixels", "random"))]
        return "\n".join(rows)

    def record(self, run: str, train_s: float = 0.0, eval_s: float = 0.0, epochs: int | None = None,
               budget_s: float | None = None, planned_s: float | None = None) -> None:
        """Add a row to ``time_table()`` for work done outside ``run`` (a probe, a fine-tune)."""
        self.times.append({"run": run, "budget_s": budget_s, "planned_s": planned_s, "train_s": train_s,
                           "epochs": epochs, "eval_s": eval_s})

    def time_table(self) -> str:
        """The notebook's runs: budget, planned and spent seconds (in this session: a run
        loaded from its checkpoint costs about nothing), and the evaluations, with the whole
        notebook's time since ``setup()``. The end of every notebook prints it."""
        rows = [f"{'run':<28}{'epochs':>7}{'budget s':>10}{'planned s':>11}{'trained s':>11}{'evaluated s':>13}"]
        for t in self.times:
            budget = "-" if t["budget_s"] is None else f"{t['budget_s']:.0f}"
            planned = "-" if t["planned_s"] is None else f"{t['planned_s']:.0f}"
            epochs = "-" if t["epochs"] is None else t["epochs"]
            rows.append(f"{t['run'][:27]:<28}{epochs:>7}{budget:>10}{planned:>11}{t['train_s']:>11.0f}"
                        f"{t['eval_s']:>13.0f}")
        total, notebook = sum(t["train_s"] + t["eval_s"] for t in self.times), time.perf_counter() - self.started
        rows.append(f"runs together: {total:.0f} s; the notebook since setup(): {notebook:.0f} s "
                    f"(profile {get_profile()}, COURSE_TIME_SCALE {time_scale():g})")
        text = "\n".join(rows)
        print(text)
        return text


def prepare(settings, device: torch.device, notebook: str, baselines: bool = True,
            random_encoder: bool = True) -> Lesson:
    """Load the data a notebook's ``settings`` name (``dataset``, ``n_train``, ``n_test``;
    downloaded in the ``gpu`` profile), put it on the GPU if there is one, and measure the
    baselines (``Lesson.baselines``) unless ``baselines=False``."""
    download = get_profile() == "gpu"
    train_data = data_lib.load_images(settings.dataset, "train", n=settings.n_train, download=download)
    test_data = data_lib.load_images(settings.dataset, "test", n=settings.n_test, download=download)
    if device.type == "cuda":
        train_data, test_data = train_data.to(device), test_data.to(device)
    lesson = Lesson(settings, device, notebook, train_data, test_data)
    if baselines:
        lesson.baselines(random_encoder)
    return lesson


def noise_points(accuracy: float, n_test: int) -> float:
    """Two standard errors, in points, of the difference between two accuracies near
    ``accuracy`` measured on the same ``n_test`` test images (binomial, as if independent):
    differences smaller than this are within what another seed or test split could change."""
    if n_test < 1:
        raise ValueError(f"n_test must be a positive number of test images, got {n_test}")
    p = min(max(accuracy, 0.0), 1.0)
    return 100 * 2 * math.sqrt(2 * p * (1 - p) / n_test)


def verdict(name_a: str, a: float, name_b: str, b: float, what: str, n_test: int) -> str:
    """One sentence from two measured accuracies: "A beats B by x points of <what>", "A is
    below B by x points", or "A and B are within the noise (±y points for n test images)";
    the noise is ``noise_points`` at their mean."""
    diff, noise = 100 * (a - b), noise_points((a + b) / 2, n_test)
    if abs(diff) < noise:
        return (f"{name_a} and {name_b} are within the noise on {what} ({diff:+.1f} points; ±{noise:.1f} "
                f"for {n_test} test images)")
    word = "beats" if diff > 0 else "is below"
    return f"{name_a} {word} {name_b} by {abs(diff):.1f} points of {what} (noise ±{noise:.1f})"
