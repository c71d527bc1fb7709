"""The contract every method of the course keeps, stated once: ``Method``.

A method is an ``nn.Module`` that owns its networks and knows how to compute its loss on
one batch. ``course_utils.train.train`` does everything else (device, batches, optimiser,
schedule, mixed precision, checkpoints), so a new method is one small file:

    class MyMethod(Method):
        def __init__(self, encoder, transform=None, temperature: float = 0.5):
            super().__init__(encoder, transform)
            self.temperature = temperature

        def training_step(self, batch):
            x, y = batch                       # images (B, C, H, W), labels (B,) (unused in SSL)
            x1, x2 = self.views(x)             # two augmented views
            loss = ...
            return {"loss": loss, "something_to_watch": ...}   # or just the loss

What every method has:

* ``encoder``: the backbone, with ``forward_features(x) -> (B, D)`` and ``num_features``
  (D). Evaluation uses it alone, without any head.
* ``transform``: how a view is made from a batch, given one way for every method: one
  callable ``x -> view`` (applied once per view), or a tuple of callables, one per view
  (BYOL's two asymmetric augmentations). ``views(x)`` applies it.
* ``training_step(batch) -> loss`` or ``dict(loss=..., **logs)``: the logs (numbers or
  0-d tensors) go to the training history, nowhere else.
* ``after_step(step, total_steps)``: called after every optimiser step (momentum updates,
  schedules); does nothing by default.
* ``config``: a ``MethodConfig`` recorded from the constructor's arguments. It is saved
  with every checkpoint and every saved encoder, so ``load(path)`` rebuilds exactly what
  was saved, heads included, and a checkpoint of other settings is never mistaken for
  this one.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

METHODS: dict[str, type] = {}   # class name -> class: every Method subclass registers itself


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """What rebuilds a method: its class, its encoder's recipe, its other arguments.

    ``encoder`` is ``{"name": ..., "kwargs": {...}}`` as ``models.build_encoder`` takes it,
    or None for an encoder built by hand (then ``load`` cannot rebuild it)."""
    method: str
    encoder: dict | None
    kwargs: dict

    def describe(self) -> dict:
        """A flat, comparable and printable view: {"method": ..., "encoder": ..., arg: value}."""
        out = {"method": self.method, "encoder": describe_value(self.encoder)}
        return out | {k: describe_value(v) for k, v in self.kwargs.items()}

    def portable(self) -> "MethodConfig":
        """The config as it is saved: plain data (numbers, strings, tuples, ...) kept, anything
        else (a transform object, a function written in a notebook) replaced by its
        description, which ``build_method`` then leaves to the constructor's default (such
        arguments shape training, not the network that ``load`` rebuilds)."""
        return MethodConfig(self.method, self.encoder,
                            {k: v if _plain(v) else Unportable(describe_value(v)) for k, v in self.kwargs.items()})


@dataclasses.dataclass(frozen=True)
class Unportable:
    """A saved config's stand-in for an argument that is not plain data."""
    description: str

    def __repr__(self) -> str:
        return self.description


