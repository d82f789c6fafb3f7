"""Chapter 05's class-conditional VAE ("draw me a 7"), its cached reference model, and what is
measured on it: the classifier's accuracy on what comes out, and the style (slant, ink) that a
digit keeps when its label is changed.

    cvae, hist = gh.conditional.reference_cvae(mnist)     # trained once, cached in data/checkpoints
    sevens = cvae.sample(torch.full((16,), 7))            # 16 images of the digit 7, in [0, 1]
    gh.conditional.conditional_accuracy(classifier, sevens, torch.full((16,), 7))
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import MNIST
from .metrics import class_probs
from .runtime import pick
from .train import History, adam, epochs_for, fit
from .vae import conv_decoder, conv_features, latent_head, neg_elbo, reparameterize, vae_step
from .i18n import _

CLASSES = 10


def one_hot(labels, classes: int = CLASSES) -> torch.Tensor:
    """Integer labels (N,) -> float one-hot rows (N, classes); a clear error for anything else."""
    if not torch.is_tensor(labels):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(_("labels must be a 1-D tensor of integer digits 0..{last}, e.g. torch.tensor([7, 7, 3]); got "
                           "{labels_dtype} of shape {labels_shape}").format(
                               last=classes - 1, labels_dtype=labels.dtype, labels_shape=tuple(labels.shape)))
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(_("labels must be digits 0..{last}, got values from {low} to {high}").format(
                               last=classes - 1, low=int(labels.min()), high=int(labels.max())))
    return F.one_hot(labels.long(), classes).float()


class ConditionalVAE(nn.Module):
    """The reference VAE's networks, each also given the digit's label as a one-hot vector:
    encoder (x, y) -> q(z | x, y), decoder (z, y) -> Bernoulli logits of p(x | z, y).

    The label tells the decoder *which* digit to draw, so the code z is free to describe *how* it
    is drawn (slant, thickness, size): the style.
    """

    def __init__(self, latent_dim: int = 16, width: int = 32, hidden: int = 256, classes: int = CLASSES):
        super().__init__()
        self.latent_dim, self.classes = latent_dim, classes
        self.features = nn.Sequential(*conv_features(width))
        self.to_latent = nn.Sequential(*latent_head(2 * width * 49 + classes, hidden, latent_dim))
        self.decoder = nn.Sequential(*conv_decoder(latent_dim + classes, hidden, width))

    def _labels(self, y, n: int) -> torch.Tensor:
        dev = next(self.parameters()).device
        y = torch.as_tensor(y, device=dev)
        if y.dim() == 0:
            y = y.expand(n)
        if len(y) != n:
            raise ValueError(_("{n} images but {n_y} labels: give one label per image").format(n=n, n_y=len(y)))
        return one_hot(y, self.classes).to(dev)

    def encode(self, x, y):
        """Mean and log-variance of q(z | x, y), each (B, latent_dim)."""
        h = torch.cat([self.features(x), self._labels(y, len(x))], 1)
        return self.to_latent(h).chunk(2, dim=1)

    def decode(self, z, y):
        """Bernoulli logits of p(x | z, y), shape (B, 1, 28, 28)."""
        return self.decoder(torch.cat([z, self._labels(y, len(z))], 1))

    def forward(self, x, y):
        mu, logvar = self.encode(x, y)
        return self.decode(reparameterize(mu, logvar), y), mu, logvar

    @torch.no_grad()
    def sample(self, labels, generator: torch.Generator | None = None, temperature: float = 1.0):
        """One image per label, z ~ N(0, temperature^2 I); pixel probabilities in [0, 1]."""
        labels = torch.as_tensor(labels)
        dev = next(self.parameters()).device
        z = temperature * torch.randn(len(labels), self.latent_dim, generator=generator)
        return torch.sigmoid(self.decode(z.to(dev), labels.to(dev)))

    @torch.no_grad()
    def restyle(self, x, y, new_y):
        """Each digit x (label y) redrawn as the digit new_y in the same style: encode with the
        old label, decode the mean code with the new one."""
        mu, __ = self.encode(x, y)
        return torch.sigmoid(self.decode(mu, new_y))


def build_cvae(device, latent_dim: int = 16, shift: int = 1, lr: float = 1e-3, seed: int = 0,
               fast: bool = True) -> tuple[dict, object]:
    """Chapter 05's conditional VAE as the chapter trains it: (state for `gh.fit`, step); the step
    takes (images, labels) batches. fast=False: plain `torch.optim.Adam`."""
    torch.manual_seed(seed)
    model = ConditionalVAE(latent_dim).to(device)
    opt = adam(model.parameters(), lr=lr) if fast else torch.optim.Adam(model.parameters(), lr=lr)
    return {"model": model, "opt": opt}, vae_step(model, opt, shift=shift)


def train_cvae(mnist: MNIST, *, steps: int, latent_dim: int = 16, shift: int = 1, lr: float = 1e-3,
               batch_size: int = 128, name: str | None = None, seed: int = 0,
               plot: bool = True) -> tuple[ConditionalVAE, History]:
    """Train a conditional VAE on MNIST images and labels with the course loop (about `steps`
    steps); with `name` it is cached in data/checkpoints. Evaluates the test -ELBO each epoch."""
    state, step = build_cvae(mnist.device, latent_dim, shift, lr, seed)
    model = state["model"]

    def evaluate():
        return {"test_neg_elbo": neg_elbo(model, mnist.test_x, mnist.test_labels, batch=1000).mean()}

    epochs = epochs_for(steps, len(mnist.train_x), batch_size)
    config = {"latent_dim": latent_dim, "shift": shift, "lr": lr, "data": mnist.source, "model": "CVAE-conv-1"}
    history = fit(step, (mnist.train_x, mnist.train_labels), state=state,
                  epochs=epochs, batch_size=batch_size, eval_fn=evaluate, checkpoint=name, config=config,
                  seed=seed, desc=name or "conditional VAE", plot=plot)
    return model.eval(), history


REFERENCE_STEPS = {"full": 3100, "quick": 250}  # full: the same budget as chapter 02's 16-D VAE


def reference_cvae(mnist: MNIST, plot: bool = True) -> tuple[ConditionalVAE, History]:
    """Chapter 05's conditional VAE (16-D code + label); cached as data/checkpoints/cvae_latent16."""
    return train_cvae(mnist, steps=pick(**REFERENCE_STEPS), name="cvae_latent16", plot=plot)


