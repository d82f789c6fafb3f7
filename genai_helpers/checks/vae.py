"""Chapter 02's exercises: the pieces of the VAE."""
from __future__ import annotations

import math

import torch

from ..losses import bernoulli_nll, gaussian_kl
from .framework import Report, call, compare, _as_tensor, _require_callable


def _latent_cases():
    g = torch.Generator().manual_seed(0)
    return {
        "random mu and logvar, batch 4, 3 latent dims": (torch.randn(4, 3, generator=g),
                                                        torch.randn(4, 3, generator=g)),
        "q equal to the prior (mu=0, logvar=0)": (torch.zeros(2, 5), torch.zeros(2, 5)),
        "one latent dim, sigma=2": (torch.tensor([[0.0]]), torch.tensor([[math.log(4.0)]])),
    }


def check_kl(fn) -> None:
    """Exercise: kl_term(mu, logvar) -> KL(N(mu, diag sigma^2) || N(0, I)) per example, shape (B,)."""
    _require_callable(fn, "kl_term", "check_kl(kl_term)")
    r = Report("kl_term")
    for case, (mu, logvar) in _latent_cases().items():
        out, err = call(fn, mu.clone(), logvar.clone())
        if err:
            r.fail(case, err)
            continue
        ref = gaussian_kl(mu, logvar)
        terms = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        std = (0.5 * logvar).exp()
        mistakes = {
            "wrong sign: the KL divergence is never negative": -ref,
            "you averaged over the latent dimensions; sum them (a KL of independent dims adds up)":
                terms.mean(1),
            "one number per example expected: sum over dim=1 only, not over the batch": ref.sum(),
            "the mean over the batch: keep one KL per example, shape (B,)": ref.mean(),
            "forgot to sum: one KL per example, shape (B,), summed over the latent dims": terms,
            "you used sigma (exp(logvar/2)) where the formula has sigma^2 = exp(logvar)":
                -0.5 * (1 + logvar - mu.pow(2) - std).sum(1),
            "the factor 1/2 is missing": 2 * ref,
        }
        why = compare(out, ref, mistakes, "one KL per example, shape (B,)")
        if why:
            if case.startswith("one latent") and not why.startswith("expected shape"):
                why += f" (for mu=0, sigma=2 the KL is {ref.item():.4f} nats)"
            r.fail(case, why)
        else:
            r.ok(case)
    return r.finish()


def check_reparameterize(fn) -> None:
    """Exercise: reparameterize(mu, logvar) -> z = mu + sigma * eps, differentiable in mu and logvar."""
    _require_callable(fn, "reparameterize", "check_reparameterize(reparameterize)")
    r = Report("reparameterize")
    n = 200_000
    mu = torch.full((n, 1), 1.5, requires_grad=True)
    logvar = torch.full((n, 1), math.log(0.25), requires_grad=True)  # sigma = 0.5
    torch.manual_seed(0)
    z, err = call(fn, mu, logvar)
    if err is None:
        z, err = _as_tensor(z, "the sample z")
    if err:
        r.fail("sampling", err)
        return r.finish()
    if z.shape != mu.shape:
        r.fail("shape", f"z must have the shape of mu {tuple(mu.shape)}, got {tuple(z.shape)}")
        return r.finish()
    m, s = z.detach().mean().item(), z.detach().std().item()
    if s < 1e-6:
        r.fail("randomness", "z does not vary: add sigma * eps with eps = torch.randn_like(mu)")
    elif abs(s - 0.25) < 0.01:
        r.fail("spread", "z has standard deviation 0.25 = sigma^2: use sigma = exp(0.5 * logvar)")
    elif abs(s - math.log(0.25)) < 0.02 or abs(s - abs(math.log(0.25))) < 0.02:
        r.fail("spread", "z's spread equals logvar: the scale is sigma = exp(0.5 * logvar)")
    elif abs(s - 0.5) > 0.01:
        r.fail("spread", f"z should have standard deviation sigma = 0.5 here, got {s:.3f}")
    else:
        r.ok("spread is sigma")
    if abs(m - 1.5) > 0.01:
        r.fail("mean", f"z should have mean mu = 1.5 here, got {m:.3f}")
    else:
        r.ok("mean is mu")
    if not z.requires_grad:
        r.fail("gradient", "no gradient reaches mu and logvar: build z from mu and logvar with "
                           "ordinary operations (no .sample(), .detach() or torch.normal)")
    else:
        z.sum().backward()
        if mu.grad is None or not torch.allclose(mu.grad, torch.ones_like(mu)):
            r.fail("gradient", "dz/dmu should be 1: z = mu + sigma * eps")
        elif logvar.grad is None or not torch.allclose(logvar.grad, 0.5 * (z - mu).detach(), atol=1e-5):
            r.fail("gradient", "dz/dlogvar should be 0.5 * sigma * eps: is sigma = exp(0.5 * logvar)?")
        else:
            r.ok("gradients flow to mu and logvar")
    return r.finish()


