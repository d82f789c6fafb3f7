"""The session: `setup()` seeds everything, picks the device, reads the quick/offline flags,
decides where MNIST comes from and prints one line; `env()` and `device()` read what it chose.

It sits above `runtime` and `data` (both import nothing from here), so they form no cycle.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from .data import mnist_source
from .i18n import N_, _, set_language
from .runtime import __version__, is_offline, is_quick, pick_device, seed_everything

NOT_SET_UP = N_("not decided yet (gh.setup() decides it)")


@dataclass(frozen=True)
class Env:
    device: torch.device
    seed: int
    quick: bool
    offline: bool
    data_source: str

    def __str__(self) -> str:
        dev = self.device.type
        if dev == "cuda":
            dev = f"cuda ({torch.cuda.get_device_name(self.device)})"
        elif dev == "cpu":
            dev = _("cpu ({threads} threads)").format(threads=torch.get_num_threads())
        mode = _("quick mode") if self.quick else _("full mode")
        py = ".".join(map(str, sys.version_info[:3]))
        return _("genai_helpers {version} | python {python} | torch {torch} | {device} | {mode} | seed {seed} | data: "
                 "{data}").format(version=__version__, python=py, torch=torch.__version__, device=dev, mode=mode,
                                  seed=self.seed, data=self.data_source)


_ENV: Env | None = None


def setup(seed: int = 0, device: str | None = None, quiet: bool = False, lang: str | None = None) -> Env:
    """Seed everything, pick the device, read GENAI_QUICK/GENAI_OFFLINE, print one line.

    The data source is what `gh.load_mnist()` will use; deciding it may probe the
    network for at most a few seconds (never with GENAI_OFFLINE=1). `lang` ("en" or "zh")
    is the language of the course's messages from now on (the Chinese notebooks pass "zh");
    without it, GENAI_LANG decides (English when unset). See `i18n`.
    """
    global _ENV
    if lang is not None:
        set_language(lang)  # first: a wrong language is reported before anything else happens
    seed_everything(seed)
    _ENV = Env(pick_device(device), seed, is_quick(), is_offline(), mnist_source().description)
    if not quiet:
        print(_ENV)
    return _ENV


def env() -> Env:
    """The environment of the last `setup()`; without one, the defaults (nothing is seeded, and
    the data source is not probed: that is `setup()`'s job, not a side effect of reading this)."""
    if _ENV is None:
        return Env(pick_device(), 0, is_quick(), is_offline(), _(NOT_SET_UP))
    return _ENV


def device() -> torch.device:
    """The device of the last `setup()` (or the best one here)."""
    return env().device
