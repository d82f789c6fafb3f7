"""Loss terms the chapters share, in nats, reduced per example (summed over dimensions)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row: -1/2 sum(1 + logvar - mu^2 - exp(logvar))."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) of a Bernoulli decoder, summed over pixels: one number per image."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


# GAN losses from the discriminator's logits f(x), where D(x) = sigmoid(f(x)).
# softplus(-f) = -log D and softplus(f) = -log(1 - D), computed without rounding D to 0 or 1.

def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-(E[log D(x)] + E[log(1 - D(G(z)))]): binary cross-entropy, labels 1 (real) and 0 (fake)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 - D(G(z)))], the minimax form G minimises; its gradient vanishes when D wins."""
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(G(z))], Goodfellow et al.'s recommended generator loss."""
    return F.softplus(-fake_logits).mean()