def _pixel_cases():
    g = torch.Generator().manual_seed(1)
    return {
        "batch of 3 grey-level images": (torch.randn(3, 1, 28, 28, generator=g),
                                         torch.rand(3, 1, 28, 28, generator=g)),
        "binary images, confident logits": (4 * torch.randn(2, 1, 28, 28, generator=g),
                                            (torch.rand(2, 1, 28, 28, generator=g) > 0.5).float()),
    }


def check_reconstruction(fn) -> None:
    """Exercise: reconstruction_term(logits, x) -> -log p(x|z), Bernoulli, summed over pixels, (B,)."""
    _require_callable(fn, "reconstruction_term", "check_reconstruction(reconstruction_term)")
    r = Report("reconstruction_term")
    for case, (logits, x) in _pixel_cases().items():
        out, err = call(fn, logits.clone(), x.clone())
        if err:
            r.fail(case, err)
            continue
        ref = bernoulli_nll(logits, x)
        p = torch.sigmoid(logits)
        per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
        mistakes = {
            "you averaged over the 784 pixels: sum them (the article's mean makes the "
            "reconstruction term 784 times weaker than the KL)": per_pixel.flatten(1).mean(1),
            "wrong sign: a negative log-likelihood is positive here": -ref,
            "one number per image expected, not the sum over the batch": ref.sum(),
            "one number per image expected, not the batch mean": ref.mean(),
            "the input is logits: use binary_cross_entropy_with_logits (or apply sigmoid first)":
                torch.nn.functional.binary_cross_entropy(
                    logits.clamp(1e-6, 1 - 1e-6), x, reduction="none").flatten(1).sum(1),
            "that is the squared error, not the Bernoulli negative log-likelihood":
                (p - x).pow(2).flatten(1).sum(1),
            "that is the mean squared error (the article's formula), not the Bernoulli "
            "negative log-likelihood": (p - x).pow(2).flatten(1).mean(1),
            "forgot to sum over pixels: one number per image, shape (B,)": per_pixel,
            "PyTorch's default reduction='mean' averages over pixels and images: pass "
            "reduction='none' and sum over the pixels of each image": per_pixel.mean(),
        }
        why = compare(out, ref, mistakes, "one number per image, shape (B,)", atol=1e-3)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_neg_elbo(fn) -> None:
    """Exercise: neg_elbo(logits, x, mu, logvar) -> reconstruction + KL per image, shape (B,)."""
    _require_callable(fn, "neg_elbo", "check_neg_elbo(neg_elbo)")
    r = Report("neg_elbo")
    g = torch.Generator().manual_seed(2)
    logits, x = torch.randn(3, 1, 28, 28, generator=g), torch.rand(3, 1, 28, 28, generator=g)
    mu, logvar = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    out, err = call(fn, logits, x, mu, logvar)
    if err:
        r.fail("batch of 3", err)
        return r.finish()
    rec, kl = bernoulli_nll(logits, x), gaussian_kl(mu, logvar)
    ref = rec + kl
    mistakes = {
        "the KL is subtracted: -ELBO = reconstruction NLL + KL": rec - kl,
        "that is the ELBO itself; the loss to minimise is its negative": -(rec + kl),
        "the KL term is missing (that is a plain autoencoder's loss)": rec,
        "the reconstruction term is missing": kl,
        "the reconstruction term is averaged over pixels instead of summed":
            rec / 784 + kl,
        "one number per image expected, not the batch mean": ref.mean(),
        "one number per image expected, not the batch sum": ref.sum(),
    }
    why = compare(out, ref, mistakes, "one -ELBO per image, shape (B,)", atol=1e-3)
    r.fail("batch of 3", why) if why else r.ok("reconstruction + KL per image")
    return r.finish()
