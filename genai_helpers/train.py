"""The course's one training loop.

`fit` is given a step function that does one optimisation step on a batch and returns its
losses as a dict of scalar tensors. The loop owns everything else: batches taken by index
from tensors already on the device, bf16 autocast where it pays (CUDA; convolutional models on
AMX CPUs), a progress bar, a live plot, the history, checkpoints (which double as a cache of
trained models), NaN/inf detection with the last good weights restored, Ctrl-C (stops at a step
boundary, model and history kept), and out-of-memory errors.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.std import tqdm

from . import diagnose as diagnose_
from .checkpoint import (CheckpointError, load_checkpoint, mismatches, read_checkpoint,
                         restore_rng, save_checkpoint)
from .runtime import cpu_has_bf16, data_dir, is_quick


SAVE_SECONDS = 30.0  # default time between checkpoints


@dataclass
class History:
    """Per-step losses, per-epoch evaluations, and where training stands."""

    losses: dict = field(default_factory=dict)  # name -> list of per-step floats
    evals: list = field(default_factory=list)  # one dict per evaluation: epoch, step, metrics
    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimisation steps done in all
    seconds: float = 0.0  # training time, evaluation included
    stopped: str | None = None  # why the last fit stopped early (NaN, Ctrl-C, out of memory)
    diagnoses: list = field(default_factory=list)  # gh.diagnose: {"kind", "step", "message"} each

    def epoch_mean(self, key: str, epoch: int = -1, steps_per_epoch: int | None = None) -> float:
        """Mean of a per-step loss over one epoch (default: the last complete one)."""
        spe = steps_per_epoch or max(1, self.step // max(1, self.epoch))
        values = self.losses[key]
        epoch = epoch % max(1, self.epoch)
        chunk = values[epoch * spe:(epoch + 1) * spe]
        return sum(chunk) / len(chunk)

    def eval(self, key: str) -> list:
        """The values of one evaluation metric, in order."""
        return [e[key] for e in self.evals if key in e]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


def adam(params, lr: float = 1e-3, betas=(0.9, 0.999), **kw) -> torch.optim.Adam:
    """Adam with the fastest implementation for the parameters' device (fused on CUDA)."""
    params = list(params)
    dev = params[0]["params"][0].device if isinstance(params[0], dict) else params[0].device
    if dev.type == "cuda":
        kw.setdefault("fused", True)
    else:
        kw.setdefault("foreach", True)
    return torch.optim.Adam(params, lr=lr, betas=betas, **kw)


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


class _Guard:
    """Keeps the two most recent verified copies of all trainable state, to undo bad steps."""

    def __init__(self, state: dict):
        self.modules = [v for v in state.values() if isinstance(v, nn.Module)]
        self.opts = [v for v in state.values() if isinstance(v, torch.optim.Optimizer)]
        self.copies: list = []  # (tensors, optimiser-state keys, position)

    def _tensors(self):
        ts = [t for m in self.modules for t in m.state_dict(keep_vars=True).values()]
        keys = []
        for o in self.opts:
            for p, st in o.state.items():
                for k, v in st.items():
                    if torch.is_tensor(v):
                        ts.append(v)
                        keys.append((id(o), id(p), k))
        return [t.data if isinstance(t, nn.Parameter) else t for t in ts], keys

    @torch.no_grad()
    def take(self, position: tuple):
        ts, keys = self._tensors()
        old = self.copies.pop(0) if len(self.copies) == 2 else None
        if old is not None and old[1] == keys:
            torch._foreach_copy_(old[0], ts)
            self.copies.append((old[0], keys, position))
        else:
            self.copies.append(([t.clone() for t in ts], keys, position))

    @torch.no_grad()
    def restore(self) -> tuple | None:
        """Go back to the newest copy whose values are all finite; returns its position."""
        for saved, keys, position in reversed(self.copies):
            if not all(bool(torch.isfinite(t).all()) for t in saved if t.is_floating_point()):
                continue
            for o in self.opts:  # drop optimiser state created after the copy (first steps)
                for p in list(o.state):
                    if not any(k[:2] == (id(o), id(p)) for k in keys):
                        del o.state[p]
            ts, now = self._tensors()
            if now == keys:
                torch._foreach_copy_(ts, saved)
                return position
        return None


