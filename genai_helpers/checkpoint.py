"""Checkpoint files: atomic save, safe load (`weights_only=True`), clear errors on mismatch."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .runtime import data_dir, is_quick
from .i18n import _

FORMAT = "genai_helpers-checkpoint-1"


class CheckpointError(RuntimeError):
    """The file is not a course checkpoint, or it belongs to another model."""


def signature(state: dict) -> dict:
    """What a checkpoint must match: class names and parameter shapes of each module."""
    sig = {}
    for name, obj in state.items():
        if isinstance(obj, nn.Module):
            shapes = {k: list(v.shape) for k, v in obj.state_dict().items()}
            sig[name] = {"class": type(obj).__name__, "shapes": shapes}
        elif isinstance(obj, torch.optim.Optimizer):
            sig[name] = {"class": type(obj).__name__,
                         "groups": [len(g["params"]) for g in obj.param_groups]}
        else:
            raise TypeError(_("state[{name!r}] is a {type}; expected an nn.Module or a torch.optim.Optimizer").format(
                name=name, type=type(obj).__name__))
    return sig


def save_checkpoint(path, state: dict, **extra) -> Path:
    """Write `state` (modules and optimisers) plus `extra` (history, config, ...) atomically.

    The file is written to a temporary name, flushed to disk, then renamed over `path`,
    so a crash at any moment leaves either the old checkpoint or the new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "signature": signature(state),
               "state": {k: v.state_dict() for k, v in state.items()},
               "rng": {"torch": torch.get_rng_state(),
                       "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
               **extra}
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process that was killed
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_checkpoint(path) -> dict:
    """Load a checkpoint file safely (tensors and plain data only) or raise CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(_("no checkpoint at {path}").format(path=path))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean the same thing here
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise CheckpointError(_("{path} is not a checkpoint (or it is damaged): {reason}. Delete it and train "
                                "again.").format(path=path, reason=reason)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            _("{path} is not a genai_helpers checkpoint (a plain torch.save file?). Load a bare state_dict with "
              "model.load_state_dict(torch.load(path, weights_only=True)).").format(path=path))
    return payload


def mismatches(payload: dict, state: dict) -> list[str]:
    """Human-readable differences between a checkpoint and the modules/optimisers in `state`."""
    saved, here = payload["signature"], signature(state)
    out = []
    for name in sorted(set(saved) | set(here)):
        if name not in here:
            out.append(_("the checkpoint has {name!r}, which is not given here").format(name=name))
            continue
        if name not in saved:
            out.append(_("{name!r} is not in the checkpoint").format(name=name))
            continue
        a, b = saved[name], here[name]
        if a["class"] != b["class"]:
            out.append(_("{name!r} is a {a_class} in the checkpoint but a {b_class} here").format(
                name=name, a_class=a["class"], b_class=b["class"]))
            continue
        if "shapes" in a:
            for key in sorted(set(a["shapes"]) | set(b["shapes"])):
                sa, sb = a["shapes"].get(key), b["shapes"].get(key)
                if sa != sb:
                    out.append(_("{name}.{key}: {saved} in the checkpoint, {here} here").format(
                        name=name, key=key, saved=_("missing") if sa is None else tuple(sa),
                        here=_("missing") if sb is None else tuple(sb)))
        elif a["groups"] != b["groups"]:
            out.append(_("{name!r} optimises {a_groups} tensors in the checkpoint, {b_groups} here").format(
                name=name, a_groups=a["groups"], b_groups=b["groups"]))
    return out


def load_checkpoint(path, state: dict) -> dict:
    """Restore `state` from `path`; returns the payload (history, config, ...).

    Raises CheckpointError naming every mismatch when the file comes from another model.
    """
    payload = read_checkpoint(path)
    problems = mismatches(payload, state)
    if problems:
        more = _("; and {n} more").format(n=len(problems) - 5) if len(problems) > 5 else ""
        shown = "; ".join(problems[:5]) + more
        raise CheckpointError(_("{path} was saved from a different model: {shown}").format(path=path, shown=shown))
    for name, obj in state.items():
        obj.load_state_dict(payload["state"][name])
    return payload


def restore_rng(payload: dict) -> None:
    rng = payload.get("rng") or {}
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])


def checkpoint_path(name) -> Path:
    """A bare name (dots allowed, e.g. vae_beta-0.0) means data/checkpoints/<name>[-quick].pt
    ($GENAI_CHECKPOINTS moves the folder); a name ending in .pt or with a folder is a path."""
    p = Path(name)
    if p.suffix == ".pt" or p.parent != Path("."):
        return p
    return checkpoint_folder() / f"{name}{'-quick' if is_quick() else ''}.pt"


def checkpoint_folder() -> Path:
    """Where named checkpoints live: data/checkpoints, or $GENAI_CHECKPOINTS."""
    return Path(os.environ.get("GENAI_CHECKPOINTS") or data_dir() / "checkpoints")
