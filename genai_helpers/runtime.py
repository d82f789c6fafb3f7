"""Where and how the course runs: quick/offline flags, data folder, device choice, seeding, input
checks and small context managers (eval mode, one thread). `gh.session` holds `setup()`."""
from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch
from .i18n import _

from .distributed import launched, local_rank

__version__ = "0.1.0"  # the package's version (gh.__version__)
_TRUE = {"1", "true", "yes", "on"}


def flag(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable such as GENAI_QUICK (1/true/yes/on)."""
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in _TRUE


def is_quick() -> bool:
    """Quick mode (GENAI_QUICK=1): smaller data and fewer epochs, same code."""
    return flag("GENAI_QUICK")


def is_offline() -> bool:
    """Offline mode (GENAI_OFFLINE=1): never try the network."""
    return flag("GENAI_OFFLINE")


def cpu_has_bf16() -> bool:
    """Does this CPU multiply bf16 natively (Intel AMX or AVX512-BF16)? GENAI_CPU_BF16=0/1 overrides.

    Only then is bf16 autocast worth it on the CPU; elsewhere it is emulated and slower.
    """
    if os.environ.get("GENAI_CPU_BF16") is not None:
        return flag("GENAI_CPU_BF16")
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick(full, quick):
    """Return `quick` in quick mode, else `full` (e.g. epochs = gh.pick(full=100, quick=5))."""
    return quick if is_quick() else full


def data_dir() -> Path:
    """The course's data folder: $GENAI_DATA, else `data/` of the repository, else ~/.cache."""
    if os.environ.get("GENAI_DATA"):
        path = Path(os.environ["GENAI_DATA"]).expanduser()
    else:
        repo = Path(__file__).resolve().parent.parent
        path = repo / "data" if (repo / "pyproject.toml").exists() else Path.home() / ".cache" / "genai_helpers"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pick_device(name: str | None = None) -> torch.device:
    """CUDA if present, else Apple MPS, else CPU; $GENAI_DEVICE or `name` overrides. Under torchrun
    each process takes its own GPU, cuda:LOCAL_RANK (gh.distributed)."""
    name = name or os.environ.get("GENAI_DEVICE")
    if not name:
        mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
        name = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and launched():
        return torch.device("cuda", local_rank())
    return device


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def expect_input(x, shape: tuple, who: str, module: torch.nn.Module | None = None) -> None:
    """Raise a ValueError saying what `who` expects unless x is a floating tensor of `shape`
    (None matches any size) with the module's device and dtype. Cheap: no values are read."""
    want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
    if not torch.is_tensor(x):
        raise ValueError(_("{who} expects a float tensor of shape {want}, got {type}").format(
            who=who, want=want, type=type(x).__name__))
    if x.dim() != len(shape) or any(s is not None and s != n for s, n in zip(shape, x.shape)):
        raise ValueError(_("{who} expects a float tensor of shape {want}, got shape {x_shape}").format(
            who=who, want=want, x_shape=tuple(x.shape)))
    if not x.is_floating_point():
        hint = _(" (MNIST bytes? use mnist.train_x, or x.float() / 255)") if x.dtype == torch.uint8 else ""
        raise ValueError(_("{who} expects floating-point values, got {x_dtype}{hint}").format(
            who=who, x_dtype=x.dtype, hint=hint))
    if module is not None:
        p = next(module.parameters(), None)
        if p is not None and p.device != x.device:
            raise ValueError(_("{who} is on {p_device} but the input is on {x_device}: move the input with "
                               "x.to({p_device!r})").format(who=who, p_device=str(p.device), x_device=x.device))
        if p is not None and p.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(_("{who} expects {p_dtype} input like its weights, but the input is {x_dtype}: convert it "
                               "with x.to({p_dtype})").format(who=who, p_dtype=p.dtype, x_dtype=x.dtype))


@contextlib.contextmanager
def evaluating(*modules: torch.nn.Module):
    """Put modules in eval mode for a block, then back in the mode each was in (even on an error)."""
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, was):
            m.train(mode)


@contextlib.contextmanager
def single_thread():
    """Run a block on one CPU thread. The ring's tiny MLPs are as fast on one thread as on two
    (there is too little work per operation to share), much faster when another program keeps
    the second core busy, and their results no longer depend on the machine's number of cores:
    a GAN's training is chaotic, and a different summation order ends in a different run."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