class _DeferSigint:
    """Turn Ctrl-C (a Jupyter interrupt) into a flag checked between steps."""

    def __init__(self):
        self.hit = False
        self.old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                self.hit = True
                signal.signal(signal.SIGINT, self.old)  # a second Ctrl-C interrupts at once

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)


def _batches(data, batch_size, epoch, seed, shuffle, drop_last):
    n = len(data[0])
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g).to(data[0].device)
    else:
        order = torch.arange(n, device=data[0].device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def _oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in str(e).lower())


def fit(step, data, *, state: dict, epochs: int, batch_size: int, history: History | None = None,
        eval_fn=None, checkpoint=None, config: dict | None = None, checkpoint_every: int | None = None,
        seed: int = 0, desc: str = "training", plot: bool = True, progress: bool = True,
        log_every: int | None = None, amp: bool = True, shuffle: bool = True,
        drop_last: bool = True, eval_every: int | None = None, diagnose=True) -> History:
    """Train until `epochs` epochs are done; returns the History (pass it back to continue).

    step: function(batch) -> dict of scalar loss tensors; it does backward and optimiser steps.
        `batch` is a tensor (or a tuple, when `data` is a tuple) of `batch_size` rows.
    data: a tensor or tuple of tensors on the device, indexed along the first dimension.
    state: the modules and optimisers to guard and checkpoint, e.g. {"model": m, "opt": opt}.
    eval_fn: function() -> dict of floats, run in eval mode without grad after every epoch, or
        every `eval_every` steps (and after the last one) when that is given; each result is
        stored in history.evals with the epoch, the step and the training seconds so far.
    checkpoint: a path, or a bare name (data/checkpoints/<name>.pt). An existing compatible
        file is loaded and training continues from it (a finished one is simply a cache hit);
        one from another model, config or dataset is moved aside and training starts anew.
    config: plain values (hyper-parameters) that must match for a checkpoint to be reused.
    checkpoint_every: steps between checkpoints (default: every 30 s of training, and at the end).
    log_every: steps between reading losses back from the device (default 1 on CPU, 25 on GPU).
    amp: bf16 autocast where it pays (CUDA; convolutional models on CPUs with AMX); False: fp32.
    diagnose: watch the run for posterior collapse, a winning discriminator, mode collapse,
        divergence, overfitting and samples without variety (gh.diagnose); False: don't. A
        gh.diagnose.Diagnostics may be given (e.g. one that knows the run's monitor).
    """
    data = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    device = data[0].device
    modules = [v for v in state.values() if isinstance(v, nn.Module)]
    log_every = log_every or (25 if device.type == "cuda" else 1)
    meta = {"config": config or {}, "batch_size": batch_size, "seed": seed,
            "data": [[list(t.shape), str(t.dtype)] for t in data]}
    path = checkpoint_path(checkpoint) if checkpoint is not None else None

    if path is not None and history is None and path.exists():
        history = _resume(path, state, meta, epochs)
    history = history or History()
    history.stopped = None
    live = None
    if plot:
        from .plot import LivePlot
        live = LivePlot(desc)
    if history.epoch >= epochs:
        if live is not None:
            live.update(history, final=True)
        return history

    n_batches = steps_per_epoch(len(data[0]), batch_size, drop_last)
    print(f"{desc}: epochs {history.epoch}->{epochs}, {n_batches} steps of {batch_size} per epoch, "
          f"on {device.type}" + (f", checkpoint {path}" if path else ""))
    bar = None
    if progress:
        from .plot import DisplayLine, in_notebook

        bar = tqdm(total=(epochs - history.epoch) * n_batches - history.batch, desc=desc,
                   unit="step", mininterval=0.5, file=DisplayLine() if in_notebook() else sys.stdout,
                   ncols=120 if in_notebook() else None, ascii=False)
    autocast = _autocast(device, modules) if amp else contextlib.nullcontext()
    guard = _Guard(state)
    pending: list = []  # per-step loss dicts not yet read back from the device
    last_save = [time.perf_counter(), history.step]
    t0, secs0 = time.perf_counter(), history.seconds
    watch = diagnose_.watcher(diagnose, history, eval_fn)  # diagnose: issue 17

    def diagnosed(found):  # diagnose: new diagnoses into the history and the bar
        diagnose_.report(found, history, bar, desc)

    def position():
        return history.epoch, history.batch, history.step

    def rewind(problem: str | None = None):
        """Undo unverified steps: restore the newest good copy and the history to match."""
        pending.clear()
        pos = guard.restore()
        if pos is not None:
            history.epoch, history.batch, history.step = pos
            for v in history.losses.values():
                del v[history.step:]
        if problem:
            history.stopped = problem + ("; the weights of the last good step were restored."
                                         if pos is not None else "; no finite weights were left.")

    def save(force: bool = False):
        """Write the checkpoint when it is due (or forced); only ever at a verified step."""
        if path is None:
            return
        now = time.perf_counter()
        if not force and (history.step - last_save[1] < checkpoint_every if checkpoint_every
                          else now - last_save[0] < SAVE_SECONDS):
            return
        history.seconds = secs0 + now - t0
        save_checkpoint(path, state, history=history.to_dict(), meta=meta, epochs=epochs)
        last_save[:] = [time.perf_counter(), history.step]

    last_eval = [history.evals[-1]["step"] if history.evals else 0]

    def evaluate():
        history.seconds = secs0 + time.perf_counter() - t0
        if eval_fn is not None:
            epoch = round(history.epoch + history.batch / n_batches, 3)
            history.evals.append({"epoch": epoch, "step": history.step, "seconds": round(history.seconds, 2),
                                  **_evaluate(eval_fn, modules)})
            if watch is not None:  # diagnose
                diagnosed(watch.after_eval(history.step, history.evals[-1]))
        last_eval[0] = history.step
        if live is not None:
            live.update(history)

    def flush() -> str | None:
        """Move pending losses into the history; return a message for the first non-finite one."""
        if not pending:
            return None
        keys = list(pending[0])
        values = torch.stack([torch.stack([d[k].detach().float() for k in keys]) for d in pending]).cpu()
        bad = (~torch.isfinite(values)).any(1).nonzero()
        first = history.step - len(pending)
        rows = values.tolist()
        for i, row in enumerate(rows[:int(bad[0]) if len(bad) else len(rows)]):
            for k, v in zip(keys, row):
                history.losses.setdefault(k, []).append(v)
            if watch is not None:  # diagnose
                diagnosed(watch.after_step(first + i + 1, dict(zip(keys, row))))
        pending.clear()
        if len(bad):
            i = int(bad[0])
            detail = ", ".join(f"{k}={v:.4g}" for k, v in zip(keys, rows[i]))
            return f"the loss is not finite at step {first + i + 1} ({detail})"
        return None

    for m in modules:
        m.train()
    guard.take(position())
    sigint = _DeferSigint()
    try:
        with sigint:
            while history.epoch < epochs and history.stopped is None:
                batches = _batches(data, batch_size, history.epoch, seed, shuffle, drop_last)
                while history.batch < len(batches) and history.stopped is None:
                    batch = tuple(t[batches[history.batch]] for t in data)
                    try:
                        with autocast:
                            losses = step(batch[0] if len(batch) == 1 else batch)
                    except Exception as e:
                        if not _oom(e):
                            raise
                        rewind(f"out of memory at step {history.step + 1} with batch_size={batch_size}: "
                               f"try batch_size={max(1, batch_size // 2)}")
                        break
                    if not isinstance(losses, dict) or not losses:
                        raise TypeError("the step function must return a dict of scalar losses, "
                                        f"e.g. {{'loss': loss}}; it returned {type(losses).__name__}")
                    pending.append(losses)
                    history.step += 1
                    history.batch += 1
                    if history.step % log_every == 0 or history.batch == len(batches):
                        problem = flush()
                        if problem:
                            rewind(problem)
                            break
                        guard.take(position())
                        save()
                        if eval_every and history.step - last_eval[0] >= eval_every and history.batch < len(batches):
                            evaluate()
                    if bar is not None:
                        bar.update(1)
                        if history.batch % 10 == 0 and history.losses:
                            bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in history.losses.items()},
                                            refresh=False)
                    if sigint.hit:
                        raise KeyboardInterrupt
                if history.stopped is None and history.batch >= len(batches):
                    history.epoch += 1
                    history.batch = 0
                    if not eval_every or history.step - last_eval[0] >= eval_every or history.epoch == epochs:
                        evaluate()
                    save(force=history.epoch == epochs)
    except KeyboardInterrupt:
        if flush() is not None or not sigint.hit:
            rewind()  # interrupted inside a step, or a pending loss was bad: undo unverified steps
        history.stopped = (f"interrupted at step {history.step} (epoch {history.epoch + 1}); "
                           "the model and history are kept: call fit(..., history=hist) to continue")
        save(force=True)
    finally:
        if bar is not None:
            bar.close()
        for m in modules:
            m.eval()
    history.seconds = secs0 + time.perf_counter() - t0
    if watch is not None:  # diagnose
        diagnosed(watch.at_end(history.step, history.stopped))
    if history.stopped and not history.stopped.startswith("interrupted"):
        save(force=True)  # the restored, last good state
    if live is not None:
        live.update(history, final=True)
    if history.stopped:
        print(f"STOPPED: {history.stopped}")
    else:
        last = {k: round(history.epoch_mean(k, steps_per_epoch=n_batches), 4) for k in history.losses}
        ev = ({k: round(v, 4) for k, v in history.evals[-1].items() if k not in ("epoch", "step", "seconds")}
              if history.evals else {})
        print(f"{desc}: done, {history.epoch} epochs in {history.seconds:.1f} s; last epoch {last}"
              + (f"; eval {ev}" if ev else ""))
    if watch is not None and history.diagnoses:  # diagnose: the closing report
        print(diagnose_.closing_report(history))
    return history


