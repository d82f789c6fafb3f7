"""Chapter 01's exercises: the mathematics (ELBO, estimators, the GAN game, attention)."""
from __future__ import annotations

import math

import torch

from ..i18n import N_, _
from .framework import Report, call, compare, _require_callable, _scalar

# Exercises 1.2 to 1.4 return one number that stays a tensor: a VAE maximises the ELBO and a GAN
# trains on V by gradient steps, so a value detached by .item() would train nothing.
PYTHON_NUMBER = N_("return a 0-dim tensor, not a Python float: .item() (or float()) detaches the number "
                   "from autograd, so no gradient could flow through it; drop the .item()")

HINTS = {
    "1.1": (N_("Follow the closed form derived just above the exercise, term by term: a log of a ratio "
               "of standard deviations, a fraction with the variances, and a constant. Check it on "
               "KL(p‖p), which must be 0."),
            N_("Everything is elementwise on tensors: torch.log, ** 2, +, /. The arguments are standard "
               "deviations (σ), not variances: square them where the formula has σ².")),
    "1.2": (N_("The ELBO is an expectation under q of log p(x, z) − log q(z) (the first display of "
               "the ELBO section); a Monte Carlo estimate replaces the expectation by the mean over "
               "the samples."),
            N_("log_joint(z) has shape (n,); q.log_prob(z) has shape (n, k), one log-density per "
               "latent dimension, and a diagonal Gaussian's log-density is their sum over the last "
               "dimension. Return one number: a mean over the n samples, kept as a 0-dim tensor (no "
               ".item(), which would detach it from autograd).")),
    "1.3": (N_("The score-function formula of the reparameterisation section: the gradient is the "
               "expectation of f(z) times the derivative of log q(z) with respect to μ."),
            N_("For a Gaussian that derivative is (z − μ) divided by the variance σ² (not σ). Multiply "
               "by f(z) elementwise, then take the mean over the samples: one number.")),
    "1.4": (N_("V is the mean of log D on the real batch plus the mean of log(1 − D) on the fakes, "
               "with D = sigmoid(logit). Do not form D itself: for confident logits sigmoid rounds to "
               "0 or 1 and the log is −inf."),
            N_("torch.nn.functional has log-space versions of its activations (look for the log of a "
               "sigmoid, and softplus): they take the logit and never form D. For log(1 − D), write "
               "1 − sigmoid(t) with sigmoid(t) = 1/(1 + exp(−t)) and simplify: it is a sigmoid too. "
               "Treat the two batches separately: they may have different sizes.")),
    "1.5": (N_("Three steps from the attention section: a score per key (dot product of the query "
               "with each key), weights = softmax of the scores divided by the temperature, context = "
               "weighted sum of the values."),
            N_("query (B, d) against keys (B, T, d) gives scores (B, T): torch.einsum or a batched "
               "matrix product (bmm with an unsqueezed query). Softmax over dim=-1 (the T keys). The "
               "context is (B, dv): weights against values, summed over T. Return (context, weights).")),
}


def _python_number(out) -> str | None:
    """Why a Python number is not accepted as the exercise's one number (None for anything else,
    which `compare` then judges)."""
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return _(PYTHON_NUMBER)
    return None


def _kl_normal(m1, s1, m2, s2):
    return torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5


