"""The course's one training loop.

`fit` is given a step function that does one optimisation step on a batch and returns its
losses as a dict of scalar tensors. The loop owns everything else: batches taken by index
from tensors already on the device, bf16 autocast where it pays (CUDA; convolutional models on
AMX CPUs), a progress bar, a live plot, the history, checkpoints (which double as a cache of
trained models), NaN/inf detection with the last good weights restored, Ctrl-C (stops at a step
boundary, model and history kept), and out-of-memory errors.

`fit` itself only reads top to bottom; the state of one call lives in a `Run`, whose methods are
the loop's moves (`train_step`, `verify`, `end_epoch`, ...) and the moments a watcher follows:
`record` (per-step losses), `evaluate` (each evaluation) and `finish` (the end of the run), or
`loaded` (a finished checkpoint, diagnosed again by the current rules).

Under torchrun the same loop trains data parallel: `Run` calls the hooks of a `gh.distributed`
`Ranks` (each rank's share of a batch, gradients and losses averaged, rank 0 prints and saves);
outside torchrun they are a `Solo`'s, which do nothing.
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

from .diagnose import NOT_FINITE, closing_report, rediagnose, report, watcher
from .checkpoint import (CheckpointError, checkpoint_path, load_checkpoint, mismatches, read_checkpoint,
                         restore_rng, save_checkpoint)
from .distributed import Solo, join
from .i18n import _
from .runtime import cpu_has_bf16, evaluating


SAVE_SECONDS = 30.0  # default time between checkpoints
LOG_EVERY_CUDA = 25  # steps between reading losses back from a GPU (every step on a CPU)


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
    diagnoses: list = field(default_factory=list)  # gh.diagnose: {"kind", "step", "message", "recovered"} each

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


def _oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and "out of memory" in str(e).lower())


class Run:
    """One call of `fit`: where training stands and what it does at each moment of the loop.

    The moments a watcher (diagnostics, a live plot, ...) may follow have one method each:
    `record` (per-step losses, once they are read back from the device and verified finite),
    `evaluate` (each evaluation) and `finish` (the end of the run, however it ended).
    `ranks` (a `gh.distributed.Ranks` under torchrun) shares batches and averages across processes.
    """

    def __init__(self, step, data: tuple, *, state: dict, epochs: int, batch_size: int, history: History,
                 eval_fn, path: Path | None, meta: dict, checkpoint_every: int | None, seed: int,
                 shuffle: bool, eval_every: int | None, desc: str, amp: bool, watch=None, ranks=None,
                 plot: bool = False):
        self.step_fn, self.data, self.state, self.epochs, self.batch_size = step, data, state, epochs, batch_size
        self.history, self.eval_fn, self.path, self.meta = history, eval_fn, path, meta
        self.checkpoint_every, self.seed, self.shuffle, self.eval_every = checkpoint_every, seed, shuffle, eval_every
        self.desc, self.watch = desc, watch  # watch: a gh.diagnose.Diagnostics, or None
        self.ranks = ranks or Solo()
        self.device = data[0].device
        self.modules = [v for v in state.values() if isinstance(v, nn.Module)]
        self.log_every = LOG_EVERY_CUDA if self.device.type == "cuda" else 1
        self.n_batches = steps_per_epoch(len(data[0]), batch_size)
        self.autocast = _autocast(self.device, self.modules) if amp else contextlib.nullcontext()
        self.guard = _Guard(state)
        self.sigint = _DeferSigint()
        self.was_interrupted = False  # Ctrl-C stopped the run (its state needs no extra save at the end)
        self.pending: list = []  # per-step loss dicts not yet read back from the device
        self.bar = self.live = None
        if plot and self.ranks.main:
            from .plot import LivePlot  # matplotlib: slow, only when drawn

            self.live = LivePlot(desc)
        self.t0, self.secs0 = time.perf_counter(), history.seconds
        self.last_save = (self.t0, history.step)
        self.last_eval = history.evals[-1]["step"] if history.evals else 0

    # --- the loop's moves ---------------------------------------------------------------------

    def start(self, progress: bool) -> None:
        h = self.history
        self.ranks.say(_("{desc}: epochs {start}->{end}, {steps} steps of {batch_size} per epoch, on {device}{ranks}")
                       .format(desc=self.desc, start=h.epoch, end=self.epochs, steps=self.n_batches,
                               batch_size=self.batch_size, device=self.device.type, ranks=self.ranks)
                       + (_(", checkpoint {path}").format(path=self.path) if self.path else ""))
        if progress and self.ranks.main:
            from .plot import DisplayLine, in_notebook  # matplotlib: slow, only when drawn

            self.bar = tqdm(total=(self.epochs - h.epoch) * self.n_batches - h.batch, desc=self.desc,
                            unit="step", mininterval=0.5, file=DisplayLine() if in_notebook() else sys.stdout,
                            ncols=120 if in_notebook() else None, ascii=False)
        for m in self.modules:
            m.train()
        self.ranks.attach(self.modules)
        self.guard.take(self.position())

    def running(self) -> bool:
        return self.history.epoch < self.epochs and self.history.stopped is None

    def batches(self) -> list:
        """This epoch's batches, as index tensors (shuffled by seed and epoch, last partial one dropped)."""
        n = len(self.data[0])
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.history.epoch)
            order = torch.randperm(n, generator=g).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        stop = n - n % self.batch_size if n >= self.batch_size else n
        return [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def train_step(self, index) -> bool:
        """One call of the step function; False when training must stop (out of memory, NaN)."""
        h = self.history
        index = self.ranks.share(index)
        batch = tuple(t[index] for t in self.data)
        try:
            with self.autocast, self.ranks.stepping():
                losses = self.step_fn(batch[0] if len(batch) == 1 else batch)
        except Exception as e:
            if not _oom(e) or self.ranks.world > 1:  # one process cannot stop alone: the error ends the run
                raise
            self.rewind(_("out of memory at step {step} with batch_size={batch_size}: try batch_size={smaller}").format(
                step=h.step + 1, batch_size=self.batch_size, smaller=max(1, self.batch_size // 2)))
            return False
        if not isinstance(losses, dict) or not losses:
            raise TypeError(_("the step function must return a dict of scalar losses, e.g. {example}; it returned "
                              "{type}").format(example="{'loss': loss}", type=type(losses).__name__))
        self.pending.append(losses)
        h.step += 1
        h.batch += 1
        if h.step % self.log_every == 0 or h.batch == self.n_batches:
            if not self.verify():
                return False
        self.show_progress()
        if self.sigint.hit:
            raise KeyboardInterrupt
        return True

    def verify(self) -> bool:
        """Read the pending losses; keep a copy of this good state, save and evaluate when due."""
        problem = self.flush()
        if problem:
            self.rewind(problem)
            return False
        self.guard.take(self.position())
        self.save()
        h = self.history
        if self.eval_every and h.step - self.last_eval >= self.eval_every and h.batch < self.n_batches:
            self.evaluate()
        return True

    def end_epoch(self) -> None:
        h = self.history
        h.epoch += 1
        h.batch = 0
        if not self.eval_every or h.step - self.last_eval >= self.eval_every or h.epoch == self.epochs:
            self.evaluate()
        self.save(force=h.epoch == self.epochs)

    def interrupted(self) -> None:
        """Ctrl-C: keep the model and history at the last verified step, and save them (under
        torchrun: every process stops, and a new launch resumes from the last checkpoint)."""
        self.ranks.interrupted()
        if self.flush() is not None or not self.sigint.hit:
            self.rewind()  # interrupted inside a step, or a pending loss was bad: undo unverified steps
        h = self.history
        self.was_interrupted = True
        h.stopped = _("interrupted at step {step} (epoch {epoch}); the model and history are kept: call "
                      "fit(..., history=hist) to continue").format(step=h.step, epoch=h.epoch + 1)
        self.save(force=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.ranks.detach()
        for m in self.modules:
            m.eval()

    # --- the moments a watcher follows --------------------------------------------------------

    def record(self, keys: list, rows: list, first: int) -> None:
        """Per-step losses read back from the device, all finite (rows of steps first+1, ...): the one
        place they enter the history, and where the diagnostics see them."""
        for i, row in enumerate(rows):
            for k, v in zip(keys, row):
                self.history.losses.setdefault(k, []).append(v)
            if self.watch is not None:
                self.diagnosed(self.watch.after_step(first + i + 1, dict(zip(keys, row))))

    def evaluate(self) -> None:
        """Run eval_fn (eval mode, no grad) and store its metrics with the epoch, step and seconds."""
        h = self.history
        h.seconds = self.secs0 + time.perf_counter() - self.t0
        if self.eval_fn is not None:
            metrics = self.ranks.average(_evaluate(self.eval_fn, self.modules))  # the mean over processes
            h.evals.append({"epoch": round(h.epoch + h.batch / self.n_batches, 3), "step": h.step,
                            "seconds": round(h.seconds, 2), **metrics})
            if self.watch is not None:
                self.diagnosed(self.watch.after_eval(h.step, h.evals[-1]))
        self.last_eval = h.step
        if self.live is not None:
            self.live.update(h)

    def finish(self) -> History:
        """The end of the run: save a restored state, draw the final plot, print one line."""
        h = self.history
        h.seconds = self.secs0 + time.perf_counter() - self.t0
        if self.watch is not None:
            self.diagnosed(self.watch.at_end(h.step, h.stopped))
        if h.stopped and not self.was_interrupted:
            self.save(force=True)  # the restored, last good state
        self.ranks.wait()
        if self.live is not None:
            self.live.update(h, final=True)
        if h.stopped:
            self.ranks.say(_("STOPPED: {reason}").format(reason=h.stopped) + closing_report(h))
            return h
        last = {k: round(h.epoch_mean(k, steps_per_epoch=self.n_batches), 4) for k in h.losses}
        ev = ({k: round(v, 4) for k, v in h.evals[-1].items() if k not in ("epoch", "step", "seconds")}
              if h.evals else {})
        self.ranks.say(_("{desc}: done, {epochs} epochs in {seconds:.1f} s; last epoch {last}").format(
            desc=self.desc, epochs=h.epoch, seconds=h.seconds, last=last)
                       + (_("; eval {metrics}").format(metrics=ev) if ev else "") + closing_report(h))
        return h

    def loaded(self) -> History:
        """Nothing left to train (a finished checkpoint, e.g. a cached model): diagnose it by the
        current rules (they may have changed since it was trained), print them, draw the plot."""
        h = self.history
        if self.watch is not None:
            rediagnose(h)
            if h.diagnoses:
                self.ranks.say(closing_report(h).lstrip("\n"))
        if self.live is not None:
            self.live.update(h, final=True)
        return h

    def diagnosed(self, found: list) -> None:
        """New diagnoses: into the history, and their titles into the progress bar."""
        report(found, self.history, self.bar, self.desc)

    # --- bookkeeping --------------------------------------------------------------------------

    def position(self) -> tuple:
        return self.history.epoch, self.history.batch, self.history.step

    def flush(self) -> str | None:
        """Move pending losses into the history; return a message for the first non-finite one."""
        if not self.pending:
            return None
        keys = list(self.pending[0])
        values = self.ranks.average(torch.stack([torch.stack([d[k].detach().float() for k in keys])
                                                  for d in self.pending])).cpu()
        bad = (~torch.isfinite(values)).any(1).nonzero()
        first = self.history.step - len(self.pending)
        rows = values.tolist()
        self.pending.clear()
        self.record(keys, rows[:int(bad[0]) if len(bad) else len(rows)], first)
        if not len(bad):
            return None
        i = int(bad[0])
        detail = ", ".join(f"{k}={v:.4g}" for k, v in zip(keys, rows[i]))
        return _(NOT_FINITE).format(step=first + i + 1, detail=detail)

    def rewind(self, problem: str | None = None) -> None:
        """Undo unverified steps: restore the newest good copy and the history to match."""
        self.pending.clear()
        h = self.history
        pos = self.guard.restore()
        if pos is not None:
            h.epoch, h.batch, h.step = pos
            for v in h.losses.values():
                del v[h.step:]
        if problem:
            h.stopped = (_("{problem}; the weights of the last good step were restored.") if pos is not None
                         else _("{problem}; no finite weights were left.")).format(problem=problem)

    def save(self, force: bool = False) -> None:
        """Write the checkpoint when it is due (or forced); only ever at a verified step, by rank 0."""
        if self.path is None or not self.ranks.main:
            return
        now, h = time.perf_counter(), self.history
        if not force and (h.step - self.last_save[1] < self.checkpoint_every if self.checkpoint_every
                          else now - self.last_save[0] < SAVE_SECONDS):
            return
        h.seconds = self.secs0 + now - self.t0
        save_checkpoint(self.path, self.state, history=h.to_dict(), meta=self.meta, epochs=self.epochs)
        self.last_save = (time.perf_counter(), h.step)

    def show_progress(self) -> None:
        h = self.history
        if self.bar is not None:
            self.bar.update(1)
            if h.batch % 10 == 0 and h.losses:
                self.bar.set_postfix({k: f"{v[-1]:.4g}" for k, v in h.losses.items()}, refresh=False)


def fit(step, data, *, state: dict, epochs: int, batch_size: int, history: History | None = None,
        eval_fn=None, checkpoint=None, config: dict | None = None, checkpoint_every: int | None = None,
        seed: int = 0, desc: str = "training", plot: bool = True, progress: bool = True,
        amp: bool = True, shuffle: bool = True, eval_every: int | None = None, diagnose=True) -> History:
    """Train until `epochs` epochs are done; returns the History (pass it back to continue).

    step: function(batch) -> dict of scalar loss tensors; it does backward and optimiser steps.
        `batch` is a tensor (or a tuple, when `data` is a tuple) of `batch_size` rows; the last
        partial batch of an epoch is dropped.
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
    amp: bf16 autocast where it pays (CUDA; convolutional models on CPUs with AMX); False: fp32.
    diagnose: watch the run for posterior collapse, a winning discriminator, mode collapse,
        divergence, overfitting and samples without variety, and say so once each (gh.diagnose);
        False: don't; or a gh.diagnose.Diagnostics (e.g. one that knows the run's monitor).
    Under torchrun every process calls fit alike and trains on its share of each batch, with the
    one-process result (gh.distributed); outside torchrun, nothing of that runs.
    """
    data = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    meta = {"config": config or {}, "batch_size": batch_size, "seed": seed,
            "data": [[list(t.shape), str(t.dtype)] for t in data]}
    path = checkpoint_path(checkpoint) if checkpoint is not None else None
    ranks = join(data[0].device, batch_size)  # this process, alone or one of torchrun's
    if ranks.main and path is not None and history is None and path.exists():
        history = _resume(path, state, meta, epochs)
    history = ranks.from_main(state, history or History())
    history.stopped = None
    run = Run(step, data, state=state, epochs=epochs, batch_size=batch_size, history=history,
              eval_fn=eval_fn, path=path, meta=meta, checkpoint_every=checkpoint_every, seed=seed,
              shuffle=shuffle, eval_every=eval_every, desc=desc, amp=amp,
              watch=watcher(diagnose, history, eval_fn), ranks=ranks, plot=plot)
    if not run.running():  # nothing left to train: a finished checkpoint
        return run.loaded()
    run.start(progress)
    try:
        with run.sigint, ranks.failing(history):
            while run.running():
                batches = run.batches()
                while history.batch < len(batches) and run.train_step(batches[history.batch]):
                    pass
                if history.stopped is None:
                    run.end_epoch()
    except KeyboardInterrupt:
        run.interrupted()
    finally:
        run.close()
    return run.finish()


def trains_in_bf16(device: torch.device, modules) -> bool:
    """Does `fit` (amp=True) train these modules in bf16 autocast on `device`? Always on CUDA; on a
    CPU with native bf16 (AMX) only convolutional models, where it measured 1.6x (the GRUs and small
    MLPs of the course get slower, so they stay fp32), and not a module whose class says
    `cpu_bf16 = False` (the GANs: BENCHMARKS.md). Elsewhere float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    layers = [layer for m in modules for layer in m.modules()]
    return (device.type == "cpu" and any(isinstance(layer, nn.modules.conv._ConvNd) for layer in layers)
            and all(getattr(layer, "cpu_bf16", True) for layer in layers) and cpu_has_bf16())


def _autocast(device: torch.device, modules):
    """The autocast context `fit` steps in: bf16 where `trains_in_bf16` says so, else none."""
    if not trains_in_bf16(device, modules):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@torch.no_grad()
def _evaluate(eval_fn, modules) -> dict:
    with evaluating(*modules):
        out = eval_fn()
    return {k: float(v) for k, v in out.items()}


def _resume(path: Path, state: dict, meta: dict, epochs: int) -> History | None:
    """Load a compatible checkpoint into `state`; move an incompatible one aside."""
    try:
        payload = read_checkpoint(path)
        problems = mismatches(payload, state)
        if payload.get("meta") != meta:
            old = payload.get("meta") or {}
            problems += [_("{key} was {old!r}, now {new!r}").format(key=k, old=old.get(k), new=meta[k])
                         for k in meta if old.get(k) != meta[k]]
        hist = History.from_dict(payload["history"])
        if hist.epoch > epochs:
            problems.append(_("it was trained for {trained} epochs, {asked} asked now").format(
                trained=hist.epoch, asked=epochs))
    except CheckpointError as e:
        problems = [str(e)]
    if problems:
        stale = path.with_name(path.stem + ".stale" + path.suffix)
        os.replace(path, stale)
        print(_("{name} does not match this run ({problem}); training anew (the old file is kept as {stale}).").format(
            name=path.name, problem=problems[0], stale=stale.name))
        return None
    load_checkpoint(path, state)
    restore_rng(payload)
    if hist.epoch >= epochs:
        print(_("Loaded from {path} (trained {epochs} epochs in {seconds:.0f} s); delete the file to train again.")
              .format(path=path, epochs=hist.epoch, seconds=hist.seconds))
    else:
        print(_("Resuming from {path} at step {step} (epoch {epoch}).").format(
            path=path, step=hist.step, epoch=hist.epoch + 1))
    return hist


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = True) -> int:
    return n // batch_size if drop_last and n >= batch_size else math.ceil(n / batch_size)


def epochs_for(steps: int, n: int, batch_size: int) -> int:
    """Epochs that give about `steps` optimisation steps on n examples (at least 1).

    Chapters size training in steps so that the offline sample (4,000 digits) and full
    MNIST (60,000) cost about the same time.
    """
    return max(1, round(steps / steps_per_epoch(n, batch_size)))
