"""Exercise checkers: run a student's function on several cases and say, in plain words, what is
wrong (wrong sign, mean instead of sum, transposed shape, ...), never a bare AssertionError.

Every checker prints a verdict. When something fails it raises `CheckFailed`, whose traceback
in Jupyter is just the verdict, so "Run all" stops at the first unfinished exercise.
"""
from __future__ import annotations

import copy
import math

import torch

from .losses import bernoulli_nll, gaussian_kl


class CheckFailed(Exception):
    """An exercise is not right yet; Jupyter shows only the message, no traceback."""

    def _render_traceback_(self):
        return str(self).splitlines()


class Report:
    """Collects what passed and what failed for one exercise."""

    def __init__(self, name: str):
        self.name, self.passed, self.failures = name, [], []

    def ok(self, case: str):
        self.passed.append(case)

    def fail(self, case: str, why: str):
        self.failures.append(f"{case}: {why}")

    def finish(self) -> None:
        """Print the verdict; raise CheckFailed if anything failed."""
        total = len(self.passed) + len(self.failures)
        if not self.failures:
            print(f"✅ {self.name}: all {total} checks passed ({'; '.join(self.passed)}).")
            return
        lines = [f"❌ {self.name}: {len(self.failures)} of {total} checks failed."]
        lines += [f"   - {f}" for f in self.failures]
        if self.passed:
            lines.append(f"   passed: {'; '.join(self.passed)}")
        raise CheckFailed("\n".join(lines))


def _require_callable(fn, name: str, example: str):
    if not callable(fn):
        raise CheckFailed(f"❌ {name}: pass your function itself, e.g. {example} "
                          f"(got {type(fn).__name__}: {fn!r:.60}).")


def call(fn, *args):
    """Run the student's function; return (output, None) or (None, message about the error)."""
    try:
        return fn(*args), None
    except NotImplementedError as e:
        hint = f" Hint: {e}" if str(e) else ""
        return None, f"not implemented yet: replace `raise NotImplementedError` with your code.{hint}"
    except Exception as e:  # the student's bug, reported as a sentence
        return None, f"your function raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _as_tensor(out, what: str):
    if isinstance(out, (tuple, list)):
        return None, f"return one tensor ({what}), not a {type(out).__name__} of {len(out)} items"
    if not torch.is_tensor(out):
        return None, f"return a torch tensor ({what}), not {type(out).__name__}"
    return out, None


def compare(out, ref, mistakes: dict, what: str, atol=1e-4, rtol=1e-4) -> str | None:
    """None if `out` matches `ref`; else the probable mistake, found among `mistakes`.

    mistakes: description -> the tensor that mistake would produce.
    """
    out, err = _as_tensor(out, what)
    if err:
        return err
    if out.shape != ref.shape:
        for desc, wrong in mistakes.items():
            if torch.is_tensor(wrong) and wrong.shape == out.shape and torch.allclose(
                    out.detach().float(), wrong.float(), atol=atol, rtol=rtol):
                return f"expected shape {tuple(ref.shape)} but got {tuple(out.shape)}: {desc}"
        if out.dim() == ref.dim() == 2 and out.shape == ref.shape[::-1]:
            return (f"expected shape {tuple(ref.shape)} but got {tuple(out.shape)}: "
                    "the two dimensions are swapped")
        return f"expected shape {tuple(ref.shape)} ({what}) but got {tuple(out.shape)}"
    out = out.detach().float()
    if torch.allclose(out, ref.float(), atol=atol, rtol=rtol):
        return None
    if not torch.isfinite(out).all():
        return "the result contains nan or inf"
    for desc, wrong in mistakes.items():
        if torch.is_tensor(wrong) and wrong.shape == out.shape and torch.allclose(
                out, wrong.float(), atol=atol, rtol=rtol):
            return desc
    err = (out - ref).abs().max().item()
    return f"the values are off (largest difference {err:.3g}); compare your formula with the text"


# --- chapter 00: the warm-up -----------------------------------------------------------------

