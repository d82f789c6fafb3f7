"""What a model costs: parameters, FLOPs counted by PyTorch (not estimated by hand), and the training
throughput of the course loop, measured; the course's models as workloads to measure side by side.

    work = gh.cost.course_workloads(mnist)       # name -> Workload (fresh, untrained models)
    gh.cost.flops_per_sample(work["DCGAN (ch. 03)"])
    gh.cost.throughput(work)                     # name -> samples/s, measured in turns

A FLOP here is one floating-point operation of a matrix product or a convolution: a multiply-add
counts 2, as in `torch.utils.flop_counter` and in papers. Element-wise work (activations, the
optimiser's update) is not counted; it is small next to the products, but it does take time.
"""
from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .classifier import CLASSIFIER_STEPS, build_classifier
from .conditional import CLASSES, build_cvae
from .gan import REFERENCE as _GAN
from .gan import build_dcgan, build_mlp_gan, scaled
from .i18n import _
from .runtime import pick
from .seq2seq import REFERENCE, build_seq2seq, greedy, reference_data
from .session import device as default_device
from .train import fit
from .vae import build_vae

GAN_STEPS = {name: cfg["steps"]["full"] for name, cfg in _GAN.items()}  # the chapters' full lengths (decay)


def parameters(*modules: nn.Module) -> int:
    """Number of trainable numbers in the modules."""
    return sum(p.numel() for m in modules for p in m.parameters())


def count_flops(fn: Callable, *args) -> int:
    """FLOPs of fn(*args) as PyTorch counts them (it runs fn once)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


@dataclass
class Workload:
    """One model's training step and generation, ready to be counted and timed.

    state: modules and optimisers as for `gh.fit`; step(batch) -> losses, as for `gh.fit`;
    data: a tensor or tuple of tensors (rows are cycled when more are needed);
    generate(n): what using the model costs (n samples, or n predictions).
    """

    name: str
    state: dict
    step: Callable
    data: torch.Tensor | tuple
    batch_size: int
    generate: Callable

    @property
    def modules(self) -> list:
        return [v for v in self.state.values() if isinstance(v, nn.Module)]

    def rows(self, n: int):
        """n rows of the data (cycled), as `fit` and `step` take them."""
        data = self.data if isinstance(self.data, tuple) else (self.data,)
        idx = torch.arange(n, device=data[0].device) % len(data[0])
        out = tuple(t[idx] for t in data)
        return out if isinstance(self.data, tuple) else out[0]


def flops_per_sample(work: Workload) -> dict:
    """Parameters, and FLOPs per sample of one training step (forward + backward) and of generation."""
    bs = work.batch_size
    train = count_flops(work.step, work.rows(bs)) / bs
    with torch.no_grad():
        gen = count_flops(work.generate, bs) / bs
    return {"params": parameters(*work.modules), "train_flops": train, "generate_flops": gen}


def _timed_fit(work: Workload, steps: int) -> float:
    """Seconds the course loop takes for `steps` steps (no evaluation, plot or checkpoint)."""
    with contextlib.redirect_stdout(io.StringIO()):  # fit prints one line per call
        hist = fit(work.step, work.rows(steps * work.batch_size), state=work.state, epochs=1,
                   batch_size=work.batch_size, plot=False, progress=False, shuffle=False)
    if hist.stopped:
        raise RuntimeError(_("{name}: training stopped: {reason}").format(name=work.name, reason=hist.stopped))
    return hist.seconds


def throughput(works: dict, steps: int = 20, warmup: int = 3, repeats: int = 3,
               seconds: float | None = None) -> dict:
    """Training samples per second of each workload through `gh.fit`, best of `repeats`.

    The workloads are measured in turns (A, B, C, A, B, C, ...), so that a burst of other work on
    a shared machine hits all of them alike, and the best round of each is kept (the one least
    disturbed). seconds: if given, each measurement runs about that long instead of `steps` steps.
    """
    best = {name: 0.0 for name in works}
    plan = {}
    for name, w in works.items():
        t = _timed_fit(w, warmup)  # first steps allocate memory and pick kernels: not counted
        plan[name] = max(2, round(seconds * warmup / max(t, 1e-6))) if seconds else steps
    for __ in range(repeats):
        for name, w in works.items():
            best[name] = max(best[name], plan[name] * w.batch_size / _timed_fit(w, plan[name]))
    return best


def matmul_rate(n: int = 1024, repeats: int = 5, device=None, dtype=torch.float32) -> float:
    """FLOP/s of an n x n matrix product (float32 unless `dtype`) on the device, best of `repeats`:
    the speed this machine reaches on the easiest possible work, a yardstick for the models."""
    dev = torch.device(device) if device is not None else default_device()
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    best = float("inf")
    for __ in range(repeats + 1):  # the first is a warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


# --- the course's models as workloads ----------------------------------------------------------

def vae_workload(mnist, latent_dim: int = 16, batch_size: int = 128, name: str = "VAE (ch. 02)") -> Workload:
    """Chapter 02's VAE as `gh.vae.build_vae` builds it, and its training step (negative ELBO,
    1-pixel shifts)."""
    state, step = build_vae(mnist.device, latent_dim)
    return Workload(name, state, step, mnist.train_x, batch_size, state["model"].sample)


def gan_workload(state: dict, step, data, batch_size: int = 64, name: str = "GAN") -> Workload:
    """A GAN's state and training step (`gh.gan.make_step`: one D and one G update per batch)."""
    return Workload(name, state, step, data, batch_size, state["G"].sample)


