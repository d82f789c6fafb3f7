"""Reference GANs for chapter 03: an MLP GAN for 2-D toy data, an MLP GAN and a DCGAN for MNIST,
their training steps, and cached reference models that later chapters reuse.

Generators output tanh values in [-1, 1] (MNIST is scaled to match); `sample` returns images
in [0, 1] like the VAE's. Discriminators return logits f(x), with D(x) = sigmoid(f(x)).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .checkpoint import checkpoint_path
from .classifier import mnist_classifier
from .data import MNIST
from .diagnose import Diagnostics, variety
from .distributed import is_main, per_example
from .losses import discriminator_loss, generator_loss_nonsaturating, generator_loss_saturating
from .metrics import classifier_features, evaluate_images, mode_coverage
from .runtime import evaluating, expect_input, pick
from .schedules import LinearDecay
from .train import History, adam, epochs_for, fit, steps_per_epoch
from .i18n import _

G_LOSSES = {"nonsaturating": generator_loss_nonsaturating, "saturating": generator_loss_saturating}


def _mlp(sizes, act) -> list:
    layers = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), act()]
    return layers[:-1]


class Generator(nn.Module):
    """Base class: `latent_dim`, `noise(n)` and `sample(n)` shared by all generators."""

    latent_dim: int

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n latent codes z ~ N(0, I) on the model's device (drawn on the CPU when seeded). Under
        torchrun, the codes one process would draw for these examples (gh.distributed)."""
        dev = next(self.parameters()).device
        if generator is None:
            return per_example(lambda k: torch.randn(k, self.latent_dim, device=dev), n)
        return torch.randn(n, self.latent_dim, generator=generator).to(dev)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples in eval mode; images are returned in [0, 1]."""
        with evaluating(self):
            x = self(self.noise(n, generator))
        return (x + 1) / 2 if x.dim() == 4 else x


class MLPGenerator(Generator):
    """z -> hidden layers (ReLU) -> out_dim; tanh and a 28x28 image shape when `image`."""

    def __init__(self, latent_dim: int = 2, hidden=(128, 128), out_dim: int = 2, image: bool = False):
        super().__init__()
        self.latent_dim = latent_dim
        layers = _mlp([latent_dim, *hidden, out_dim], nn.ReLU)
        if image:
            layers += [nn.Tanh(), nn.Unflatten(1, (1, 28, 28))]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        expect_input(z, (None, self.latent_dim), type(self).__name__, self)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """x (flattened) -> hidden layers (LeakyReLU 0.2) -> one logit per example."""

    def __init__(self, in_dim: int = 2, hidden=(128, 128)):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), *_mlp([in_dim, *hidden, 1], lambda: nn.LeakyReLU(0.2)))

    def forward(self, x):
        return self.net(x).squeeze(1)


class Packed(nn.Module):
    """PacGAN (Lin et al. 2018): the discriminator judges `pack` samples at once, concatenated.

    A generator that puts all its samples on one mode makes packs of near-identical points,
    which real packs almost never are, so collapse becomes visible to D. The pack is stacked
    along dimension 1 (features or channels), so `inner` takes pack times as many; the logits
    have batch / pack rows (the batch must divide by pack).
    """

    def __init__(self, inner: nn.Module, pack: int = 2):
        super().__init__()
        self.inner, self.pack = inner, pack

    def forward(self, x):
        if len(x) % self.pack:
            raise ValueError(_("PacGAN needs a batch size divisible by pack={pack}, got {n_x}").format(
                pack=self.pack, n_x=len(x)))
        return self.inner(x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:]))


class DCGANGenerator(Generator):
    """z -> linear -> (2w, 7, 7) -> transposed convs 7 -> 14 -> 28 with batch norm and ReLU,
    then a 3x3 conv to one channel and tanh."""

    # bf16 on a CPU made the DCGAN 1.6x faster but its FID worse (182 vs 165 after 3,000 steps,
    # 172 vs 147 after 4,000; BENCHMARKS.md): `gh.fit` keeps the GANs in fp32 on CPUs
    cpu_bf16 = False

    def __init__(self, latent_dim: int = 32, width: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        w = width
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 2 * w * 49, bias=False), nn.BatchNorm1d(2 * w * 49), nn.ReLU(),
            nn.Unflatten(1, (2 * w, 7, 7)),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),  # 14x14
            nn.ConvTranspose2d(w, w // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w // 2), nn.ReLU(),  # 28x28
            nn.Conv2d(w // 2, 1, 3, 1, 1), nn.Tanh())

    def forward(self, z):
        expect_input(z, (None, self.latent_dim), "DCGANGenerator", self)
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    """Strided convs 28 -> 14 -> 7 with LeakyReLU 0.2, dropout, one logit. No batch norm, so real
    and fake batches can share one forward pass."""

    cpu_bf16 = False  # fp32 on CPUs, see DCGANGenerator

    def __init__(self, width: int = 32, dropout: float = 0.3):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),  # 14x14
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),  # 7x7
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * w * 49, 1))

    def forward(self, x):
        expect_input(x, (None, 1, 28, 28), "DCGANDiscriminator", self)
        return self.net(x).squeeze(1)


# --- one training step: D on real and fake, then G through D ----------------------------------

def discriminator_step(D, opt_d, real, fake) -> dict:
    """One update of D: minimise -[log D(x) + log(1 - D(G(z)))], fakes detached from G."""
    logits = D(torch.cat([real, fake.detach()])).float()
    real_logits, fake_logits = logits[:len(logits) // 2], logits[len(logits) // 2:]
    loss = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    opt_d.step()
    return {"loss_D": loss.detach(), "D(x)": torch.sigmoid(real_logits.detach()).mean()}


def generator_step(D, opt_g, fake, loss: str = "nonsaturating") -> dict:
    """One update of G through D's verdict on its fakes (only G's optimiser steps)."""
    fake_logits = D(fake).float()
    g_loss = G_LOSSES[loss](fake_logits)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return {"loss_G": g_loss.detach(), "D(G(z))": torch.sigmoid(fake_logits.detach()).mean()}


BETAS = (0.5, 0.999)  # Adam's beta1 = 0.5 for both players (Radford et al. 2016)


def make_step(G, D, opt_g, opt_d, loss: str = "nonsaturating", total_steps: int = 0,
              decay: float = 0.0, monitor=None):
    """The step function for `gh.fit`: one D update and one G update per batch of real data.

    The fake batch is generated once and used twice: detached for D, with its graph for G.
    decay: over the last `decay` fraction of `total_steps`, both learning rates fall linearly
    to zero (`schedules.LinearDecay`), which damps the oscillations of the two-player game at
    the end of training.
    monitor: called as monitor(step) every monitor.every steps (e.g. an `MnistMonitor`); it is
    kept as `step.monitor`, which may also be set after the step is made.
    """
    if loss not in G_LOSSES:
        raise ValueError(_("loss must be one of {G_LOSSES}, not {loss!r}").format(G_LOSSES=sorted(G_LOSSES), loss=loss))

    def play(real):
        fake = G(G.noise(len(real)))
        return {**discriminator_step(D, opt_d, real, fake), **generator_step(D, opt_g, fake, loss)}

    return _scheduled(play, (opt_g, opt_d), total_steps, decay, monitor)


def _scheduled(play, optimizers, total_steps: int, decay: float, monitor):
    """`play` (one round of the game: play(real) -> losses) as the step `gh.fit` calls, with the
    learning-rate schedule and the monitor of `make_step` around it (the step counts the steps)."""
    schedule = LinearDecay(optimizers, max(1, total_steps), decay)

    def step(real):
        schedule()  # counts the steps (on from the optimiser's count when resumed), sets the rates
        out = play(real)
        if step.monitor is not None and schedule.done % step.monitor.every == 0:
            step.monitor(schedule.done)
        return out

    step.monitor = monitor
    return step


def train_gan(G, D, data, *, steps: int, batch_size: int = 64, lr: float = 2e-4, betas=BETAS,
              loss: str = "nonsaturating", decay: float = 0.0, monitor=None, eval_fn=None,
              name: str | None = None, config: dict | None = None, seed: int = 0, plot: bool = True,
              desc: str = "GAN", diagnose: bool = True, make_gan_step=None, amp: bool = True) -> History:
    """Train G and D on `data` (a tensor on the device) for about `steps` steps with `gh.fit`.

    Adam with beta1 = 0.5 for both players (Radford et al. 2016); see `make_step` for `decay`
    and `monitor`. make_gan_step: a round of the game of your own in place of `make_step`'s,
    make_gan_step(G, D, opt_g, opt_d) -> step(real) -> losses (chapter 03: your steps on the
    ring, the article's flowchart, D alone for a head start, Exercise 3.8); it replaces `loss`,
    and the schedule and the monitor still run around it. With `name` (a checkpoint), say in
    `config` what your step does, so that a cached run of another step is not loaded.
    amp: `gh.fit`'s (False: fp32 throughout).
    """
    opt_g = adam(G.parameters(), lr=lr, betas=betas)
    opt_d = adam(D.parameters(), lr=lr, betas=betas)
    epochs = epochs_for(steps, len(data), batch_size)
    total = epochs * steps_per_epoch(len(data), batch_size)
    if make_gan_step is None:
        step = make_step(G, D, opt_g, opt_d, loss, total, decay, monitor)
    else:
        step = _scheduled(make_gan_step(G, D, opt_g, opt_d), (opt_g, opt_d), total, decay, monitor)
    cfg = dict(lr=lr, betas=list(betas), loss=loss, decay=decay, **(config or {}))
    return fit(step, data, state={"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d}, epochs=epochs,
               batch_size=batch_size, eval_fn=eval_fn, checkpoint=name, config=cfg, seed=seed,
               desc=name or desc, plot=plot, amp=amp,
               diagnose=diagnose and Diagnostics(monitor=monitor or eval_fn))  # reads the monitor


def scaled(mnist: MNIST) -> torch.Tensor:
    """MNIST training images in [-1, 1], the range of a tanh generator."""
    return mnist.train_x * 2 - 1


# --- MNIST GANs: a monitor and the chapter's reference models, cached for later chapters -------

class MnistMonitor:
    """Called every `every` steps during training: classifier-FID (against `reference` features),
    Inception-Score-style score and smallest class share of `n` samples, and a row of images from
    fixed noise. `records` (one dict per call) and `grids` are saved beside the checkpoint."""

    def __init__(self, G, classifier, reference: torch.Tensor, every: int, n: int = 1000,
                 n_grid: int = 10, seed: int = 1):
        self.G, self.classifier, self.reference, self.every, self.n = G, classifier, reference, every, n
        self.z = G.noise(n_grid, torch.Generator().manual_seed(seed))
        self.seed = seed + 1
        self.records: list[dict] = []
        self.grids: list[torch.Tensor] = []

    @torch.no_grad()
    def __call__(self, step: int) -> dict:
        x = self.G.sample(self.n, torch.Generator().manual_seed(self.seed)).float()
        r = evaluate_images(self.classifier, x, self.reference)
        with evaluating(self.G):
            grid = ((self.G(self.z).float() + 1) / 2).clamp(0, 1).cpu()
        rec = {"step": step, "fid": r["fid"], "inception_score": r["inception_score"],
               "min_class_share": r["min_class_share"],
               "class_shares": r["class_shares"].tolist(),  # for gh.diagnose: which digits are missing
               "variety": _feature_variety(self.classifier, x, self.reference)}
        self.records = [x for x in self.records if x["step"] < step] + [rec]
        self.grids = self.grids[:len(self.records) - 1] + [grid]
        return rec

    def curve(self, key: str) -> tuple[list, list]:
        """(steps, values) of one recorded metric."""
        return [r["step"] for r in self.records], [r[key] for r in self.records]

    def save(self, path) -> None:
        torch.save({"records": self.records, "grids": self.grids}, path)

    def load(self, path) -> bool:
        """Read records saved beside a checkpoint; False if there are none."""
        if not Path(path).exists():
            return False
        saved = torch.load(path, map_location="cpu", weights_only=True)
        self.records, self.grids = saved["records"], saved["grids"]
        return True


@dataclass
class TrainedGAN:
    """A trained GAN: the generator, the discriminator, the loop's history and the monitor."""

    G: Generator
    D: nn.Module
    history: History
    monitor: MnistMonitor


REFERENCE = {  # steps (gh.pick's full and quick), batch size, learning rate, decay; sized for 2 CPU cores
    "gan_mlp": {"steps": {"full": 2400, "quick": 300}, "batch_size": 64, "lr": 1e-3, "decay": 0.3},
    "gan_dcgan": {"steps": {"full": 3000, "quick": 150}, "batch_size": 64, "lr": 1e-3, "decay": 0.3},
}
ARCHITECTURE = {"gan_mlp": "MLP-GAN-1", "gan_dcgan": "DCGAN-1"}  # in each checkpoint's config


def _build(name: str, G, D, total_steps: int, monitor, fast: bool):
    cfg = REFERENCE[name]
    make = adam if fast else torch.optim.Adam
    opt_g, opt_d = (make(m.parameters(), lr=cfg["lr"], betas=BETAS) for m in (G, D))
    step = make_step(G, D, opt_g, opt_d, "nonsaturating", total_steps, cfg["decay"], monitor)
    return {"G": G, "D": D, "opt_g": opt_g, "opt_d": opt_d}, step


def build_mlp_gan(device, total_steps: int, monitor=None, fast: bool = True) -> tuple[dict, object]:
    """Chapter 03's MLP GAN on MNIST as the chapter trains it: (state for `gh.fit`, step).

    total_steps: the training length, over whose last 30% the learning rates decay.
    fast=False: plain `torch.optim.Adam` (the textbook setup `bench` compares against)."""
    torch.manual_seed(0)
    G = MLPGenerator(64, (256, 512), 784, image=True).to(device)
    D = MLPDiscriminator(784, (512, 256)).to(device)
    return _build("gan_mlp", G, D, total_steps, monitor, fast)


def build_dcgan(device, total_steps: int, monitor=None, width: int = 32, fast: bool = True) -> tuple[dict, object]:
    """Chapter 03's DCGAN as the chapter trains it (lr 1e-3, beta1 0.5, the last 30% of
    `total_steps` decayed): (state for `gh.fit`, step). width: channels (32 is the chapter's;
    `gh.cost` scales it). fast=False: plain Adam and contiguous memory (the textbook setup)."""
    if not isinstance(width, int) or width < 2 or width % 2:
        raise ValueError(_("width must be an even number of channels >= 2, got {width!r}").format(width=width))
    torch.manual_seed(0)
    G, D = DCGANGenerator(32, width).to(device), DCGANDiscriminator(width).to(device)
    if fast:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    return _build("gan_dcgan", G, D, total_steps, monitor, fast)


def _reference(name: str, build, mnist: MNIST, plot: bool) -> TrainedGAN:
    cfg = REFERENCE[name]
    data, batch_size = scaled(mnist), cfg["batch_size"]
    steps = pick(**cfg["steps"])
    epochs = epochs_for(steps, len(data), batch_size)
    state, step = build(mnist.device, epochs * steps_per_epoch(len(data), batch_size))
    classifier = mnist_classifier(mnist)
    reference = classifier_features(classifier, mnist.train_x[:10_000])
    monitor = step.monitor = MnistMonitor(state["G"], classifier, reference, every=max(1, steps // 12))
    side = checkpoint_path(name).with_suffix(".monitor.pt")
    if not checkpoint_path(name).exists() or not monitor.load(side):
        monitor(0)
    recorded = len(monitor.records), monitor.records[-1]["step"]
    config = dict(lr=cfg["lr"], betas=list(BETAS), loss="nonsaturating", decay=cfg["decay"], model=ARCHITECTURE[name],
                  data=mnist.source)  # as train_gan writes it: the cached models still load
    hist = fit(step, data, state=state, epochs=epochs, batch_size=batch_size, checkpoint=name, config=config,
               desc=name, plot=plot)
    if monitor.records[-1]["step"] != hist.step:
        monitor(hist.step)  # the end of training
    if (len(monitor.records), monitor.records[-1]["step"]) != recorded and is_main():  # a cache hit: left alone
        monitor.save(side)
    return TrainedGAN(state["G"], state["D"], hist, monitor)


def reference_mlp_gan(mnist: MNIST, plot: bool = True) -> TrainedGAN:
    """Chapter 03's fixed MLP GAN on MNIST (cached in data/checkpoints; trains if absent)."""
    return _reference("gan_mlp", build_mlp_gan, mnist, plot)


def reference_dcgan(mnist: MNIST, plot: bool = True) -> TrainedGAN:
    """Chapter 03's DCGAN on MNIST (cached in data/checkpoints; trains if absent)."""
    return _reference("gan_dcgan", build_dcgan, mnist, plot)


class RingMonitor:
    """eval_fn for `gh.fit` on the ring of Gaussians: after every epoch, modes covered and the
    high-quality share of 2,500 samples from fixed noise; keeps the samples and D's verdict on a
    grid (`snapshots`) for plots. Call it once before training to record the starting point."""

    def __init__(self, G, D, centres: torch.Tensor, std: float = 0.02, n: int = 2500, lim: float = 3.0,
                 grid: int = 61, seed: int = 1):
        self.G, self.D, self.centres, self.std, self.lim = G, D, centres, std, lim
        self.z = G.noise(n, torch.Generator().manual_seed(seed))
        xs = torch.linspace(-lim, lim, grid)
        self.grid = torch.stack(torch.meshgrid(xs, xs.flip(0), indexing="xy"), -1).reshape(-1, 2)
        self.snapshots: list[dict] = []

    @torch.no_grad()
    def __call__(self) -> dict:
        x = self.G(self.z).float()
        r = mode_coverage(x, self.centres, self.std)
        surface = None
        if not isinstance(self.D, Packed):  # a packed D judges pairs, not single points
            n = int(len(self.grid) ** 0.5)
            dev = self.z.device
            surface = torch.sigmoid(self.D(self.grid.to(dev)).float()).view(n, n).cpu()
        self.snapshots.append({"samples": x.cpu(), "surface": surface, **r})
        return {"modes": r["modes"], "high_quality": r["high_quality"]}


def _feature_variety(classifier, images, reference_features) -> float:
    """gh.diagnose.variety in the classifier's feature space (the FID features): samples'
    mean pairwise distance over the real digits'."""
    return variety(classifier_features(classifier, images[:256]), reference_features)
