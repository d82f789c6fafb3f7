"""The mathematics of generative models as small, checkable functions (chapter 01 and later).

Densities on a 1-D grid (KL, Jensen-Shannon, the GAN value, the optimal discriminator), a
linear-Gaussian latent model whose log p(x), posterior and ELBO are exact, and soft attention.
Where `torch.distributions` already does the job (closed-form KL, log densities, sampling),
use it; these functions cover what it does not.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal, Normal, kl_divergence

from .i18n import _
from .losses import gaussian_kl


def _tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(_("{name} must be a tensor or a list of numbers, got {type}").format(
            name=name, type=type(x).__name__)) from None


# --- densities on a grid --------------------------------------------------------------------

def mixture(weights, means, stds) -> MixtureSameFamily:
    """A 1-D Gaussian mixture as a torch distribution (log_prob, sample, mean, variance)."""
    w, m, s = (_tensor(v, n).double() for v, n in ((weights, "weights"), (means, "means"), (stds, "stds")))
    if not (w.dim() == m.dim() == s.dim() == 1 and len(w) == len(m) == len(s) > 0):
        raise ValueError(_("weights, means and stds must be three 1-D lists of the same length, got shapes "
                           "{weights}, {means}, {stds}").format(
            weights=tuple(w.shape), means=tuple(m.shape), stds=tuple(s.shape)))
    if (w < 0).any() or abs(w.sum().item() - 1) > 1e-6:
        raise ValueError(_("mixture weights must be >= 0 and sum to 1, got {weights}").format(weights=w.tolist()))
    if (s <= 0).any():
        raise ValueError(_("standard deviations must be > 0, got {stds}").format(stds=s.tolist()))
    return MixtureSameFamily(Categorical(probs=w), Normal(m, s))


def integrate(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Trapezoidal integral over the last dimension of `values`, sampled at the points `x`."""
    if values.shape[-1] != x.shape[-1]:
        raise ValueError(_("values have {n} points on their last dimension but the grid has {grid}: evaluate the "
                           "function on the grid x").format(n=values.shape[-1], grid=x.shape[-1]))
    return torch.trapezoid(values, x, dim=-1)