def dcgan_workload(mnist, width: int = 32, batch_size: int = 64, name: str | None = None) -> Workload:
    """Chapter 03's DCGAN at any width (32 is the chapter's), with the chapter's recipe: the model
    of the scaling curve."""
    state, step = build_dcgan(mnist.device, GAN_STEPS["gan_dcgan"], width=width)
    return gan_workload(state, step, scaled(mnist), batch_size, name or f"DCGAN width {width}")


def classifier_workload(mnist, batch_size: int = 128) -> Workload:
    """Chapter 03's MNIST classifier (its cross-entropy step with shifts); 'generating' is classifying."""
    state, step = build_classifier(mnist.device, pick(**CLASSIFIER_STEPS))
    model = state["model"]

    def classify(n):
        return model(mnist.test_x[torch.arange(n, device=mnist.device) % len(mnist.test_x)])

    return Workload("MNIST classifier (ch. 03)", state, step, (mnist.train_x, mnist.train_labels), batch_size,
                    classify)


def seq2seq_workload(data, attention: bool = True, batch_size: int = 128) -> Workload:
    """Chapter 04's date translator (teacher-forced cross-entropy step); generating is greedy
    decoding of test inputs."""
    state, step = build_seq2seq(data, attention, REFERENCE["size"])
    model = state["model"]

    def translate(n):
        s, lengths, __ = (t[:n] for t in data["test"])
        return greedy(model, s[:, :int(lengths.max())], lengths)

    name = "Seq2Seq + attention (ch. 04)" if attention else "Seq2Seq bottleneck (ch. 04)"
    return Workload(name, state, step, data["train"], batch_size, translate)


def course_workloads(mnist, dates=None) -> dict:
    """Every model of the course, fresh (untrained), with the chapters' sizes and batch sizes.

    dates: chapter 04's DateData (default: `gh.seq2seq.reference_data()`). Chapter 05's
    conditional VAE is included.
    """
    dates = dates or reference_data()
    works = [vae_workload(mnist),
             gan_workload(*build_mlp_gan(mnist.device, GAN_STEPS["gan_mlp"]), scaled(mnist), 64, "MLP GAN (ch. 03)"),
             dcgan_workload(mnist, 32, name="DCGAN (ch. 03)"),
             classifier_workload(mnist),
             seq2seq_workload(dates, attention=True),
             seq2seq_workload(dates, attention=False),
             _conditional_workload(mnist)]
    return {w.name: w for w in works}


def _conditional_workload(mnist, batch_size: int = 128) -> Workload:
    """Chapter 05's class-conditional VAE (its step: 1-pixel shifts); generating is drawing
    given digits."""
    state, step = build_cvae(mnist.device)

    def draw(n):
        return state["model"].sample(torch.arange(n, device=mnist.device) % CLASSES)

    return Workload("Conditional VAE (ch. 05)", state, step, (mnist.train_x, mnist.train_labels), batch_size, draw)
