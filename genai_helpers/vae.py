"""The reference VAE: a small convolutional encoder/decoder, its loss, sampling and the IWAE bound.

Losses are in nats per image: the Bernoulli decoder's negative log-likelihood summed over
the 784 pixels plus KL(q(z|x) || N(0, I)) summed over the latent dimensions.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from .classifier import random_shift
from .data import MNIST
from .losses import bernoulli_nll, gaussian_kl
from .diagnose import KL_ACTIVE_NATS, variety
from .distributed import per_example
from .runtime import expect_input, pick
from .train import History, adam, epochs_for, fit
from .i18n import _


# --- layer builders, shared with chapter 05's conditional VAE (lists, so state_dict keys stay flat) --

def conv_features(width: int = 32) -> list:
    """28x28 image -> two strided convs (28 -> 14 -> 7) with ReLU -> flat (2 * width * 49,) features."""
    c = width
    return [nn.Conv2d(1, c, 4, 2, 1), nn.ReLU(),  # 28 -> 14
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),  # 14 -> 7
            nn.Flatten()]


def latent_head(in_dim: int, hidden: int, latent_dim: int) -> list:
    """Features -> hidden (ReLU) -> mean and log-variance of q(z|x), concatenated (2 * latent_dim)."""
    return [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim)]


def conv_decoder(in_dim: int, hidden: int = 256, width: int = 32) -> list:
    """Code -> hidden -> (2 * width, 7, 7) -> transposed convs 7 -> 14 -> 28 -> Bernoulli logits."""
    c = width
    return [nn.Linear(in_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * c * 49), nn.ReLU(), nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(c, 1, 4, 2, 1)]  # 14 -> 28, logits


class VAE(nn.Module):
    """Encoder x -> (mu, logvar) of q(z|x); decoder z -> Bernoulli logits of p(x|z)."""

    def __init__(self, latent_dim: int = 16, width: int = 32, hidden: int = 256):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(*conv_features(width), *latent_head(2 * width * 49, hidden, latent_dim))
        self.decoder = nn.Sequential(*conv_decoder(latent_dim, hidden, width))

    def encode(self, x):
        """Parameters of q(z|x): mean and log-variance, each (B, latent_dim)."""
        expect_input(x, (None, 1, 28, 28), "VAE.encode", self)
        return self.encoder(x).chunk(2, dim=1)

    def decode(self, z):
        """Bernoulli logits of p(x|z), shape (B, 1, 28, 28)."""
        expect_input(z, (None, self.latent_dim), "VAE.decode", self)
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images from the prior: z ~ N(0, I), shown as pixel probabilities."""
        dev = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device="cpu").to(dev)
        return torch.sigmoid(self.decode(z))

    @torch.no_grad()
    def reconstruct(self, x):
        """Decode the posterior mean: pixel probabilities."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))


def reparameterize(mu, logvar):
    """z = mu + sigma * eps with eps ~ N(0, I): a sample that gradients can flow through.

    eps is torch.randn_like(mu); under torchrun, the rows one process would draw for these
    examples (gh.distributed.per_example)."""
    eps = per_example(lambda n: torch.randn(n, *mu.shape[1:], dtype=mu.dtype, device=mu.device), len(mu))
    return mu + torch.exp(0.5 * logvar) * eps


def objective(model: VAE, x, beta: float = 1.0, recon: str = "bce", y=None, terms: dict | None = None):
    """Per-image training loss and its two terms: (loss, reconstruction, KL).

    recon="bce" is the Bernoulli log-likelihood summed over pixels (the ELBO when beta=1);
    recon="mse_mean" is the article's mean squared error averaged over pixels (ERRATA 5).
    y: the labels, for a conditional model (chapter 05's model(x, y)).
    terms: a dict that receives "kl_per_dim", the KL of each latent dimension per image (B, d).
    """
    out = model(x) if y is None else model(x, y)
    logits, mu, logvar = (t.float() for t in out)  # the loss in fp32 under bf16 autocast
    if recon == "bce":
        rec = bernoulli_nll(logits, x)
    elif recon == "mse_mean":
        rec = (torch.sigmoid(logits) - x).pow(2).flatten(1).mean(1)
    else:
        raise ValueError(_("recon must be 'bce' or 'mse_mean', not {recon!r}").format(recon=recon))
    kl = gaussian_kl(mu, logvar)
    if terms is not None:
        terms["kl_per_dim"] = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    return rec + beta * kl, rec, kl


def neg_elbo(model: nn.Module, x, y=None, batch: int | None = None) -> torch.Tensor:
    """-ELBO per image in nats (one posterior sample), whatever loss the model was trained with.

    y: the labels, for a conditional model; batch: rows per forward pass (default: all at once).
    """
    if batch is None:
        return objective(model, x, y=y)[0]
    ys = y.split(batch) if y is not None else [None] * len(x.split(batch))
    return torch.cat([objective(model, xb, y=yb)[0] for xb, yb in zip(x.split(batch), ys)])


@torch.no_grad()
def iwae_bound(model: VAE, x, k: int = 100, batch: int = 100) -> torch.Tensor:
    """Negative importance-weighted bound -log (1/k sum_i p(x, z_i) / q(z_i|x)) per image.

    It is >= -log p(x) like the negative ELBO, and tighter (smaller) as k grows (Burda et al.
    2016); k=1 gives the negative ELBO.
    """
    out = []
    for xb in x.split(batch):
        mu, logvar = model.encode(xb)
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = q.sample((k,))  # (k, B, d)
        logits = model.decode(z.flatten(0, 1))
        log_px_z = -bernoulli_nll(logits, xb.repeat(k, 1, 1, 1)).view(k, -1)
        log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_w = log_px_z + log_pz - q.log_prob(z).sum(-1)
        out.append(-(torch.logsumexp(log_w, 0) - math.log(k)))
    return torch.cat(out)


def vae_step(model: VAE, opt, beta: float = 1.0, recon: str = "bce", shift: int = 1):
    """The step function for `gh.fit`: one Adam step on the mean negative ELBO of a batch of
    images, or of (images, labels) for a conditional model."""
    def step(batch):
        x, y = batch if isinstance(batch, tuple) else (batch, None)
        if shift:
            x = random_shift(x, shift)
        terms = {}
        loss, rec, kl = objective(model, x, beta, recon, y, terms)
        opt.zero_grad(set_to_none=True)
        loss.mean().backward()
        opt.step()
        # kl_active: share of latent dimensions carrying information (gh.diagnose, posterior collapse)
        active = (terms["kl_per_dim"].detach().mean(0) > KL_ACTIVE_NATS).float().mean()
        out = {"loss": loss.mean(), "reconstruction": rec.mean(), "kl": kl.mean(), "kl_active": active}
        if recon == "bce":  # the -ELBO whatever beta: what the evaluation's test_neg_elbo measures on new
            out["neg_elbo"] = (rec + kl).detach().mean()  # data (gh.diagnose compares like with like)
        return out

    return step


def build_vae(device, latent_dim: int = 16, beta: float = 1.0, recon: str = "bce", shift: int = 1,
              lr: float = 1e-3, seed: int = 0, fast: bool = True) -> tuple[dict, object]:
    """Chapter 02's VAE as the chapter trains it: (state for `gh.fit`, step). fast=False: plain
    `torch.optim.Adam` and contiguous memory (the textbook setup `bench` compares against)."""
    torch.manual_seed(seed)
    model = VAE(latent_dim).to(device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
    opt = adam(model.parameters(), lr=lr) if fast else torch.optim.Adam(model.parameters(), lr=lr)
    return {"model": model, "opt": opt}, vae_step(model, opt, beta, recon, shift)


def train_vae(mnist: MNIST, *, epochs: int, latent_dim: int = 16, beta: float = 1.0,
              recon: str = "bce", shift: int = 1, lr: float = 1e-3, batch_size: int = 128,
              name: str | None = None, seed: int = 0, plot: bool = True) -> tuple[VAE, History]:
    """Train a VAE on MNIST with the course loop; with `name`, the result is cached in data/.

    Evaluates the test negative ELBO (nats per image) after every epoch.
    """
    state, step = build_vae(mnist.device, latent_dim, beta, recon, shift, lr, seed)
    model = state["model"]

    def evaluate():
        return {"test_neg_elbo": neg_elbo(model, mnist.test_x).mean(),  # variety: gh.diagnose
                "variety": variety(model.sample(256, torch.Generator().manual_seed(0)), mnist.test_x)}

    config = dict(latent_dim=latent_dim, beta=beta, recon=recon, shift=shift, lr=lr,
                  data=mnist.source, model="VAE-conv-1")
    history = fit(step, mnist.train_x, state=state, epochs=epochs, batch_size=batch_size, eval_fn=evaluate,
                  checkpoint=name, config=config, seed=seed, desc=name or "VAE", plot=plot)
    return model, history


REFERENCE_STEPS = {16: {"full": 3100, "quick": 120}, 2: {"full": 1550, "quick": 120}}  # latent size -> steps


def reference_vae(mnist: MNIST, latent_dim: int = 16, plot: bool = True, **changes) -> tuple[VAE, History]:
    """Chapter 02's VAEs with their settings, cached so that later chapters, the demos and
    `python -m genai_helpers prepare` reuse them: the 16-D model, the 2-D one for the latent map,
    and variants of the 16-D one with some `train_vae` settings changed (e.g. shift=0,
    recon="mse_mean", beta=0.0), each under its own checkpoint name."""
    name = f"vae_latent{latent_dim}" + "".join(f"_{k}-{v}" for k, v in sorted(changes.items()))
    return train_vae(mnist, epochs=epochs_for(pick(**REFERENCE_STEPS[latent_dim]), len(mnist.train_x), 128),
                     latent_dim=latent_dim, name=name, plot=plot, **changes)
