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