def check_kl_normal(fn) -> None:
    """Exercise 1.1: kl_normal(mu1, sigma1, mu2, sigma2) = KL(N(mu1, sigma1^2) || N(mu2, sigma2^2))."""
    _require_callable(fn, "kl_normal", "check_kl_normal(kl_normal)")
    r = Report("kl_normal")
    g = torch.Generator().manual_seed(0)
    cases = {
        _("N(0, 1) against N(0, 2²)"): ([0.0], [1.0], [0.0], [2.0]),
        _("mu=0, sigma=2 against N(0, 1)"): ([0.0], [2.0], [0.0], [1.0]),
        _("identical distributions N(1, 0.5²)"): ([1.0], [0.5], [1.0], [0.5]),
        _("a batch of 5 random pairs"): (torch.randn(5, generator=g), torch.rand(5, generator=g) + 0.3,
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
            _("you computed KL(second ‖ first): the expectation is over the first distribution, "
              "and KL is not symmetric"): _kl_normal(m2, s2, m1, s1),
            _("check the sign of the log term: it is +log(σ2/σ1)"): -log_ratio + (ref - log_ratio),
            _("the fraction needs variances, (σ1² + (μ1 − μ2)²) / (2σ2²), not σ1 and σ2"):
                log_ratio + (s1 + dm2) / (2 * s2) - 0.5,
            _("the log term is log(σ2/σ1) = ½ log(σ2²/σ1²); you used log(σ2²/σ1²)"): ref + log_ratio,
            _("the constant −½ is missing (the KL of a distribution with itself must be 0)"): ref + 0.5,
            _("the factor ½ in front of the fraction is missing"): log_ratio + (s1 ** 2 + dm2) / s2 ** 2 - 0.5,
        }
        out = _scalar(out)
        why = compare(out, ref, mistakes, _("one KL per pair, the shape of the inputs"), atol=1e-4)
        if why and torch.is_tensor(out) and out.shape == ref.shape and (out.detach() < -1e-6).any():
            why += _(" (your KL is negative, {kl:.3f}, for {case}; a KL divergence is never negative)").format(
                kl=out.detach().min().item(), case=case)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_elbo_estimate(fn) -> None:
    """Exercise 1.2: elbo_estimate(log_joint, q, z) = mean over samples of log p(x, z) - log q(z)."""
    from torch.distributions import Normal

    from ..maths import LinearGaussian

    _require_callable(fn, "elbo_estimate", "check_elbo_estimate(elbo_estimate)")
    r = Report("elbo_estimate")
    g = torch.Generator().manual_seed(3)
    model = LinearGaussian(torch.randn(4, 2, generator=g, dtype=torch.float64),
                           torch.zeros(4, dtype=torch.float64), 0.7)
    x = torch.randn(4, generator=g, dtype=torch.float64)
    log_px = model.marginal().log_prob(x).item()
    post = model.posterior(x)
    cases = {_("q far from the posterior"): (torch.tensor([1.5, -1.0]), torch.tensor([0.3, 2.0])),
             _("q close to the posterior"): (post.mean.float(), post.covariance_matrix.diagonal().sqrt().float())}
    for case, (mu, std) in cases.items():
        q = Normal(mu.double(), std.double())
        z = mu.double() + std.double() * torch.randn(2000, 2, generator=g, dtype=torch.float64)
        out, err = call(fn, lambda z_: model.log_joint(x, z_), q, z.clone())
        err = err or _python_number(out)
        if err and "must match the size" in err:
            err += _(" (q.log_prob(z) has one value per latent dimension, shape (n, k): sum it over "
                     "the last dimension to get log q(z), shape (n,))")
        if err:
            r.fail(case, err)
            continue
        lj, lq = model.log_joint(x, z), q.log_prob(z)
        lw = lj - lq.sum(-1)
        ref = lw.mean()
        mistakes = {
            _("log q(z) is missing: the ELBO is the average of log p(x, z) − log q(z)"): lj.mean(),
            _("wrong sign: the ELBO is a lower bound on log p(x) (here log p(x) = {log_px:.2f})").format(
                log_px=log_px): -ref,
            _("sum log q(z) over the latent dimensions (q.log_prob(z).sum(-1)) before subtracting"):
                (lj[:, None] - lq).mean(),
            _("that is the log of the mean of the weights (the IWAE bound, tighter than the ELBO); "
              "the ELBO is the mean of the logs"): torch.logsumexp(lw, 0) - math.log(len(lw)),
            _("you summed over the samples: average them (a Monte Carlo estimate is a mean)"): lw.sum(),
            _("you returned one value per sample: average them into one number"): lw,
        }
        why = compare(out, ref, mistakes, _("one number"), atol=1e-3, rtol=1e-5)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_score_function_grad(fn) -> None:
    """Exercise 1.3: score_function_grad(f, z, mu, sigma) = mean of f(z) (z - mu) / sigma^2."""
    _require_callable(fn, "score_function_grad", "check_score_function_grad(score_function_grad)")
    r = Report("score_function_grad")
    g = torch.Generator().manual_seed(4)
    cases = {_("f(z) = z², μ = 1, σ = 0.5"): (lambda z: z ** 2, 1.0, 0.5),
             _("f(z) = sin z, μ = −0.3, σ = 2"): (torch.sin, -0.3, 2.0),
             _("f(z) = 1 if z > 0 else 0 (not differentiable), μ = 0.2, σ = 1.5"):
                 (lambda z: (z > 0).float(), 0.2, 1.5)}
    for case, (f, mu, sigma) in cases.items():
        z = mu + sigma * torch.randn(4000, generator=g)
        out, err = call(fn, f, z.clone(), mu, sigma)
        err = err or _python_number(out)
        if err:
            r.fail(case, err)
            continue
        per_sample = f(z) * (z - mu) / sigma ** 2
        ref = per_sample.mean()
        mistakes = {
            _("divide by the variance σ², not by σ: ∂/∂μ log N(z; μ, σ²) = (z − μ)/σ²"):
                (f(z) * (z - mu) / sigma).mean(),
            _("the score alone averages to zero: multiply it by f(z)"): ((z - mu) / sigma ** 2).mean(),
            _("wrong sign: the score is (z − μ)/σ², not (μ − z)/σ²"): -ref,
            _("that is the average of f(z), the objective, not its gradient"): f(z).mean(),
            _("you summed over the samples: average them"): per_sample.sum(),
            _("you returned one estimate per sample: average them into one number"): per_sample,
        }
        why = compare(out, ref, mistakes, _("one number"), atol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_gan_value(fn) -> None:
    """Exercise 1.4: gan_value(real_logits, fake_logits) = E[log D(x)] + E[log(1 - D(G(z)))]."""
    _require_callable(fn, "gan_value", "check_gan_value(gan_value)")
    r = Report("gan_value")
    ls = torch.nn.functional.logsigmoid
    g = torch.Generator().manual_seed(5)
    cases = {_("random logits, batch of 64"): (2 * torch.randn(64, generator=g), 2 * torch.randn(64, generator=g)),
             _("a confidently wrong discriminator (logits ±200, where sigmoid rounds to 0 or 1)"):
                 (torch.tensor([-200.0, -150.0, 3.0]), torch.tensor([200.0, 120.0, -2.0]))}
    for case, (real, fake) in cases.items():
        out, err = call(fn, real.clone(), fake.clone())
        err = err or _python_number(out)
        if err:
            r.fail(case, err)
            continue
        rd, fd = real.double(), fake.double()
        ref = ls(rd).mean() + ls(-fd).mean()
        if torch.is_tensor(out) and out.numel() == 1 and not torch.isfinite(out).all():
            r.fail(case, _("got {value}: log(sigmoid(f)) rounds to log(0) for confident logits. "
                           "Compute from the logits: log D = F.logsigmoid(f) and log(1 − D) = "
                           "F.logsigmoid(-f) (the article's sigmoid-then-log is what ERRATA 12 warns about)").format(
                value=out.item()))
            continue
        dd = torch.sigmoid(torch.sigmoid(rd)), torch.sigmoid(torch.sigmoid(fd))
        mistakes = {
            _("that is the discriminator's loss (binary cross-entropy), the negative of V; V is what "
              "D maximises"): -ref,
            _("the second term is log(1 − D(G(z))), not log D(G(z))"): ls(rd).mean() + ls(fd).mean(),
            _("real and fake are swapped: log D(·) goes with the real logits"): ls(fd).mean() + ls(-rd).mean(),
            _("a sigmoid applied twice: D = sigmoid(logit), the network's output is already the logit"):
                dd[0].log().mean() + (1 - dd[1]).log().mean(),
            _("you summed over the batch: V is made of expectations, take means"): ls(rd).sum() + ls(-fd).sum(),
            _("V is the sum of the two expectations, not their average"): ref / 2,
        }
        why = compare(out, ref, mistakes, _("one number"), atol=1e-3, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_attention(fn) -> None:
    """Exercise 1.5: attention(query, keys, values, temperature) -> (context (B, dv), weights (B, T))."""
    _require_callable(fn, "attention", "check_attention(attention)")
    r = Report("attention")
    g = torch.Generator().manual_seed(6)
    cases = {_("B=2, T=5, d=4, values of size 3, temperature 1"): (2, 5, 4, 3, 1.0),
             _("B=3, T=6, d=4, values of size 3, temperature 0.5"): (3, 6, 4, 3, 0.5),
             _("B=2, T=4, d=4, values of size 4, temperature 2"): (2, 4, 4, 4, 2.0)}
    for case, (b, t, d, dv, tau) in cases.items():
        q, k = torch.randn(b, d, generator=g), torch.randn(b, t, d, generator=g)
        v = torch.randn(b, t, dv, generator=g)
        out, err = call(fn, q.clone(), k.clone(), v.clone(), tau)
        if err is None and not (isinstance(out, (tuple, list)) and len(out) == 2):
            err = _("return two tensors, (context, weights); got {type}").format(type=type(out).__name__)
        if err:
            r.fail(case, err)
            continue
        context, weights = out
        s = torch.einsum("bd,btd->bt", q, k)
        ref_w = torch.softmax(s / tau, -1)
        why = compare(weights, ref_w, {
            _("softmax over dim 0 (the batch): each query's weights must sum to 1 over the T keys "
              "(softmax over dim=-1)"): torch.softmax(s / tau, 0),
            _("the weights are raw scores: apply softmax over the keys"): s / tau,
            _("the weights are raw scores (and not divided by the temperature): apply softmax"): s,
            _("the temperature multiplies the scores: divide by it, softmax(scores / temperature)"):
                torch.softmax(s * tau, -1),
            _("the temperature is ignored: softmax(scores / temperature)"): torch.softmax(s, -1),
            _("you divided by √d (the Transformer's scaling); here the score is q·k / temperature"):
                torch.softmax(s / tau / math.sqrt(d), -1),
        }, _("weights, shape (B, T)"))
        if why:
            r.fail(case, _("weights: {why}").format(why=why))
            continue
        ref_c = torch.einsum("bt,btv->bv", ref_w, v)
        why = compare(context, ref_c, {
            _("the context is the weighted sum of the values, not of the keys"):
                torch.einsum("bt,btv->bv", ref_w, k),
            _("the context is the plain mean of the values: weight each value by its attention weight"):
                v.mean(1),
            _("sum over the keys (dim 1) to get one context vector per query, shape (B, dv)"):
                ref_w[..., None] * v,
        }, _("context, shape (B, dv)"))
        r.fail(case, _("context: {why}").format(why=why)) if why else r.ok(case)
    return r.finish()
