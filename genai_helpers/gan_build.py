"""Reference pieces for chapter 03's exercises, taken by the "⏭ take the reference" lines.

Each has the signature and the contract of its exercise, so that a student who skips one still
runs the rest of the chapter. The networks themselves are `gh.gan.DCGANGenerator` and
`gh.gan.DCGANDiscriminator`.
"""
from __future__ import annotations

import torch

from . import gan
from .losses import generator_loss_nonsaturating
from .metrics import frechet_distance as _frechet, mode_coverage


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Exercise 3.1: the non-saturating loss -mean(log D(G(z))) from D's logits."""
    return generator_loss_nonsaturating(fake_logits)


def discriminator_step(D, opt_d, real, fake) -> torch.Tensor:
    """Exercise 3.2: one update of D on real and (detached) fake samples; returns D's loss."""
    return gan.discriminator_step(D, opt_d, real, fake)["loss_D"]


def generator_step(D, opt_g, fake, loss_fn=generator_loss) -> torch.Tensor:
    """Exercise 3.3: one update of G through D's verdict on `fake` (only opt_g steps); returns G's loss."""
    opt_g.zero_grad(set_to_none=True)
    loss = loss_fn(D(fake).float())
    loss.backward()
    opt_g.step()
    return loss.detach()


def high_quality_counts(samples, centres, std) -> torch.Tensor:
    """Exercise 3.4: samples within 3 std of their nearest centre, counted per centre."""
    return mode_coverage(samples, centres, std, min_count=1)["counts"].to(samples.device)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> torch.Tensor:
    """Exercise 3.5: the squared Fréchet distance (the FID formula) between two Gaussians, as a tensor."""
    return torch.as_tensor(_frechet(mu1, sigma1, mu2, sigma2), dtype=torch.float64)


def reference_gan_step(G, D, opt_g, opt_d):
    """Exercise 3.8: the step function for `gh.fit`: both players in training mode, one D update
    on real and detached fakes, one non-saturating G update through D (only opt_g steps)."""
    inner = gan.make_step(G, D, opt_g, opt_d)

    def step(real):
        G.train()
        D.train()
        return inner(real)

    return step