def check_to_unit(fn) -> None:
    """Exercise 0.1: to_unit(uint8 images) -> float32 images in [0, 1], same shape."""
    _require_callable(fn, "to_unit", "check_to_unit(to_unit)")
    r = Report("to_unit")
    g = torch.Generator().manual_seed(0)
    cases = {"a batch of 4 random byte images": torch.randint(0, 256, (4, 1, 28, 28), generator=g,
                                                             dtype=torch.uint8),
             "black and white extremes": torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8)}
    for case, x in cases.items():
        out, err = call(fn, x.clone())
        if err:
            r.fail(case, err)
            continue
        ref = x.float() / 255
        why = compare(out.float() if torch.is_tensor(out) else out, ref, {
            "divide by 255, the largest byte value, not 256 (white must become exactly 1.0)":
                x.float() / 256,
            "integer division (//) rounds everything down to 0 or 1: divide floats with /":
                (x // 255).float(),
            "the values are still 0..255: divide by 255": x.float(),
        }, "same shape as the input", atol=1e-6)
        if why is None and out.dtype != torch.float32:
            why = f"the values are right but the dtype is {out.dtype}; use .float() (float32)"
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


# --- chapter 02: the VAE ----------------------------------------------------------------------

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


# --- chapter 01: the mathematics -------------------------------------------------------------

def _kl_normal(m1, s1, m2, s2):
    return torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5


def check_kl_normal(fn) -> None:
    """Exercise 1.1: kl_normal(mu1, sigma1, mu2, sigma2) = KL(N(mu1, sigma1^2) || N(mu2, sigma2^2))."""
    _require_callable(fn, "kl_normal", "check_kl_normal(kl_normal)")
    r = Report("kl_normal")
    g = torch.Generator().manual_seed(0)
    cases = {
        "N(0, 1) against N(0, 2²)": ([0.0], [1.0], [0.0], [2.0]),
        "mu=0, sigma=2 against N(0, 1)": ([0.0], [2.0], [0.0], [1.0]),
        "identical distributions N(1, 0.5²)": ([1.0], [0.5], [1.0], [0.5]),
        "a batch of 5 random pairs": (torch.randn(5, generator=g), torch.rand(5, generator=g) + 0.3,
                                      torch.randn(5, generator=g), torch.rand(5, generator=g) + 0.3),
    }
    for case, args in cases.items():
        m1, s1, m2, s2 = (torch.as_tensor(a, dtype=torch.float32) for a in args)
        out, err = call(fn, m1.clone(), s1.clone(), m2.clone(), s2.clone())
        if err:
            r.fail(case, err)
            continue
        ref, dm2 = _kl_normal(m1, s1, m2, s2), (m1 - m2) ** 2
        log_ratio = torch.log(s2 / s1)
        mistakes = {
            "you computed KL(second ‖ first): the expectation is over the first distribution, "
            "and KL is not symmetric": _kl_normal(m2, s2, m1, s1),
            "check the sign of the log term: it is +log(σ2/σ1)": -log_ratio + (ref - log_ratio),
            "the fraction needs variances, (σ1² + (μ1 − μ2)²) / (2σ2²), not σ1 and σ2":
                log_ratio + (s1 + dm2) / (2 * s2) - 0.5,
            "the log term is log(σ2/σ1) = ½ log(σ2²/σ1²); you used log(σ2²/σ1²)": ref + log_ratio,
            "the constant −½ is missing (the KL of a distribution with itself must be 0)": ref + 0.5,
            "the factor ½ in front of the fraction is missing": log_ratio + (s1 ** 2 + dm2) / s2 ** 2 - 0.5,
        }
        out = _scalar(out)
        why = compare(out, ref, mistakes, "one KL per pair, the shape of the inputs", atol=1e-4)
        if why and torch.is_tensor(out) and out.shape == ref.shape and (out.detach() < -1e-6).any():
            why += (f" (your KL is negative, {out.detach().min().item():.3f}, for {case}; "
                    "a KL divergence is never negative)")
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def _scalar(out):
    """A Python number becomes a 0-dim tensor (exercises that return one number accept both)."""
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return torch.tensor(float(out))
    return out


def check_elbo_estimate(fn) -> None:
    """Exercise 1.2: elbo_estimate(log_joint, q, z) = mean over samples of log p(x, z) - log q(z)."""
    from torch.distributions import Normal

    from .maths import LinearGaussian

    _require_callable(fn, "elbo_estimate", "check_elbo_estimate(elbo_estimate)")
    r = Report("elbo_estimate")
    g = torch.Generator().manual_seed(3)
    model = LinearGaussian(torch.randn(4, 2, generator=g, dtype=torch.float64),
                           torch.zeros(4, dtype=torch.float64), 0.7)
    x = torch.randn(4, generator=g, dtype=torch.float64)
    log_px = model.marginal().log_prob(x).item()
    post = model.posterior(x)
    cases = {"q far from the posterior": (torch.tensor([1.5, -1.0]), torch.tensor([0.3, 2.0])),
             "q close to the posterior": (post.mean.float(), post.covariance_matrix.diagonal().sqrt().float())}
    for case, (mu, std) in cases.items():
        q = Normal(mu.double(), std.double())
        z = mu.double() + std.double() * torch.randn(2000, 2, generator=g, dtype=torch.float64)
        out, err = call(fn, lambda z_: model.log_joint(x, z_), q, z.clone())
        if err and "must match the size" in err:
            err += (" (q.log_prob(z) has one value per latent dimension, shape (n, k): sum it over "
                    "the last dimension to get log q(z), shape (n,))")
        if err:
            r.fail(case, err)
            continue
        lj, lq = model.log_joint(x, z), q.log_prob(z)
        lw = lj - lq.sum(-1)
        ref = lw.mean()
        mistakes = {
            "log q(z) is missing: the ELBO is the average of log p(x, z) − log q(z)": lj.mean(),
            f"wrong sign: the ELBO is a lower bound on log p(x) (here log p(x) = {log_px:.2f})": -ref,
            "sum log q(z) over the latent dimensions (q.log_prob(z).sum(-1)) before subtracting":
                (lj[:, None] - lq).mean(),
            "that is the log of the mean of the weights (the IWAE bound, tighter than the ELBO); "
            "the ELBO is the mean of the logs": torch.logsumexp(lw, 0) - math.log(len(lw)),
            "you summed over the samples: average them (a Monte Carlo estimate is a mean)": lw.sum(),
            "you returned one value per sample: average them into one number": lw,
        }
        why = compare(_scalar(out), ref, mistakes, "one number", atol=1e-3, rtol=1e-5)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_score_function_grad(fn) -> None:
    """Exercise 1.3: score_function_grad(f, z, mu, sigma) = mean of f(z) (z - mu) / sigma^2."""
    _require_callable(fn, "score_function_grad", "check_score_function_grad(score_function_grad)")
    r = Report("score_function_grad")
    g = torch.Generator().manual_seed(4)
    cases = {"f(z) = z², μ = 1, σ = 0.5": (lambda z: z ** 2, 1.0, 0.5),
             "f(z) = sin z, μ = −0.3, σ = 2": (torch.sin, -0.3, 2.0),
             "f(z) = 1 if z > 0 else 0 (not differentiable), μ = 0.2, σ = 1.5":
                 (lambda z: (z > 0).float(), 0.2, 1.5)}
    for case, (f, mu, sigma) in cases.items():
        z = mu + sigma * torch.randn(4000, generator=g)
        out, err = call(fn, f, z.clone(), mu, sigma)
        if err:
            r.fail(case, err)
            continue
        per_sample = f(z) * (z - mu) / sigma ** 2
        ref = per_sample.mean()
        mistakes = {
            "divide by the variance σ², not by σ: ∂/∂μ log N(z; μ, σ²) = (z − μ)/σ²":
                (f(z) * (z - mu) / sigma).mean(),
            "the score alone averages to zero: multiply it by f(z)": ((z - mu) / sigma ** 2).mean(),
            "wrong sign: the score is (z − μ)/σ², not (μ − z)/σ²": -ref,
            "that is the average of f(z), the objective, not its gradient": f(z).mean(),
            "you summed over the samples: average them": per_sample.sum(),
            "you returned one estimate per sample: average them into one number": per_sample,
        }
        why = compare(_scalar(out), ref, mistakes, "one number", atol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_gan_value(fn) -> None:
    """Exercise 1.4: gan_value(real_logits, fake_logits) = E[log D(x)] + E[log(1 - D(G(z)))]."""
    _require_callable(fn, "gan_value", "check_gan_value(gan_value)")
    r = Report("gan_value")
    ls = torch.nn.functional.logsigmoid
    g = torch.Generator().manual_seed(5)
    cases = {"random logits, batch of 64": (2 * torch.randn(64, generator=g), 2 * torch.randn(64, generator=g)),
             "a confidently wrong discriminator (logits ±200, where sigmoid rounds to 0 or 1)":
                 (torch.tensor([-200.0, -150.0, 3.0]), torch.tensor([200.0, 120.0, -2.0]))}
    for case, (real, fake) in cases.items():
        out, err = call(fn, real.clone(), fake.clone())
        if err:
            r.fail(case, err)
            continue
        out = _scalar(out)
        rd, fd = real.double(), fake.double()
        ref = ls(rd).mean() + ls(-fd).mean()
        if torch.is_tensor(out) and out.numel() == 1 and not torch.isfinite(out).all():
            r.fail(case, f"got {out.item()}: log(sigmoid(f)) rounds to log(0) for confident logits. "
                         "Compute from the logits: log D = F.logsigmoid(f) and log(1 − D) = "
                         "F.logsigmoid(-f) (the article's sigmoid-then-log is what ERRATA 12 warns about)")
            continue
        dd = torch.sigmoid(torch.sigmoid(rd)), torch.sigmoid(torch.sigmoid(fd))
        mistakes = {
            "that is the discriminator's loss (binary cross-entropy), the negative of V; V is what "
            "D maximises": -ref,
            "the second term is log(1 − D(G(z))), not log D(G(z))": ls(rd).mean() + ls(fd).mean(),
            "real and fake are swapped: log D(·) goes with the real logits": ls(fd).mean() + ls(-rd).mean(),
            "a sigmoid applied twice: D = sigmoid(logit), the network's output is already the logit":
                dd[0].log().mean() + (1 - dd[1]).log().mean(),
            "you summed over the batch: V is made of expectations, take means": ls(rd).sum() + ls(-fd).sum(),
            "V is the sum of the two expectations, not their average": ref / 2,
        }
        why = compare(out, ref, mistakes, "one number", atol=1e-3, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_attention(fn) -> None:
    """Exercise 1.5: attention(query, keys, values, temperature) -> (context (B, dv), weights (B, T))."""
    _require_callable(fn, "attention", "check_attention(attention)")
    r = Report("attention")
    g = torch.Generator().manual_seed(6)
    cases = {"B=2, T=5, d=4, values of size 3, temperature 1": (2, 5, 4, 3, 1.0),
             "B=3, T=6, d=4, values of size 3, temperature 0.5": (3, 6, 4, 3, 0.5),
             "B=2, T=4, d=4, values of size 4, temperature 2": (2, 4, 4, 4, 2.0)}
    for case, (b, t, d, dv, tau) in cases.items():
        q, k = torch.randn(b, d, generator=g), torch.randn(b, t, d, generator=g)
        v = torch.randn(b, t, dv, generator=g)
        out, err = call(fn, q.clone(), k.clone(), v.clone(), tau)
        if err is None and not (isinstance(out, (tuple, list)) and len(out) == 2):
            err = f"return two tensors, (context, weights); got {type(out).__name__}"
        if err:
            r.fail(case, err)
            continue
        context, weights = out
        s = torch.einsum("bd,btd->bt", q, k)
        ref_w = torch.softmax(s / tau, -1)
        why = compare(weights, ref_w, {
            "softmax over dim 0 (the batch): each query's weights must sum to 1 over the T keys "
            "(softmax over dim=-1)": torch.softmax(s / tau, 0),
            "the weights are raw scores: apply softmax over the keys": s / tau,
            "the weights are raw scores (and not divided by the temperature): apply softmax": s,
            "the temperature multiplies the scores: divide by it, softmax(scores / temperature)":
                torch.softmax(s * tau, -1),
            "the temperature is ignored: softmax(scores / temperature)": torch.softmax(s, -1),
            "you divided by √d (the Transformer's scaling); here the score is q·k / temperature":
                torch.softmax(s / tau / math.sqrt(d), -1),
        }, "weights, shape (B, T)")
        if why:
            r.fail(case, f"weights: {why}")
            continue
        ref_c = torch.einsum("bt,btv->bv", ref_w, v)
        why = compare(context, ref_c, {
            "the context is the weighted sum of the values, not of the keys":
                torch.einsum("bt,btv->bv", ref_w, k),
            "the context is the plain mean of the values: weight each value by its attention weight":
                v.mean(1),
            "sum over the keys (dim 1) to get one context vector per query, shape (B, dv)":
                ref_w[..., None] * v,
        }, "context, shape (B, dv)")
        r.fail(case, f"context: {why}") if why else r.ok(case)
    return r.finish()


# --- chapter 04: the attention Seq2Seq --------------------------------------------------------

def _pair(out, names: str):
    """(None, message) unless `out` is a tuple of len(names.split(', ')) tensors."""
    n = len(names.split(", "))
    if not isinstance(out, (tuple, list)) or len(out) != n:
        return f"return {n} tensors, ({names}); got {type(out).__name__}" + (
            f" of {len(out)} items" if isinstance(out, (tuple, list)) else "")
    bad = [type(o).__name__ for o in out if not torch.is_tensor(o)]
    return f"return tensors, ({names}); got {', '.join(bad)}" if bad else None


def check_additive_scores(fn) -> None:
    """Exercise 4.1: additive_scores(query, keys, W_q, v) = v . tanh(keys + W_q query), shape (B, T)."""
    _require_callable(fn, "additive_scores", "check_additive_scores(additive_scores)")
    r = Report("additive_scores")
    g = torch.Generator().manual_seed(40)
    cases = {"B=3, T=5, decoder state 4, attention size 6": (3, 5, 4, 6),
             "B=2, T=7, decoder state 8, attention size 3": (2, 7, 8, 3),
             "one input character (T=1)": (4, 1, 4, 6)}
    for case, (b, t, h, a) in cases.items():
        q, keys = torch.randn(b, h, generator=g), 2 * torch.randn(b, t, a, generator=g)
        W_q, v = torch.randn(a, h, generator=g), torch.randn(a, generator=g)
        out, err = call(fn, q.clone(), keys.clone(), W_q.clone(), v.clone())
        if err and "shape" in err and ("mat1" in err or "size of tensor" in err):
            err += (" (W_q has shape (A, H): the projected query is query @ W_q.T, shape (B, A); "
                    "add a dimension, [:, None, :], to add it to every key)")
        if err:
            r.fail(case, err)
            continue
        pq = q @ W_q.T
        ref = torch.tanh(keys + pq[:, None]) @ v
        why = compare(out, ref, {
            "the tanh is missing: score = v · tanh(W_k h_j + W_q s)": (keys + pq[:, None]) @ v,
            "tanh goes inside, before the product with v: v · tanh(...), not tanh(v · ...)":
                torch.tanh((keys + pq[:, None]) @ v),
            "that is a dot-product score (Luong), not the additive one: add the projected query to "
            "each key, then tanh, then v": (keys * pq[:, None]).sum(-1),
            "you returned attention weights (a softmax of the scores); return the raw scores, the "
            "softmax comes in Exercise 4.2": torch.softmax(ref, -1),
            "the query is missing: every decoder step would look at the same places":
                torch.tanh(keys) @ v,
        }, "one score per input character, shape (B, T)")
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_attend(fn) -> None:
    """Exercise 4.2: attend(scores, mask, values) -> (context (B, E), weights (B, T)), padding masked."""
    _require_callable(fn, "attend", "check_attend(attend)")
    r = Report("attend")
    g = torch.Generator().manual_seed(41)
    lengths = {"a batch of 3 with padding (lengths 5, 3, 1)": [5, 3, 1],
               "a batch of 2 without padding": [4, 4],
               "a batch of 4 with padding (lengths 2, 6, 6, 3)": [2, 6, 6, 3]}
    for case, lens in lengths.items():
        b, t, e = len(lens), max(lens), 3
        scores = 2 * torch.randn(b, t, generator=g)
        mask = torch.arange(t)[None, :] < torch.tensor(lens)[:, None]
        values = torch.randn(b, t, e, generator=g)
        out, err = call(fn, scores.clone(), mask.clone(), values.clone())
        if err is None:
            err = _pair(out, "context, weights")
        if err:
            r.fail(case, err)
            continue
        context, weights = out
        if weights.shape == scores.shape and torch.isnan(weights.detach()).any():
            r.fail(case, "weights: some rows are nan: all their scores were -inf. The mask is True at "
                         "real characters: fill the scores where it is False (~mask), and keep the rest")
            continue
        ref_w = torch.softmax(scores.masked_fill(~mask, -math.inf), -1)
        plain = torch.softmax(scores, -1)
        why = compare(weights, ref_w, {
            "padding gets attention: give the padded positions (mask False) a score of -inf "
            "before the softmax (scores.masked_fill(~mask, float('-inf')))": plain,
            "the weights no longer sum to 1: you zeroed the padded positions after the softmax; "
            "fill their scores with -inf before it": plain * mask,
            "a score of 0 still gets weight (exp(0) = 1): fill the padded positions with -inf, "
            "not 0": torch.softmax(scores.masked_fill(~mask, 0.0), -1),
            "the mask is True at real characters: fill where it is False (~mask), not where it is True":
                torch.softmax(scores.masked_fill(mask, -math.inf), -1),
            "softmax over dim 0 (the batch): each row's weights must sum to 1 over its characters "
            "(dim=-1)": torch.softmax(scores.masked_fill(~mask, -math.inf), 0),
        } if not torch.equal(mask, torch.ones_like(mask)) else {
            "softmax over dim 0 (the batch): each row's weights must sum to 1 over its characters "
            "(dim=-1)": torch.softmax(scores, 0),
            "the weights are raw scores: apply a softmax over the characters": scores,
        }, "weights, shape (B, T)", atol=1e-5)
        if why:
            r.fail(case, f"weights: {why}")
            continue
        ref_c = (ref_w[..., None] * values).sum(1)
        why = compare(context, ref_c, {
            "the context is the weighted sum of the encoder states, not their plain mean":
                values.mean(1),
            "sum over the characters (dim 1) to get one context vector per row, shape (B, E)":
                ref_w[..., None] * values,
        }, "context, shape (B, E)", atol=1e-5)
        r.fail(case, f"context: {why}") if why else r.ok(case)
    return r.finish()


def check_masked_loss(fn) -> None:
    """Exercise 4.3: masked_loss(logits (B, L, V), targets (B, L), pad_id) -> mean CE over real tokens."""
    import torch.nn.functional as F

    _require_callable(fn, "masked_loss", "check_masked_loss(masked_loss)")
    r = Report("masked_loss")
    g = torch.Generator().manual_seed(42)
    cases = {"targets of lengths 6, 3 and 1 (padded), pad_id=0": ([6, 3, 1], 9, 0),
             "targets of lengths 2, 5, 5, 4 (padded), pad_id=0": ([2, 5, 5, 4], 7, 0),
             "targets of lengths 4, 2 with pad_id=5": ([4, 2], 8, 5)}
    for case, (lens, v, pad) in cases.items():
        b, ln = len(lens), max(lens)
        logits = 2 * torch.randn(b, ln, v, generator=g)
        real = torch.randint(0, v - 1, (b, ln), generator=g)
        real = real + (real >= pad).long()  # real tokens are never the pad id
        mask = torch.arange(ln)[None, :] < torch.tensor(lens)[:, None]
        targets = real.masked_fill(~mask, pad)
        out, err = call(fn, logits.clone(), targets.clone(), pad)
        if err and "target" in err.lower() and "size" in err.lower():
            err += (" (F.cross_entropy wants the classes in dim 1: flatten logits to (B*L, V) and "
                    "targets to (B*L,), or pass logits.transpose(1, 2))")
        if err:
            r.fail(case, err)
            continue
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            out = torch.tensor(float(out))
        ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        ref = (ce * mask).sum() / mask.sum()
        nll_raw = -logits.gather(2, targets[..., None])[..., 0]
        why = compare(out, ref, {
            "the padding counts in your loss: exclude the positions where targets == pad_id "
            "(a mask, or ignore_index=pad_id)": ce.mean(),
            "you divided by all B×L positions: divide by the number of real tokens (mask.sum())":
                (ce * mask).sum() / mask.numel(),
            "that is a sum over the tokens: take the mean over the real tokens": (ce * mask).sum(),
            "you averaged each sequence, then the batch: a short target then weighs as much as a long "
            "one; average over all real tokens at once": ((ce * mask).sum(1) / mask.sum(1)).mean(),
            "the log-softmax is missing (nll_loss wants log-probabilities): use F.cross_entropy on "
            "the logits": (nll_raw * mask).sum() / mask.sum(),
            "return one number, the mean over the real tokens": ce * mask,
        }, "one number", atol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_beam_step(fn) -> None:
    """Exercise 4.4: beam_step(scores (B, k), logp (B, k, V), k) -> (scores, beam, token), each (B, k)."""
    _require_callable(fn, "beam_step", "check_beam_step(beam_step)")
    r = Report("beam_step")
    g = torch.Generator().manual_seed(43)
    cases = {"B=2, k=3 beams, V=5 tokens": (2, 3, 5),
             "B=1, k=4 beams, V=6 tokens": (1, 4, 6),
             "B=3, k=2 beams, V=7 tokens": (3, 2, 7)}
    for case, (b, k, v) in cases.items():
        scores = -3 * torch.rand(b, k, generator=g)
        logp = torch.log_softmax(2 * torch.randn(b, k, v, generator=g), -1)
        out, err = call(fn, scores.clone(), logp.clone(), k)
        if err is None:
            err = _pair(out, "scores, beam, token")
        if err:
            r.fail(case, err)
            continue
        new, beam, tok = out
        total = scores[..., None] + logp
        best, idx = total.flatten(1).topk(k, dim=1)
        per_beam = total.max(-1)
        why = compare(new, best, {
            "you ignored the scores of the beams so far: add scores[..., None] to logp":
                logp.flatten(1).topk(k, dim=1).values,
            "log-probabilities add up (a product of probabilities): scores + logp, not scores * logp":
                (scores[..., None] * logp).flatten(1).topk(k, dim=1).values,
            "you kept the best token of each beam; the k best extensions may come from the same "
            "beam: flatten (k, V) into one row per example, then topk": per_beam.values,
            "sort the new scores best first (topk does)": best.flip(1),
        }, "new scores, shape (B, k)", atol=1e-5)
        if why:
            r.fail(case, f"scores: {why}")
            continue
        for name, got, ref, wrong in (("beam", beam, idx // v, {
                "the beam is the flat index divided by V (idx // V); you took idx % V": idx % v,
                "the beam is idx // V, not the flat index itself": idx}),
                                      ("token", tok, idx % v, {
                "the token is the flat index modulo V (idx % V); you took idx // V": idx // v,
                "the token is idx % V, not the flat index itself (which counts k × V)": idx})):
            why = compare(got.long() if torch.is_tensor(got) else got, ref, wrong,
                          f"{name} indices, shape (B, k)", atol=0)
            if why:
                r.fail(case, f"{name}: {why}")
                break
        else:
            r.ok(case)
    return r.finish()


def check_exact_match(fn) -> None:
    """Exercise 4.5: exact_match(pred, target, end_id) -> bool (B,): equal up to and including </s>."""
    _require_callable(fn, "exact_match", "check_exact_match(exact_match)")
    r = Report("exact_match")
    E, P = 2, 0  # </s> and <pad>
    target = torch.tensor([[5, 6, 7, E, P, P]] * 6 + [[5, 6, E, P, P, P]])
    pred = torch.tensor([[5, 6, 7, E, P, P],   # exact
                         [5, 6, 7, E, 9, 9],   # exact, junk after </s>
                         [5, 6, 8, E, P, P],   # one character wrong
                         [5, 6, 7, 7, E, P],   # goes on after the date
                         [5, 6, E, P, P, P],   # stops early
                         [9, 9, 9, 9, 9, 9],   # nonsense
                         [5, 6, E, E, 4, 4]])  # exact (shorter target), junk after </s>
    ref = torch.tensor([True, True, False, False, False, False, True])
    out, err = call(fn, pred.clone(), target.clone(), E)
    if err:
        r.fail("7 predictions", err)
        return r.finish()
    if torch.is_tensor(out) and out.dtype == torch.bool:
        out = out.float()
    eq = pred == target
    before_end = (target == E).long().cumsum(1) - (target == E).long() == 0
    why = compare(out, ref.float(), {
        "tokens after </s> count in your version: the decoder may write anything after </s>, "
        "compare up to and including the first </s> of the target": eq.all(1).float(),
        "that is the fraction of correct characters; exact match is all or nothing per row":
            eq.float().mean(1),
        "the </s> must match too: a prediction that goes on after the date is not exact":
            (eq | ~(before_end & (target != E))).all(1).float(),
        "one answer per row, shape (B,), not the mean over the batch": ref.float().mean(),
    }, "one True/False per row, shape (B,)")
    if why is None:
        r.ok("exact, junk after </s>, wrong character, too long, too short, nonsense")
    else:
        r.fail("7 predictions", why)
    return r.finish()


# --- chapter 03: GANs -------------------------------------------------------------------------

def check_nonsaturating_loss(fn) -> None:
    """Exercise 3.1: generator_loss(fake_logits) = -E[log D(G(z))] from D's logits, one number."""
    _require_callable(fn, "generator_loss", "check_nonsaturating_loss(generator_loss)")
    r = Report("generator_loss")
    sp = torch.nn.functional.softplus
    g = torch.Generator().manual_seed(30)
    cases = {"random logits, batch of 64": 2 * torch.randn(64, generator=g),
             "a confident discriminator (logits down to -200, where sigmoid rounds to 0)":
                 torch.tensor([-200.0, -120.0, -3.0, 1.5])}
    for case, f in cases.items():
        out, err = call(fn, f.clone())
        if err:
            r.fail(case, err)
            continue
        out = _scalar(out)
        if torch.is_tensor(out) and out.numel() == 1 and not torch.isfinite(out).all():
            r.fail(case, f"got {out.item()}: log(sigmoid(f)) rounds to log(0) when D is sure a fake "
                         "is fake. Compute from the logits: -log D = F.softplus(-f) "
                         "(or F.binary_cross_entropy_with_logits with label 1)")
            continue
        fd = f.double()
        ref = sp(-fd).mean()
        mistakes = {
            "that is the saturating loss E[log(1 − D(G(z)))] of the article's §4.2.4 (ERRATA 11); "
            "the non-saturating loss is −E[log D(G(z))]": -sp(fd).mean(),
            "that is −E[log(1 − D(G(z)))], the fakes' term of D's loss (label 0); G wants D to call "
            "its fakes real: label 1, −E[log D(G(z))]": sp(fd).mean(),
            "wrong sign: the loss −E[log D(G(z))] is positive and falls as D(G(z)) rises": -ref,
            "you summed over the batch: take the mean": sp(-fd).sum(),
            "a sigmoid applied twice: the network's output is already the logit, D = sigmoid(logit)":
                sp(-torch.sigmoid(fd)).mean(),
            "that is E[1 − D(G(z))], without the log": (1 - torch.sigmoid(fd)).mean(),
        }
        why = compare(out, ref, mistakes, "one number", atol=1e-3, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def _tiny_gan(seed: int):
    """A 3 -> 2 generator and a 2 -> 8 -> 1 discriminator (logits of shape (B,)), seeded."""
    from torch import nn

    torch.manual_seed(seed)
    G = nn.Linear(3, 2)
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    return G, D


def _flat(module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def _sgd_result(module, loss_fn, lr: float) -> torch.Tensor:
    """Parameters of `module` after one SGD step on loss_fn(module), without touching module."""
    m = copy.deepcopy(module)
    grads = torch.autograd.grad(loss_fn(m), list(m.parameters()))
    return torch.cat([(p - lr * gr).detach().flatten() for p, gr in zip(m.parameters(), grads)])


def _leave_gradients(module, seed: int):
    """Put stale gradients in .grad, as a previous backward pass would have left them."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def _loss_value(out, ref_values: dict) -> str | None:
    """None if `out` (the returned loss) equals one of ref_values; else what is wrong."""
    out = _scalar(out)
    if out is None:
        return "return the loss (a tensor with one number), e.g. `return loss.detach()`"
    if not torch.is_tensor(out) or out.numel() != 1:
        return f"return the loss as one number, got {type(out).__name__}" + (
            f" of shape {tuple(out.shape)}" if torch.is_tensor(out) else "")
    if any(abs(out.item() - v) < 1e-4 * max(1.0, abs(v)) for v in ref_values.values()):
        return None
    return (f"the returned loss is {out.item():.4f}, expected {next(iter(ref_values.values())):.4f} "
            "(the loss computed before the update)")


def check_discriminator_step(fn) -> None:
    """Exercise 3.2: discriminator_step(D, opt_d, real, fake) -> loss; one update of D only."""
    from .losses import discriminator_loss

    _require_callable(fn, "discriminator_step", "check_discriminator_step(discriminator_step)")
    r = Report("discriminator_step")
    sp, lr = torch.nn.functional.softplus, 0.1
    G0, D0 = _tiny_gan(31)
    g = torch.Generator().manual_seed(32)
    real, z = torch.randn(16, 2, generator=g) + 2, torch.randn(16, 3, generator=g)
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    fake = G(z)
    opt = torch.optim.SGD(D.parameters(), lr=lr)
    _leave_gradients(D, 33)
    out, err = call(fn, D, opt, real, fake)
    if err:
        r.fail("one step on 16 real and 16 fake points", err)
        return r.finish()

    def upd(loss_fn):
        return _sgd_result(D0, lambda m: loss_fn(m(real), m(fake.detach())), lr)

    ref_loss = discriminator_loss(D0(real), D0(fake.detach())).item()
    g_stale = torch.Generator().manual_seed(33)
    stale = torch.cat([torch.randn(p.shape, generator=g_stale).flatten() for p in D0.parameters()])
    right = [upd(discriminator_loss), upd(lambda a, b: discriminator_loss(a, b) / 2)]
    mistakes = {
        "D's weights did not change: call opt_d.step() after loss.backward()": _flat(D0),
        "D's gradients from the previous backward pass were added to this step's: call "
        "opt_d.zero_grad() before loss.backward() (G's step backpropagates through D and leaves "
        "gradients in D's .grad)": right[0] - lr * stale,
        "wrong sign: D went up its loss; minimise -[log D(x) + log(1 - D(G(z)))] (the article's "
        "L is what D maximises, ERRATA 10)": 2 * _flat(D0) - right[0],
        "labels swapped: real samples have label 1, fakes label 0":
            upd(lambda a, b: sp(a).mean() + sp(-b).mean()),
        "the fakes' term is missing: D must also learn to call fakes fake": upd(lambda a, b: sp(-a).mean()),
        "the real term is missing: D must also learn to call real samples real":
            upd(lambda a, b: sp(b).mean()),
        "you summed over the batch: take means (the step would grow with the batch size)":
            upd(lambda a, b: sp(-a).sum() + sp(b).sum()),
    }
    now = _flat(D)
    if any(torch.allclose(now, w, atol=1e-5) for w in right):
        r.ok("D's weights took the right step")
    else:
        why = next((d for d, w in mistakes.items() if torch.allclose(now, w, atol=1e-5)), None)
        r.fail("D's update", why or "D's weights moved, but not as one step on the discriminator loss "
                                    "mean softplus(-D(real)) + mean softplus(D(fake)) would move them")
    leaked = [p for p in G.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    if leaked:
        r.fail("the generator", "gradients reached G: detach the fakes in D's step (D(fake.detach())); "
                                "otherwise backward runs through G for nothing and leaves gradients in G")
    else:
        r.ok("no gradient reached G")
    why = _loss_value(out, {"mean": ref_loss, "mean over the 2B batch": ref_loss / 2})
    r.fail("returned loss", why) if why else r.ok("returned the loss")
    return r.finish()


def check_generator_step(fn) -> None:
    """Exercise 3.3: generator_step(D, opt_g, fake) -> loss; one non-saturating update of G only."""
    from .losses import generator_loss_nonsaturating, generator_loss_saturating

    _require_callable(fn, "generator_step", "check_generator_step(generator_step)")
    r = Report("generator_step")
    lr = 0.1
    G0, D0 = _tiny_gan(34)
    z = torch.randn(16, 3, generator=torch.Generator().manual_seed(35))
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    opt = torch.optim.SGD(G.parameters(), lr=lr)
    _leave_gradients(G, 36)
    out, err = call(fn, D, opt, G(z))
    if err and "does not require grad" in err:
        err += (" — the fakes must keep their graph back to G in G's step: do not detach them "
                "(detaching is for D's step)")
    if err:
        r.fail("one step on 16 fakes", err)
        return r.finish()

    def upd(loss_fn):
        return _sgd_result(G0, lambda m: loss_fn(D0(m(z))), lr)

    g_stale = torch.Generator().manual_seed(36)
    stale = torch.cat([torch.randn(p.shape, generator=g_stale).flatten() for p in G0.parameters()])
    right = upd(generator_loss_nonsaturating)
    mistakes = {
        "G's weights did not change: call opt_g.step() after loss.backward()": _flat(G0),
        "that is the saturating loss E[log(1 - D(G(z)))] (ERRATA 11): use the non-saturating "
        "-E[log D(G(z))]": upd(generator_loss_saturating),
        "G's gradients from an earlier backward pass were added to this step's: call "
        "opt_g.zero_grad() before loss.backward()": right - lr * stale,
        "wrong sign: G made D's verdict worse; minimise -E[log D(G(z))]": 2 * _flat(G0) - right,
        "G was trained with label 0 (to look fake): minimise -log(1 - D) is D's job, G's label is 1":
            upd(lambda f: torch.nn.functional.softplus(f).mean()),
    }
    now = _flat(G)
    if torch.allclose(now, right, atol=1e-5):
        r.ok("G's weights took the right step")
    else:
        why = next((d for d, w in mistakes.items() if torch.allclose(now, w, atol=1e-5)), None)
        if torch.allclose(now, _flat(G0)) and all(p.grad is None or not p.grad.any() for p in G.parameters()):
            why = ("no gradient reached G: in G's step the fakes must keep their graph back to G, "
                   "do not detach them (detaching is for D's step)")
        r.fail("G's update", why or "G's weights moved, but not as one step on -E[log D(G(z))] would move them")
    if torch.allclose(_flat(D), _flat(D0)):
        r.ok("D unchanged")
    else:
        r.fail("the discriminator", "D's weights changed in G's step: only G's optimiser may step here "
                                    "(the article's combined model also trains D, ERRATA 16)")
    why = _loss_value(out, {"non-saturating": generator_loss_nonsaturating(D0(G0(z))).item()})
    r.fail("returned loss", why) if why else r.ok("returned the loss")
    return r.finish()


def check_high_quality_counts(fn) -> None:
    """Exercise 3.4: high_quality_counts(samples, centres, std) -> (modes,) high-quality samples per mode."""
    from .data import ring_centres
    from .metrics import mode_coverage

    _require_callable(fn, "high_quality_counts", "check_high_quality_counts(high_quality_counts)")
    r = Report("high_quality_counts")
    centres, std = ring_centres(8), 0.02
    g = torch.Generator().manual_seed(37)
    unit = torch.nn.functional.normalize(torch.randn(40, 2, generator=g), dim=1)
    cases = {
        "points exactly on centres 0, 0 and 5": centres[[0, 0, 5]],
        "points at 0.5, 1.5, 2.5 and 3.5 std from centres 2, 1, 3 and 6":
            torch.cat([centres[2] + 0.5 * std * unit[:10], centres[1] + 1.5 * std * unit[10:30],
                       centres[3] + 2.5 * std * unit, centres[6] + 3.5 * std * unit]),
        "2,500 samples: most near the modes, some between them, some at the origin":
            torch.cat([centres[torch.randint(8, (2000,), generator=g)] + 1.5 * std * torch.randn(2000, 2, generator=g),
                       2 * torch.nn.functional.normalize(torch.randn(400, 2, generator=g), dim=1),
                       0.1 * torch.randn(100, 2, generator=g)]),
    }
    for case, x in cases.items():
        out, err = call(fn, x.clone(), centres.clone(), std)
        if err:
            r.fail(case, err)
            continue
        if torch.is_tensor(out):
            out = out.float()
        d = torch.cdist(x, centres)
        near, which = d.min(1)

        def counts(mask, which=which):
            return torch.bincount(which[mask], minlength=8).float()

        ref = mode_coverage(x, centres, std, min_count=1)["counts"].float()
        why = compare(out, ref, {
            "you counted every sample at its nearest mode; count only high-quality ones, within "
            "3 std of the centre": counts(near >= 0),
            "the radius is 3 standard deviations (3 * std), not 3 variances (3 * std**2)": counts(near < 3 * std ** 2),
            "you compared a squared distance with 3 std: compare the distance itself": counts(near ** 2 < 3 * std),
            "the radius is 3 std, not 2 std": counts(near < 2 * std),
            "the radius is 3 std, not 1 std": counts(near < std),
            "return counts (how many samples), not shares": ref / len(x),
        }, "one count per mode, shape (8,)", atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_frechet_distance(fn) -> None:
    """Exercise 3.5: frechet_distance(mu1, sigma1, mu2, sigma2) -> the FID formula, one number."""
    from .metrics import frechet_distance

    _require_callable(fn, "frechet_distance", "check_frechet_distance(frechet_distance)")
    r = Report("frechet_distance")
    g = torch.Generator().manual_seed(38)

    def spd(d):
        a = torch.randn(d, d, generator=g, dtype=torch.float64)
        return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)

    d = 5
    m1, m2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    s1, s2 = spd(d), spd(d)
    cases = {"two random 5-D Gaussians": (m1, s1, m2, s2),
             "identical Gaussians (the distance must be 0)": (m1, s1, m1.clone(), s1.clone()),
             "N(0, I) against N(mu, 4 I) in 5-D": (torch.zeros(d, dtype=torch.float64),
                                                    torch.eye(d, dtype=torch.float64),
                                                    m2, 4 * torch.eye(d, dtype=torch.float64))}
    for case, (a, sa, b, sb) in cases.items():
        out, err = call(fn, a.clone(), sa.clone(), b.clone(), sb.clone())
        if err:
            r.fail(case, err)
            continue
        out = _scalar(out)
        if torch.is_tensor(out) and out.is_complex():
            r.fail(case, "the result is complex: take the real part of the eigenvalues' square roots, "
                         "or use eigvalsh of the symmetric sigma1^1/2 sigma2 sigma1^1/2")
            continue
        ref = torch.tensor(frechet_distance(a, sa, b, sb), dtype=torch.float64)
        dm = (a - b).pow(2).sum()
        tr = sa.trace() + sb.trace()
        cross = ref - dm - tr
        mistakes = {
            "the matrix square root is missing: tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^1/2), not "
            "- 2 sigma1 sigma2": dm + tr - 2 * (sa @ sb).trace(),
            "(sigma1 sigma2)^1/2 is a matrix square root, not the square root of each entry":
                dm + tr - 2 * (sa * sb).abs().sqrt().trace(),
            "the mean term is the squared distance |mu1 - mu2|^2": dm.sqrt() + tr + cross,
            "the cross term has a factor 2: - 2 tr((sigma1 sigma2)^1/2)": dm + tr + cross / 2,
            "the mean term is missing": tr + cross,
            "you returned the square root of the distance: FID is the squared Fréchet distance":
                ref.clamp(min=0).sqrt(),
        }
        why = compare(out.double() if torch.is_tensor(out) else out, ref, mistakes, "one number",
                      atol=1e-4, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


# --- chapter 06: evaluation and challenges ----------------------------------------------------

def _number(out):
    """One number as a float64 0-dim tensor, or the reason it is not one."""
    out = _scalar(out)
    if isinstance(out, bool) or (torch.is_tensor(out) and out.dtype == torch.bool):
        return None, "return a number, not True/False"
    if not torch.is_tensor(out) or out.numel() != 1:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        return None, f"return one number (a Python float or a 0-dim tensor), not {shape}"
    return out.detach().double().reshape(()), None


def _float64(v) -> torch.Tensor:
    return torch.tensor(float(v), dtype=torch.float64)


def check_linear_flops(fn) -> None:
    """Exercise 6.1: linear_flops(batch, n_in, n_out) -> FLOPs of nn.Linear(n_in, n_out)'s forward pass."""
    from torch import nn

    from .cost import count_flops

    _require_callable(fn, "linear_flops", "check_linear_flops(linear_flops)")
    r = Report("linear_flops")
    for b, i, o in [(1, 784, 256), (64, 10, 3), (128, 256, 32)]:
        case = f"batch {b}, {i} -> {o}"
        out, err = call(fn, b, i, o)
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = _float64(count_flops(nn.Linear(i, o), torch.zeros(b, i)))
        t = _float64
        why = compare(out, ref, {
            "that counts multiply-adds; each is 2 FLOPs (a multiplication and an addition)": t(b * i * o),
            "that is per example: the batch has `batch` rows, each costs the same": t(2 * i * o),
            "you counted the bias additions; the convention (and PyTorch's counter) counts the matrix "
            "product only, 2 FLOPs per weight per example": t(2 * b * (i + 1) * o),
            "that is a training step (forward + backward, about 3x); the question is the forward pass":
                t(6 * b * i * o),
            "that is the number of parameters, not of operations": t((i + 1) * o),
        }, "one number", atol=0.5, rtol=1e-9)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_nn_gap(fn) -> None:
    """Exercise 6.2: nn_gap(samples, train_ref, test_ref) = 1 - mean NN distance to train / to test."""
    from .metrics import nn_gap

    _require_callable(fn, "nn_gap", "check_nn_gap(nn_gap)")
    r = Report("nn_gap")
    g = torch.Generator().manual_seed(60)
    train, test = torch.randn(50, 6, generator=g), torch.randn(50, 6, generator=g)
    cases = {
        "samples near the training points": train[:30] + 0.3 * torch.randn(30, 6, generator=g),
        "samples from the same distribution, new": torch.randn(40, 6, generator=g),
        "images (N, 1, 4, 4) close to the held-out ones": test[:20, None].view(20, 1, 2, 3) + 0.1,
    }
    for case, s in cases.items():
        tr, te = (train, test) if s.dim() == 2 else (train.view(50, 1, 2, 3), test.view(50, 1, 2, 3))
        out, err = call(fn, s.clone(), tr.clone(), te.clone())
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = torch.tensor(nn_gap(s, tr, te), dtype=torch.float64)
        d = {k: torch.cdist(s.flatten(1).double(), v.flatten(1).double()) for k, v in (("tr", tr), ("te", te))}
        near = {k: v.min(1).values.mean() for k, v in d.items()}
        why = compare(out, ref, {
            "the ratio is upside down: 1 - (distance to train) / (distance to test)": 1 - near["te"] / near["tr"],
            "the '1 -' is missing: the gap is 0 when train and test are equally near": near["tr"] / near["te"],
            "use distances, not squared distances": 1 - (d["tr"] ** 2).min(1).values.mean() /
                                                    (d["te"] ** 2).min(1).values.mean(),
            "that is the mean distance to *all* reference points; take each sample's nearest one":
                1 - d["tr"].mean() / d["te"].mean(),
            "that is a difference of distances; divide them: 1 - d_train / d_test": near["te"] - near["tr"],
        }, "one number", atol=1e-4, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_membership_auc(fn) -> None:
    """Exercise 6.3: membership_auc(member_scores, nonmember_scores) -> P(member > non-member), ties half."""
    from .metrics import membership_auc

    _require_callable(fn, "membership_auc", "check_membership_auc(membership_auc)")
    r = Report("membership_auc")
    g = torch.Generator().manual_seed(61)
    cases = {
        "perfectly separated (members all higher): 1": (torch.tensor([5.0, 6.0, 7.0]), torch.tensor([1.0, 2.0])),
        "identical scores: 0.5, a coin toss": (torch.zeros(4), torch.zeros(6)),
        "overlapping scores with ties (integers)": (torch.randint(0, 5, (40,), generator=g).float() + 1,
                                                    torch.randint(0, 5, (30,), generator=g).float()),
        "overlapping Gaussians, 200 and 300 scores": (torch.randn(200, generator=g) + 0.7,
                                                      torch.randn(300, generator=g)),
    }
    for case, (m, n) in cases.items():
        out, err = call(fn, m.clone(), n.clone())
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = torch.tensor(membership_auc(m, n), dtype=torch.float64)
        a, b = m.double()[:, None], n.double()[None]
        mistakes = {
            "ties must count half: with `>` alone, equal scores count as a miss": (a > b).double().mean(),
            "ties must count half: with `>=`, equal scores count as a hit": (a >= b).double().mean(),
            "the sides are swapped: members should score *higher* (that is 1 - AUC)": 1 - ref,
            "that compares the means; the AUC compares every member with every non-member":
                (m.double().mean() > n.double().mean()).double(),
        }
        if "identical" in case:
            mistakes = {k: v for k, v in mistakes.items() if "sides" not in k and "means" not in k}
        why = compare(out, ref, mistakes, "one number in [0, 1]", atol=1e-6, rtol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_knn_precision(fn) -> None:
    """Exercise 6.4: knn_precision(real, fake, k) -> share of fakes within the k-NN radius of some real point."""
    from .metrics import manifold_share

    _require_callable(fn, "knn_precision", "check_knn_precision(knn_precision)")
    r = Report("knn_precision")
    g = torch.Generator().manual_seed(62)
    line = torch.arange(10.0)[:, None]  # real points 0, 1, ..., 9 on a line
    cases = {
        "real 0..9 on a line, k=2, fakes at 0.5, 5, 10.9, 11 (exactly on a radius), 20":
            (line, torch.tensor([[0.5], [5.0], [10.9], [11.0], [20.0]]), 2),
        "the same, k=1": (line, torch.tensor([[0.5], [5.0], [10.9], [11.0], [20.0]]), 1),
        "300 real and 200 fake 8-D points, the fakes shifted and more spread, k=3":
            (torch.randn(300, 8, generator=g), 1.5 * torch.randn(200, 8, generator=g) + 0.5, 3),
    }
    for case, (real, fake, k) in cases.items():
        out, err = call(fn, real.clone(), fake.clone(), k)
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = torch.tensor(manifold_share(fake, real, k), dtype=torch.float64)
        d_rr, d_fr, d_ff = torch.cdist(real, real), torch.cdist(fake, real), torch.cdist(fake, fake)
        radii = d_rr.sort(1).values[:, k]

        def share(dist, rad):
            return (dist <= rad[None]).any(1).double().mean()

        why = compare(out, ref, {
            "the radius must skip the point itself (its distance 0): take the k-th nearest *other* point":
                share(d_fr, d_rr.sort(1).values[:, k - 1]),
            "that is recall (real points inside the fakes' manifold); precision asks how many fakes lie "
            "inside the real manifold": torch.tensor(manifold_share(real, fake, k), dtype=torch.float64),
            "the radii come from the real points' neighbours among the real points, not the fakes' among "
            "the fakes": (d_fr <= d_ff.sort(1).values[:, k][:, None]).any(1).double().mean(),
            "a point exactly on the radius is inside: use <=, not <":
                (d_fr < radii[None]).any(1).double().mean(),
            "return the share of fakes (between 0 and 1), not their count": ref * len(fake),
        }, "one number in [0, 1]", atol=1e-6, rtol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


# --- chapter 05: applications -----------------------------------------------------------------

def check_one_hot(fn) -> None:
    """Exercise 5.1: one_hot(labels) -> (N, 10) float rows, a 1 in each label's column."""
    _require_callable(fn, "one_hot", "check_one_hot(one_hot)")
    r = Report("one_hot")
    cases = {"the digits 0..9 in order": torch.arange(10),
             "a batch of 7s and 3s (labels that never reach 9)": torch.tensor([7, 7, 3, 0, 3]),
             "a single label": torch.tensor([4])}
    for case, y in cases.items():
        out, err = call(fn, y.clone())
        if err:
            r.fail(case, err)
            continue
        ref = torch.nn.functional.one_hot(y, 10).float()
        why = compare(out.float() if torch.is_tensor(out) else out, ref, {
            "the number of columns is the number of classes (10), not the largest label + 1: "
            "pass num_classes=10": torch.nn.functional.one_hot(y).float(),
            "the 1 is one column off: digit d goes in column d (columns count from 0)":
                torch.nn.functional.one_hot((y + 1) % 10, 10).float(),
            "return one row per label (N, 10), not one column per label": ref.T,
            "return the one-hot rows, not the labels themselves": y.float(),
        }, "(N, 10), one row per label", atol=1e-6)
        if why is None and not out.dtype.is_floating_point:
            why = (f"the values are right but the dtype is {out.dtype}: the network concatenates it "
                   "with float features, so return .float()")
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def _masked_cases():
    g = torch.Generator().manual_seed(50)
    square = torch.zeros(3, 1, 6, 6, dtype=torch.bool)
    square[:, :, 1:4, 2:5] = True
    return {"a 3x3 square hidden in 6x6 images": square,
            "random pixels hidden (about half)": torch.rand(4, 1, 5, 5, generator=g) < 0.5}, g


def check_keep_observed(fn) -> None:
    """Exercise 5.3: keep_observed(guess, observed, mask): guess where mask is True, observed elsewhere."""
    _require_callable(fn, "keep_observed", "check_keep_observed(keep_observed)")
    r = Report("keep_observed")
    cases, g = _masked_cases()
    for case, mask in cases.items():
        guess = torch.rand(mask.shape, generator=g)
        # what the camera recorded; under the mask it is junk (not zero), since it is unknown
        observed = torch.rand(mask.shape, generator=g) + 2.0 * mask
        out, err = call(fn, guess.clone(), observed.clone(), mask.clone())
        if err:
            r.fail(case, err)
            continue
        m = mask.float()
        why = compare(out, torch.where(mask, guess, observed), {
            "the mask is True where a pixel is *missing*: take the guess there, the observation elsewhere":
                torch.where(mask, observed, guess),
            "the observed pixels are lost: outside the mask the result must be the observation, not 0":
                guess * m,
            "the observed pixels are lost: outside the mask the result must be the observation, not "
            "the model's guess": guess,
            "the observation under the mask is unknown (junk): don't add it, multiply it by ~mask":
                guess * m + observed,
            "that blends the two everywhere: keep the observation exactly where it is known":
                (guess + observed) / 2,
        }, "the same shape as the images", atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_masked_psnr(fn) -> None:
    """Exercise 5.4: masked_psnr(restored, target, mask) -> PSNR per image in dB over the masked pixels."""
    _require_callable(fn, "masked_psnr", "check_masked_psnr(masked_psnr)")
    from .metrics import psnr

    r = Report("masked_psnr")
    cases, g = _masked_cases()
    for case, mask in cases.items():
        target = torch.rand(mask.shape, generator=g)
        restored = (target + 0.2 * torch.randn(mask.shape, generator=g)).clamp(0, 1)
        out, err = call(fn, restored.clone(), target.clone(), mask.clone())
        if err:
            r.fail(case, err)
            continue
        err2 = (restored - target).pow(2).flatten(1)
        m = mask.flatten(1).float()
        mse = (err2 * m).sum(1) / m.sum(1)
        why = compare(out, psnr(restored, target, mask), {
            "that averages the error over all pixels; the known pixels are right by construction and "
            "would flatter the repair: average over the masked pixels only": 10 * torch.log10(1 / err2.mean(1)),
            "divide the masked squared error by the number of masked pixels, not by all pixels":
                10 * torch.log10(1 / ((err2 * m).sum(1) / m.shape[1])),
            "PSNR is 10 log10(1 / MSE) with the *mean* squared error; 20 log10 goes with the root mean "
            "square": 20 * torch.log10(1 / mse),
            "use log10 (decibels), not the natural log": 10 * torch.log(1 / mse),
            "the sign is flipped: a smaller error must give a *larger* PSNR": 10 * torch.log10(mse),
            "return one PSNR per image (N,), not the batch average": 10 * torch.log10(1 / mse).mean(),
        }, "one PSNR per image, shape (N,)", atol=1e-3)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_downsample(fn) -> None:
    """Exercise 5.5: downsample(x) -> (N, 1, 14, 14), each pixel the mean of a 2x2 block."""
    _require_callable(fn, "downsample", "check_downsample(downsample)")
    import torch.nn.functional as F

    r = Report("downsample")
    g = torch.Generator().manual_seed(51)
    cases = {"random 28x28 images": torch.rand(3, 1, 28, 28, generator=g),
             "one image with a bright 2x2 block at (2, 4)": torch.zeros(1, 1, 28, 28).index_put_(
                 (torch.tensor([0]), torch.tensor([0]), torch.tensor([2]), torch.tensor([4])), torch.tensor(1.0))}
    for case, x in cases.items():
        out, err = call(fn, x.clone())
        if err:
            r.fail(case, err)
            continue
        why = compare(out, F.avg_pool2d(x, 2), {
            "that keeps every other pixel and throws away three of four: average each 2x2 block":
                x[..., ::2, ::2],
            "that is the block's sum; average it (divide by 4) so the grey levels stay in [0, 1]":
                4 * F.avg_pool2d(x, 2),
            "that is the block's maximum; the camera model averages the 4 pixels": F.max_pool2d(x, 2),
        }, "(N, 1, 14, 14)", atol=1e-5)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_accuracy_per_class(fn) -> None:
    """Exercise 5.2: accuracy_per_class(pred, requested) -> (10,) share of each requested digit read right."""
    _require_callable(fn, "accuracy_per_class", "check_accuracy_per_class(accuracy_per_class)")
    from .conditional import accuracy_per_class

    r = Report("accuracy_per_class")
    g = torch.Generator().manual_seed(52)
    requested = torch.arange(10).repeat_interleave(6)
    noisy = torch.where(torch.rand(60, generator=g) < 0.3, torch.randint(0, 10, (60,), generator=g), requested)
    cases = {"every digit asked 6 times, some read wrong": (noisy, requested),
             "a model that draws only 1s": (torch.ones(60, dtype=torch.long), requested),
             "uneven requests (more 7s)": (torch.tensor([7, 7, 1, 7, 0, 2, 3, 4, 5, 6, 8, 9, 9]),
                                          torch.tensor([7, 7, 7, 7, 0, 2, 3, 4, 5, 6, 8, 9, 1]))}
    for case, (pred, req) in cases.items():
        out, err = call(fn, pred.clone(), req.clone())
        if err:
            r.fail(case, err)
            continue
        ref = accuracy_per_class(pred, req)
        right = torch.bincount(req[pred == req], minlength=10).double()
        read = torch.bincount(pred, minlength=10).double()
        why = compare(out.double() if torch.is_tensor(out) else out, ref, {
            "that divides by how often each digit was *read* (precision); the question is how often each "
            "*requested* digit came out right: divide by the requests": right / read.where(read > 0, torch.nan),
            "that is the count of right answers; divide by how often each digit was requested": right,
            "that is the overall accuracy repeated; compute it for each requested digit":
                (pred == req).double().mean().expand(10),
            "that counts how often each digit was read, not whether it was the one requested":
                read / len(pred),
        }, "(10,), one share per digit", atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()