def _plain(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def describe_value(value: Any) -> str:
    """A stable text for a setting, so that two runs can be compared: ``repr`` for data,
    the qualified name and a hash of the code for functions (their ``repr`` holds a memory
    address that changes on every run), the class and config for nested methods."""
    if isinstance(value, Method):
        return f"{type(value).__name__}({value.config.describe()})"
    if inspect.isfunction(value) or inspect.ismethod(value):
        code = getattr(value, "__code__", None)
        digest = hashlib.sha1(code.co_code + repr(code.co_consts).encode()).hexdigest()[:8] if code else ""
        return f"<function {value.__module__}.{value.__qualname__} {digest}>"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(describe_value(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {describe_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Unportable):
        return value.description
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}:{hashlib.sha1(value.detach().cpu().numpy().tobytes()).hexdigest()[:8]}"
    text = repr(value)
    if " at 0x" in text:            # an object without its own repr: its class and attributes
        attrs = getattr(value, "__dict__", {})
        text = f"{type(value).__qualname__}({describe_value(attrs)})"
    return text


def encoder_spec(encoder: nn.Module) -> dict | None:
    """The recipe ``models.build_encoder`` stamped on an encoder, or None."""
    spec = getattr(encoder, "spec", None)
    return {"name": spec["name"], "kwargs": dict(spec["kwargs"])} if spec else None


class Method(nn.Module):
    """Base class of every method: see the module docstring for the contract."""

    def __init__(self, encoder: nn.Module, transform=None):
        super().__init__()
        if not hasattr(encoder, "forward_features") or not hasattr(encoder, "num_features"):
            raise ValueError(f"encoder must have forward_features(x) and num_features (every encoder in "
                             f"course_utils.models does); got {type(encoder).__name__}")
        self.encoder = encoder
        self.transform = transform

    def __init_subclass__(cls, **kwargs):
        """Register the class, and record its constructor's arguments as ``config``."""
        super().__init_subclass__(**kwargs)
        METHODS[cls.__name__] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__init__)

    # the contract -----------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The representation h = encoder.forward_features(x), (B, D): what evaluation uses.
        Heads and targets have named methods of their own (``project``, ...)."""
        return self.encoder.forward_features(x)

    def training_step(self, batch) -> torch.Tensor | dict:
        """The loss on one batch ``(x, y)``; or ``{"loss": loss, **logs}``."""
        raise NotImplementedError(f"{type(self).__name__} must define training_step(batch)")

    def after_step(self, step: int, total_steps: int) -> None:
        """Called by ``train`` after optimiser step ``step`` (0-based) of ``total_steps``."""

    def views(self, x: torch.Tensor, n: int = 2) -> list[torch.Tensor]:
        """``n`` random views of the batch x (B, C, H, W), each (B, C, H, W).

        A tuple ``transform`` gives one view per entry (``n`` is then its length). On CUDA
        the views come in channels-last memory order (faster convolutions on tensor cores)."""
        if self.transform is None:
            raise ValueError(f"{type(self).__name__} was built without a transform; pass transform=")
        transforms = self.transform if isinstance(self.transform, (tuple, list)) else [self.transform] * n
        return [channels_last(t(x)) for t in transforms]

    # saving and rebuilding ----------------------------------------------------------------

    def save(self, path, **info) -> Path:
        """Write the whole method (config and weights) so that ``load(path)`` rebuilds it.
        ``info`` keeps anything else worth knowing (training seconds, accuracies)."""
        from ..train import save_checkpoint  # atomic write

        if self.config.encoder is None:
            raise ValueError(f"this {type(self).__name__}'s encoder was built by hand ({type(self.encoder).__name__}(...)), "
                             "so load() could not rebuild it; build it with course_utils.models.build_encoder(name, "
                             "**kwargs) and wrap it (if at all) only after loading")
        save_checkpoint(path, {"config": self.config.portable(), "state_dict": self.state_dict(), "info": info})
        return Path(path)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) in channels-last memory order on CUDA; anything else unchanged."""
    if x.is_cuda and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _recording(init: Callable) -> Callable:
    """Wrap a subclass's ``__init__`` so that, for the class actually built, the bound
    arguments (defaults filled in) become ``self.config`` once construction has finished."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if type(self).__init__ is wrapped:          # the outermost class, not a super() call
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop("self")
            extra = arguments.pop("kwargs", {}) if _has_var_keyword(signature) else {}
            arguments.pop("encoder", None)
            spec = encoder_spec(self.encoder)       # the encoder it has, however it was built
            object.__setattr__(self, "config", MethodConfig(type(self).__name__, spec, arguments | extra))
    return wrapped


def _has_var_keyword(signature: inspect.Signature) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())


# the modules whose methods ``load`` can rebuild (a class registers itself when imported)
METHOD_MODULES = ("course_utils.methods.supervised", "course_utils.methods.pretext",
                  "course_utils.methods.colourisation", "course_utils.methods.simclr",
                  "course_utils.methods.moco", "course_utils.methods.byol", "course_utils.methods.mae",
                  "course_utils.language", "course_utils.methods.barlow_twins", "course_utils.methods.vicreg",
                  "course_utils.methods.swav", "course_utils.methods.dino", "course_utils.methods.cmc",
                  "course_utils.methods.clip", "course_utils.methods.cpc")


def _import_course_methods() -> None:
    import importlib

    for name in METHOD_MODULES:
        importlib.import_module(name)


def build_method(config: MethodConfig) -> Method:
    """A fresh (untrained) method from its config."""
    from ..models import build_encoder

    if config.method not in METHODS:
        _import_course_methods()
    if config.method not in METHODS:
        raise ValueError(f"unknown method {config.method!r}; known: {sorted(METHODS)}")
    if config.encoder is None:
        raise ValueError(f"the {config.method} was saved with an encoder built by hand, so it cannot be "
                         "rebuilt; build encoders with course_utils.models.build_encoder")
    encoder = build_encoder(config.encoder["name"], **config.encoder["kwargs"])
    kwargs = {k: v for k, v in config.kwargs.items() if not isinstance(v, Unportable)}
    return METHODS[config.method](encoder, **kwargs)


def load(path, device=None) -> Method:
    """Rebuild a method saved by ``Method.save`` or a checkpoint written by ``train``,
    weights included, in eval mode on ``device`` (default: the CPU). What ``save`` kept
    beside the weights (seconds, accuracies) is in ``method.info``."""
    from ..train import read_checkpoint

    state = read_checkpoint(path, what="saved method")
    config = state.get("config")
    if isinstance(config, dict):      # a checkpoint written by train: the method's config inside
        config = config.get("method")
    if not isinstance(config, MethodConfig):
        raise ValueError(f"{path} holds no method config (it was written by an older version of the "
                         "course); delete it and run the notebook that makes it again")
    method = build_method(config)
    method.load_state_dict(state["state_dict"] if "state_dict" in state else state["model"])
    method.info = dict(state.get("info", {}))
    return method.to(device or "cpu").eval()
