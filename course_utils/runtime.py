"""Where the code runs and how much work it does: device, seeding, run profile, timers.

Every notebook starts with ``setup()``, which seeds everything, picks the device
(CUDA, then Apple's MPS, then the CPU), reads the run profile and prints all three.

Run profiles (environment variable ``COURSE_PROFILE``):

* ``fast``: every cell runs in seconds on tiny data; set by the test command.
* ``cpu``:  real learning in a few minutes on a laptop (default without a GPU).
* ``gpu``:  published-style runs on real data sets (default with CUDA or MPS).
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

PROFILES = ("fast", "cpu", "gpu")
STARTED: float | None = None      # time.perf_counter() at the last setup(): a notebook's clock


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then MPS (Apple GPUs), then the CPU.

    ``prefer`` ("cuda", "mps" or "cpu") forces a choice and fails clearly if it is absent.
    """
    if prefer is not None:
        if prefer not in ("cuda", "mps", "cpu"):
            raise ValueError(f"prefer must be 'cuda', 'mps', 'cpu' or None, got {prefer!r}")
        if prefer == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("prefer='cuda' but no CUDA GPU is visible; use get_device() to fall back")
        if prefer == "mps" and not _mps_available():
            raise RuntimeError("prefer='mps' but no Apple GPU (MPS) is visible; use get_device()")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def elapsed() -> float:
    """Seconds since the notebook's ``setup()`` cell (0 if it has not run)."""
    return 0.0 if STARTED is None else time.perf_counter() - STARTED


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices). Returns a CPU generator seeded alike.

    Call it once in the first cell of a notebook; the package never seeds at import time.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def rng_state() -> dict:
    """Every random stream the course draws from (torch, CUDA, NumPy, Python), to restore with
    ``set_rng_state``: a checkpoint keeps it so that a resumed run draws what it would have."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for a DataLoader: seeds NumPy and ``random`` in each worker."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def get_profile() -> str:
    """The run profile: ``COURSE_PROFILE`` if set, else ``gpu`` with CUDA/MPS, else ``cpu``."""
    value = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not value:
        return "gpu" if get_device().type in ("cuda", "mps") else "cpu"
    if value not in PROFILES:
        raise ValueError(
            f"COURSE_PROFILE={value!r} is not a run profile; use one of {PROFILES} "
            "(for example: export COURSE_PROFILE=cpu)"
        )
    return value


def choose_settings(per_profile: dict, profile: str | None = None, show: bool = True) -> SimpleNamespace:
    """Pick this profile's settings from ``{"fast": {...}, "cpu": {...}, "gpu": {...}}``.

    Returns a namespace (``settings.epochs``) and prints the table of all profiles, so a
    learner sees what the other profiles would do and can change a value by hand.
    With ``COURSE_SMOKE=1`` the ``gpu`` column is cut to a smoke run (``smoke.cut``).
    """
    from . import smoke

    profile = profile or get_profile()
    if smoke.enabled():
        per_profile = {**per_profile, "gpu": smoke.cut_settings(per_profile.get("gpu", {}))}
    missing = [p for p in PROFILES if p not in per_profile]
    if missing:
        raise ValueError(f"per_profile must have an entry for every profile; missing {missing}")
    keys = list(per_profile[profile])
    for p in PROFILES:
        if list(per_profile[p]) != keys:
            raise ValueError(f"profile {p!r} has keys {list(per_profile[p])}, expected {keys}")
    if show:
        width = max(len(k) for k in keys) + 2
        cols = [max(12, *(len(repr(per_profile[p][k])) + 2 for k in keys)) for p in PROFILES]
        head = "setting".ljust(width) + "".join(
            (p + (" *" if p == profile else "")).ljust(c) for p, c in zip(PROFILES, cols))
        print(head)
        for k in keys:
            print(k.ljust(width) + "".join(repr(per_profile[p][k]).ljust(c) for p, c in zip(PROFILES, cols)))
        print(f"(* = the profile in use: {profile})")
        if smoke.enabled():
            print("COURSE_SMOKE=1: the gpu column is cut to a smoke run (its figures mean nothing)")
    return SimpleNamespace(profile=profile, **per_profile[profile])


@dataclass
class Setup:
    device: torch.device
    profile: str
    seed: int

    def __iter__(self):  # so that ``device, profile = setup()`` works
        return iter((self.device, self.profile))


def setup(seed: int = 0, quiet: bool = False) -> Setup:
    """The first cell of every notebook: seed, choose device and profile, print versions,
    and start the notebook's clock (``STARTED``, read by the time table at its end)."""
    global STARTED
    STARTED = time.perf_counter()
    seed_everything(seed)
    device, profile = get_device(), get_profile()
    if not quiet:
        print(versions_report(device, profile, seed))
    return Setup(device=device, profile=profile, seed=seed)


def versions_report(device: torch.device, profile: str, seed: int) -> str:
    import torchvision

    lines = [
        f"python       {sys.version.split()[0]} ({platform.system()})",
        f"torch        {torch.__version__}",
        f"torchvision  {torchvision.__version__}",
        f"device       {describe_device(device)}",
        f"profile      {profile}   (change with the COURSE_PROFILE environment variable)",
        f"seed         {seed}",
    ]
    return "\n".join(lines)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The mixed-precision type this device runs fast, or None for float32 throughout.

    * CUDA with compute capability 8.0 or above (A100, RTX 30xx, H100, L4): bfloat16. It
      keeps float32's range, so no gradient scaler is needed.
    * older CUDA GPUs (T4, V100: bfloat16 is emulated there, and slow): float16, with a
      gradient scaler (``grad_scaler``) so that small gradients do not underflow.
    * Apple's MPS and the CPU: None. Autocast on the CPU is slower than float32, and on MPS
      its support is partial, so both train in float32.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast(device: torch.device | str, enabled: bool = True, dtype: torch.dtype | None = None):
    """Mixed precision in ``dtype`` (default: ``amp_dtype(device)``); nothing if that is None."""
    device = torch.device(device)
    dtype = amp_dtype(device) if dtype is None else dtype
    if enabled and dtype is not None:
        return torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext()


def grad_scaler(device: torch.device | str, dtype: torch.dtype | None) -> "torch.amp.GradScaler":
    """A gradient scaler, switched on only for float16 (bfloat16 and float32 need none)."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=dtype == torch.float16)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``; synchronises CUDA so GPU time counts."""

    def __init__(self, name: str | None = None, verbose: bool = False):
        self.name, self.verbose, self.seconds = name, verbose, float("nan")

    def __enter__(self):
        sync()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        sync()
        self.seconds = time.perf_counter() - self._start
        if self.verbose:
            print(f"{self.name or 'elapsed'}: {self.seconds:.1f} s")
        return False


def sync() -> None:
    """Wait for the GPU to finish its queued work (nothing on a CPU): before reading a clock."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def runs_dir(profile: str | None = None) -> Path:
    """Where notebooks keep checkpoints and saved encoders: ``COURSE_RUNS`` or ``./runs``,
    with one sub-folder per profile so a ``fast`` run never stands in for a ``cpu`` one."""
    profile = profile or get_profile()
    root = Path(os.environ.get("COURSE_RUNS", "runs")).expanduser()
    path = root / profile
    path.mkdir(parents=True, exist_ok=True)
    return path