def kl_on_grid(log_p: torch.Tensor, log_q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = ∫ p (log p - log q) dx from log densities on the grid `x` (last dimension).

    Leading dimensions broadcast, so one call scores a whole family of q's. Where p underflows
    to 0 the integrand is 0 (the limit of p log p), not nan.
    """
    log_p, log_q = torch.broadcast_tensors(log_p, log_q)
    p = log_p.exp()
    integrand = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return integrate(integrand, x)


def kl_monte_carlo(p, q, n: int) -> tuple[float, float]:
    """Monte Carlo KL(p || q) = E_p[log p(x) - log q(x)] from n draws: (estimate, standard error).

    Draws use torch's global generator: seed it (torch.manual_seed) for a repeatable estimate.
    """
    if n < 2:
        raise ValueError(_("n must be at least 2 to give a standard error, got {n}").format(n=n))
    x = p.sample((n,))
    r = (p.log_prob(x) - q.log_prob(x)).reshape(n, -1).sum(1)  # independent dimensions add up
    return r.mean().item(), r.std().item() / math.sqrt(n)


def jsd_on_grid(log_p: torch.Tensor, log_q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence ½KL(p‖m) + ½KL(q‖m), m = (p + q)/2, in nats (at most log 2)."""
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    return 0.5 * kl_on_grid(log_p, log_m, x) + 0.5 * kl_on_grid(log_q, log_m, x)


def gaussian_kl_landscape(log_p: torch.Tensor, x: torch.Tensor, mus: torch.Tensor,
                          sigmas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward KL(p‖q) and reverse KL(q‖p) for every q = N(mu, sigma^2) of a grid of (mu, sigma).

    Returns two tensors of shape (len(mus), len(sigmas)).
    """
    log_q = Normal(mus.double()[:, None, None], sigmas.double()[None, :, None]).log_prob(x.double())
    return kl_on_grid(log_p, log_q, x), kl_on_grid(log_q, log_p, x)


# --- the GAN game on densities ---------------------------------------------------------------

def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)), from the two densities at x (½ where both are 0)."""
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(torch.finfo(total.dtype).tiny),
                       torch.full_like(total, 0.5))


def gan_value(d: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """V(D, G) = ∫ p_data log D + p_g log(1 - D) dx for a discriminator D given on the grid x.

    D is kept one rounding step inside (0, 1), so that where D rounds to 1 because p_g is
    negligible, the term p_g log(1 - D) is negligible too instead of 0 * -inf.
    """
    info = torch.finfo(d.dtype)
    d = d.clamp(info.tiny, 1 - info.eps / 2)
    zero = torch.zeros_like(d)
    a = torch.where(p_data > 0, p_data * torch.log(d), zero)
    b = torch.where(p_g > 0, p_g * torch.log1p(-d), zero)
    return integrate(a + b, x)


# --- a latent-variable model where everything is exact ---------------------------------------

class LinearGaussian:
    """z ~ N(0, I_k), x | z ~ N(W z + b, s^2 I_d): log p(x), p(z|x) and the ELBO in closed form.

    This is probabilistic PCA. Everything a VAE can only bound or approximate can be computed
    here exactly, which makes it the place to check the ELBO identity.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, noise_std: float):
        W, b = _tensor(W, "W").double(), _tensor(b, "b").double()
        if W.dim() != 2 or b.shape != (W.shape[0],):
            raise ValueError(_("W must be (d, k) and b (d,), got {W} and {b}").format(
                W=tuple(W.shape), b=tuple(b.shape)))
        if not noise_std > 0:
            raise ValueError(_("noise_std must be > 0, got {noise_std}").format(noise_std=noise_std))
        self.W, self.b, self.s = W, b, float(noise_std)
        self.d, self.k = W.shape

    def prior(self) -> MultivariateNormal:
        return MultivariateNormal(torch.zeros(self.k, dtype=torch.float64),
                                  torch.eye(self.k, dtype=torch.float64))

    def marginal(self) -> MultivariateNormal:
        """p(x) = N(b, W W^T + s^2 I): the integral over z done exactly."""
        cov = self.W @ self.W.T + self.s ** 2 * torch.eye(self.d, dtype=torch.float64)
        return MultivariateNormal(self.b, cov)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """p(z | x) = N(m, S), S = (I + W^T W / s^2)^-1, m = S W^T (x - b) / s^2."""
        precision = torch.eye(self.k, dtype=torch.float64) + self.W.T @ self.W / self.s ** 2
        cov = torch.linalg.inv(precision)
        mean = (x.double() - self.b) @ self.W @ cov / self.s ** 2
        return MultivariateNormal(mean, (cov + cov.T) / 2)

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(z) + log p(x | z), for z of shape (..., k)."""
        z = z.double()
        lik = Normal(z @ self.W.T + self.b, self.s).log_prob(x.double()).sum(-1)
        return self.prior().log_prob(z) + lik

    def elbo(self, x: torch.Tensor, q_mu: torch.Tensor, q_logvar: torch.Tensor) -> torch.Tensor:
        """ELBO of q = N(q_mu, diag exp(q_logvar)) in closed form:
        E_q[log p(x|z)] - KL(q || p(z)), with E_q ||x - Wz - b||^2 = ||x - W mu - b||^2 + tr(W Σ W^T).
        """
        q_mu, q_logvar = q_mu.double(), q_logvar.double()
        resid = x.double() - q_mu @ self.W.T - self.b
        trace = (self.W.pow(2) * q_logvar.exp()[..., None, :]).sum((-2, -1))
        expected_lik = (-0.5 * self.d * math.log(2 * math.pi * self.s ** 2)
                        - (resid.pow(2).sum(-1) + trace) / (2 * self.s ** 2))
        return expected_lik - gaussian_kl(q_mu.reshape(-1, self.k),
                                          q_logvar.reshape(-1, self.k)).reshape(q_mu.shape[:-1])

    def gap(self, x: torch.Tensor, q_mu: torch.Tensor, q_logvar: torch.Tensor) -> torch.Tensor:
        """KL(q(z) || p(z | x)), which the identity says equals log p(x) - ELBO (batched over q)."""
        q = MultivariateNormal(q_mu.double(), torch.diag_embed(q_logvar.double().exp()))
        return kl_divergence(q, self.posterior(x))


# --- attention: a soft, differentiable dictionary lookup -------------------------------------

def dot_scores(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """score(q, k_t) = q · k_t. query (B, d), keys (B, T, d) -> scores (B, T)."""
    _attention_shapes(query, keys)
    if query.shape[-1] != keys.shape[-1]:
        raise ValueError(_("a dot product needs a query and keys of the same size, got {query} and {keys}: project "
                           "one of them, or use additive_scores").format(query=query.shape[-1], keys=keys.shape[-1]))
    return torch.einsum("bd,btd->bt", query, keys)


def additive_scores(query: torch.Tensor, keys: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor,
                    v: torch.Tensor) -> torch.Tensor:
    """Bahdanau's score(q, k_t) = v · tanh(W_q q + W_k k_t). W_q (h, d), W_k (h, d), v (h,)."""
    _attention_shapes(query, keys)
    return torch.tanh((query @ W_q.T)[:, None, :] + keys @ W_k.T) @ v


def soft_lookup(scores: torch.Tensor, values: torch.Tensor, temperature: float = 1.0,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """weights = softmax(scores / temperature) over T; context = Σ_t weights_t values_t.

    scores (B, T), values (B, T, dv), mask (B, T) True where a key is real (padding is False).
    Returns (context (B, dv), weights (B, T)).
    """
    if not temperature > 0:
        raise ValueError(_("temperature must be > 0, got {temperature}").format(temperature=temperature))
    if scores.shape != values.shape[:2]:
        raise ValueError(_("scores {scores} must be (B, T) for values (B, T, dv) {values}").format(
            scores=tuple(scores.shape), values=tuple(values.shape)))
    scores = scores / temperature
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.einsum("bt,btv->bv", weights, values), weights


def _attention_shapes(query, keys):
    if query.dim() != 2 or keys.dim() != 3 or keys.shape[0] != query.shape[0]:
        raise ValueError(_("expected query (B, d) and keys (B, T, d), got {query} and {keys}").format(
            query=tuple(query.shape), keys=tuple(keys.shape)))


# --- references for chapter 01's exercises (a student who skips one takes these) -------------

def kl_normal(mu1, sigma1, mu2, sigma2):
    """Exercise 1.1's reference: KL(N(mu1, sigma1²) ‖ N(mu2, sigma2²)) in nats, elementwise."""
    mu1, sigma1, mu2, sigma2 = (torch.as_tensor(t) for t in (mu1, sigma1, mu2, sigma2))
    return kl_divergence(Normal(mu1, sigma1), Normal(mu2, sigma2))


def elbo_estimate(log_joint, q, z):
    """Exercise 1.2's reference: the Monte Carlo ELBO, mean over z ~ q of log p(x, z) − log q(z)."""
    log_weights = log_joint(z) - q.log_prob(z).sum(dim=-1)
    return log_weights.mean()


def score_function_grad(f, z, mu, sigma):
    """Exercise 1.3's reference: the REINFORCE estimate of d/dmu E_{N(mu, sigma²)}[f(z)] from samples z."""
    score = (z - mu) / sigma ** 2  # d/dmu log N(z; mu, sigma²)
    return torch.mean(f(z) * score)


def gan_value_from_logits(real_logits, fake_logits):
    """Exercise 1.4's reference: V = mean log D(x) over real + mean log(1 − D(G(z))) over fakes, from logits."""
    log_d_real = torch.nn.functional.logsigmoid(real_logits)
    log_one_minus_d_fake = torch.nn.functional.logsigmoid(-fake_logits)
    return log_d_real.mean() + log_one_minus_d_fake.mean()


def dot_attention(query, keys, values, temperature: float = 1.0):
    """Exercise 1.5's reference: dot-product attention with a temperature -> (context (B, dv), weights (B, T))."""
    return soft_lookup(dot_scores(query, keys), values, temperature)


# --- latent codes -------------------------------------------------------------------------------

def slerp(z0: torch.Tensor, z1: torch.Tensor, t) -> torch.Tensor:
    """Spherical interpolation between latent codes (rows of z0, z1) at fractions t in [0, 1].

    Between two draws from N(0, I) a straight line passes through codes of unusually small
    norm, which the generator rarely saw; the arc keeps the norm typical.
    """
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device).reshape(-1, 1)
    cos = torch.nn.functional.cosine_similarity(z0, z1, dim=-1).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.arccos(cos).reshape(-1, 1) if z0.dim() > 1 else torch.arccos(cos)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)
