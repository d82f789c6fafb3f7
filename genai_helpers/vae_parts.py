"""Chapter 02's build exercises, as references: the encoder, the decoder and the training step.

A student who skips an exercise takes these instead (the line marked ⏭ in the exercise cell):
`ReferenceEncoder` and `ReferenceDecoder` are the reference VAE's layers (`vae.VAE`'s builders) behind
the interfaces the chapter asks for, and `reference_step` is the step function for `gh.fit`.
`PartsVAE` puts an encoder and a decoder together into a model with the reference VAE's methods
(`encode`, `decode`, `forward`, `sample`, `reconstruct`), so `vae.neg_elbo` and `vae.iwae_bound`
measure it like the reference.
"""
from __future__ import annotations

import torch
from torch import nn

from .losses import bernoulli_nll, gaussian_kl
from .vae import VAE, conv_decoder, conv_features, latent_head, reparameterize


class ReferenceEncoder(nn.Module):
    """x (B, 1, 28, 28) -> (mean, log-variance) of q(z|x), each (B, latent_dim): the reference layers."""

    def __init__(self, latent_dim: int = 16):
        super().__init__()
        self.net = nn.Sequential(*conv_features(), *latent_head(2 * 32 * 49, 256, latent_dim))

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


class ReferenceDecoder(nn.Module):
    """z (B, latent_dim) -> Bernoulli logits (B, 1, 28, 28): the reference layers."""

    def __init__(self, latent_dim: int = 16):
        super().__init__()
        self.net = nn.Sequential(*conv_decoder(latent_dim))

    def forward(self, z):
        return self.net(z)


def reference_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> dict:
    """One Adam step on the mean negative ELBO of a batch; model(x) -> (logits, mu, logvar)."""
    model.train()
    logits, mu, logvar = model(x)
    rec = bernoulli_nll(logits.float(), x).mean()
    kl = gaussian_kl(mu.float(), logvar.float()).mean()
    loss = rec + kl
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss": loss, "reconstruction": rec, "kl": kl}


class PartsVAE(VAE):
    """A VAE from an encoder x -> (mu, logvar) and a decoder z -> logits; `sample` and `reconstruct`
    are the reference VAE's own."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, sampler=reparameterize):
        nn.Module.__init__(self)  # not VAE.__init__: the layers are the student's
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim
        self.sampler = sampler

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encoder(x)
        return self.decoder(self.sampler(mu, logvar)), mu, logvar


__all__ = ["PartsVAE", "ReferenceDecoder", "ReferenceEncoder", "reference_step"]


def reference_neg_elbo(logits, x, mu, logvar):
    """-ELBO per image from the decoder's logits and q's parameters: reconstruction NLL + KL, shape (B,)."""
    return bernoulli_nll(logits, x) + gaussian_kl(mu, logvar)


__all__ += ["reference_neg_elbo"]
