"""Train and cache every model the course uses, so that a class starts instantly; or train one
(`train`), under torchrun on several processes.

Each entry calls the same function its chapter calls (same settings, same checkpoint name), so
what `prepare` and `train` cache is exactly what the chapters load.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import time
from dataclasses import asdict

import torch

from .checkpoint import CheckpointError, checkpoint_folder, read_checkpoint
from .data import load_mnist
from .i18n import _
from .distributed import is_main, leave, quiet, traffic, world_size


def _model(module: str, function: str, takes_mnist: bool = True, **kw):
    """A function(mnist) that calls genai_helpers.<module>.<function> (imported only when used)."""
    def build(mnist):
        fn = getattr(importlib.import_module(f"genai_helpers.{module}"), function)
        return fn(mnist, **kw) if takes_mnist else fn(**kw)
    return build


# name -> (chapters that use it, function(mnist) that returns the cached or freshly trained model)
MODELS = {
    "vae16": ("02, 03, 05, 06, demo 05", _model("vae", "reference_vae", plot=False)),
    "vae2": ("02, demo 02", _model("vae", "reference_vae", latent_dim=2, plot=False)),
    "vae16-noshift": ("02", _model("vae", "reference_vae", shift=0, plot=False)),
    "vae16-article-loss": ("02", _model("vae", "reference_vae", recon="mse_mean", plot=False)),
    "vae16-no-kl": ("02", _model("vae", "reference_vae", beta=0.0, plot=False)),
    "classifier": ("02, 03, 05, 06", _model("classifier", "mnist_classifier")),
    "mlp-gan": ("03", _model("gan", "reference_mlp_gan", plot=False)),
    "dcgan": ("03, 06, demo 03", _model("gan", "reference_dcgan", plot=False)),
    "translator": ("04, 05, 06, demo 04", _model("seq2seq", "reference_translator", False, attention=True, plot=False)),
    "translator-bottleneck": ("04", _model("seq2seq", "reference_translator", False, attention=False, plot=False)),
    "translator-lists": ("04", _model("seq2seq", "list_translator", False, attention=True, plot=False)),
    "translator-lists-bottleneck": ("04", _model("seq2seq", "list_translator", False, attention=False, plot=False)),
    "cvae": ("05", _model("conditional", "reference_cvae", plot=False)),
}
ALIASES = {"vae": "vae16"}  # short names `train` also takes


def _checkpoints() -> dict:
    return {p: p.stat().st_mtime for p in checkpoint_folder().glob("*.pt")}


def prepare(names=None, out=print) -> list[dict]:
    """Load or train the named models (default: all); report per model what happened and where."""
    unknown = sorted(set(names or ()) - set(MODELS))
    if unknown:
        raise ValueError(_("unknown model(s) {unknown}; choose from: {models}").format(
            unknown=", ".join(unknown), models=", ".join(MODELS)))

    mnist = load_mnist()
    report = []
    for name in names or MODELS:
        chapters, build = MODELS[name]
        before, t = _checkpoints(), time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the training lines; the summary says it all
            build(mnist)
        seconds = time.perf_counter() - t
        written = sorted(str(p) for p, m in _checkpoints().items() if before.get(p) != m)
        row = {"model": name, "chapters": chapters, "trained": bool(written), "seconds": round(seconds, 1),
               "files": written}
        report.append(row)
        if written:
            what = _("trained in {seconds:.0f} s -> {files}").format(seconds=seconds, files=", ".join(written))
        else:
            what = _("cached ({seconds:.1f} s)").format(seconds=seconds)
        out(_("{name:22s} (chapters {chapters}): {what}").format(name=name, chapters=chapters, what=what))
    trained = sum(r["trained"] for r in report)
    out(_("{n} models ready in {folder} ({trained} trained now, {cached} already cached)").format(
        n=len(report), folder=checkpoint_folder(), trained=trained, cached=len(report) - trained))
    return report


def train(name: str, out=print) -> dict | None:
    """Train (or load) one model as its chapter does, with its training lines shown. Under torchrun
    every process calls this (gh.distributed): rank 0 prints, writes the checkpoint and returns
    what it did ({"model", "processes", "threads", "seconds", "runs", "all_reduce"}); the others
    return None."""
    name = ALIASES.get(name, name)
    if name not in MODELS:
        raise ValueError(_("unknown model {name!r}; choose from: {models}").format(
            name=name, models=", ".join([*ALIASES, *MODELS])))
    with quiet():  # the other ranks' lines would repeat rank 0's
        mnist = load_mnist()
        before, t = _checkpoints(), time.perf_counter()
        MODELS[name][1](mnist)
        seconds = time.perf_counter() - t
    processes = world_size()
    leave()
    if not is_main():
        return None
    runs = []
    for path in sorted(p for p, m in _checkpoints().items() if before.get(p) != m):
        try:
            hist = read_checkpoint(path)["history"]
        except CheckpointError:  # a side file (a GAN monitor's records)
            continue
        runs.append({"file": str(path), "steps": hist["step"], "seconds": hist["seconds"]})
    row = {"model": name, "processes": processes, "threads": torch.get_num_threads(),
           "seconds": round(seconds, 2), "runs": runs, "all_reduce": asdict(traffic)}
    what = (_(", ").join(_("{steps} steps in {seconds:.1f} s -> {file}").format(
        steps=r["steps"], seconds=r["seconds"], file=r["file"]) for r in runs)
            or _("cached in {folder}").format(folder=checkpoint_folder()))
    if processes > 1:
        out(_("{name} on {n} processes x {threads} threads: {what}").format(
            name=name, n=processes, threads=row["threads"], what=what))
    else:
        out(_("{name} on 1 process x {threads} threads: {what}").format(name=name, threads=row["threads"], what=what))
    return row