def _autocast(device: torch.device, modules):
    """bf16 autocast on CUDA; on a CPU with native bf16 (AMX) only for convolutional models,
    where it measured 1.6x (the GRUs and small MLPs of the course get slower, so they stay fp32),
    and not for a module whose class says `cpu_bf16 = False` (the GANs: BENCHMARKS.md)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    layers = [layer for m in modules for layer in m.modules()]
    if (device.type == "cpu" and any(isinstance(layer, nn.modules.conv._ConvNd) for layer in layers)
            and all(getattr(layer, "cpu_bf16", True) for layer in layers) and cpu_has_bf16()):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def _evaluate(eval_fn, modules) -> dict:
    for m in modules:
        m.eval()
    try:
        out = eval_fn()
    finally:
        for m in modules:
            m.train()
    return {k: float(v) for k, v in out.items()}


def _resume(path: Path, state: dict, meta: dict, epochs: int) -> History | None:
    """Load a compatible checkpoint into `state`; move an incompatible one aside."""
    try:
        payload = read_checkpoint(path)
        problems = mismatches(payload, state)
        if payload.get("meta") != meta:
            old = payload.get("meta") or {}
            problems += [f"{k} was {old.get(k)!r}, now {meta[k]!r}" for k in meta if old.get(k) != meta[k]]
        hist = History.from_dict(payload["history"])
        if hist.epoch > epochs:
            problems.append(f"it was trained for {hist.epoch} epochs, {epochs} asked now")
    except CheckpointError as e:
        problems = [str(e)]
    if problems:
        stale = path.with_name(path.stem + ".stale" + path.suffix)
        os.replace(path, stale)
        print(f"{path.name} does not match this run ({problems[0]}); training anew "
              f"(the old file is kept as {stale.name}).")
        return None
    load_checkpoint(path, state)
    restore_rng(payload)
    if hist.epoch >= epochs:
        print(f"Loaded from {path} (trained {hist.epoch} epochs in {hist.seconds:.0f} s); "
              "delete the file to train again.")
    else:
        print(f"Resuming from {path} at step {hist.step} (epoch {hist.epoch + 1}).")
    return hist


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = True) -> int:
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


def epochs_for(steps: int, n: int, batch_size: int) -> int:
    """Epochs that give about `steps` optimisation steps on n examples (at least 1).

    Chapters size training in steps so that the offline sample (4,000 digits) and full
    MNIST (60,000) cost about the same time.
    """
    return max(1, round(steps / steps_per_epoch(n, batch_size)))