# --- measuring what comes out -------------------------------------------------------------------

def accuracy_per_class(pred, requested, classes: int = CLASSES) -> torch.Tensor:
    """For each requested digit, the share of its images the classifier read as that digit:
    shape (classes,), NaN for a digit that was never requested."""
    pred, requested = torch.as_tensor(pred).cpu(), torch.as_tensor(requested).cpu()
    if pred.shape != requested.shape or pred.dim() != 1:
        raise ValueError(_("pred and requested must be two 1-D tensors of the same length, got shapes {pred_shape} and "
                           "{requested_shape}").format(
                               pred_shape=tuple(pred.shape), requested_shape=tuple(requested.shape)))
    asked = torch.bincount(requested, minlength=classes).double()
    right = torch.bincount(requested[pred == requested], minlength=classes).double()
    return right / asked.where(asked > 0, torch.nan)


@torch.no_grad()
def conditional_accuracy(classifier, images, requested) -> dict:
    """Does the model draw the digit it was asked for? The classifier reads every image.

    Returns {"accuracy": share read as the requested digit, "per_class": (10,) tensor,
    "confusion": (10, 10) counts, rows = requested, columns = read as}.
    """

    requested = torch.as_tensor(requested).cpu()
    if len(requested) != len(images):
        raise ValueError(_("{n_images} images but {n_requested} requested labels").format(
            n_images=len(images), n_requested=len(requested)))
    pred = class_probs(classifier, images).argmax(1)
    confusion = torch.bincount(requested * CLASSES + pred, minlength=CLASSES ** 2).view(CLASSES, CLASSES)
    return {"accuracy": (pred == requested).double().mean().item(),
            "per_class": accuracy_per_class(pred, requested), "confusion": confusion}


def _moments(images):
    x = torch.as_tensor(images).detach().double().cpu().flatten(0, -3)  # (N, H, W)
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=torch.float64)[:, None]
    cols = torch.arange(w, dtype=torch.float64)[None, :]
    mass = x.sum((1, 2)).clamp_min(1e-9)
    r0 = (x * rows).sum((1, 2)) / mass
    c0 = (x * cols).sum((1, 2)) / mass
    dr, dc = rows - r0[:, None, None], cols - c0[:, None, None]
    return x, dr, dc


def slant(images) -> torch.Tensor:
    """How far each digit leans, from its image moments: the horizontal shift of the ink per row
    upwards, mu_rc / mu_rr (0 = upright, > 0 = leaning right, like italics). Shape (N,)."""
    x, dr, dc = _moments(images)
    return -(x * dr * dc).sum((1, 2)) / (x * dr * dr).sum((1, 2)).clamp_min(1e-9)


def ink(images) -> torch.Tensor:
    """Total ink of each image (sum of its pixels), a proxy for stroke thickness. Shape (N,)."""
    return torch.as_tensor(images).detach().double().cpu().flatten(1).sum(1)


# --- references for chapter 05's build exercises ("take the reference" lines) --------------------

@torch.no_grad()
def draw(model, digit: int, n: int, temperature: float = 1.0) -> torch.Tensor:
    """Exercise 5.4's reference, "draw me a 7": n images of `digit` from any conditional model with
    `latent_dim` and `decode(z, labels)` -> logits. z ~ N(0, temperature^2 I); pixel probabilities."""
    dev = next(model.parameters()).device
    z = temperature * torch.randn(n, model.latent_dim).to(dev)
    labels = torch.full((n,), int(digit), dtype=torch.long, device=dev)
    return torch.sigmoid(model.decode(z, labels))


def cvae_step(model, opt):
    """Exercise 5.3's reference: the step function for `gh.fit`, one optimiser step on the mean
    negative ELBO of a batch (images, labels) of a conditional model (no augmentation)."""
    return vae_step(model, opt, shift=0)
