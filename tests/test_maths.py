"""gh.maths against torch.distributions, quadrature, Monte Carlo and finite differences; gh.verify."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from genai_helpers import maths, verify

f64 = torch.float64
X = torch.linspace(-25, 25, 20001, dtype=f64)


def normal(m, s):
    return Normal(torch.tensor(m, dtype=f64), torch.tensor(s, dtype=f64))


@pytest.mark.parametrize("a, b", [((0.0, 1.0), (0.0, 2.0)), ((0.5, 0.8), (-1.0, 2.0)), ((3.0, 0.3), (1.0, 1.0))])
def test_kl_on_grid_matches_the_closed_form_of_torch_distributions(a, b):
    p, q = normal(*a), normal(*b)
    grid = maths.kl_on_grid(p.log_prob(X), q.log_prob(X), X)
    torch.testing.assert_close(grid, kl_divergence(p, q), atol=1e-9, rtol=0)


def test_kl_on_grid_is_finite_where_p_underflows_and_broadcasts():
    p = normal(0.0, 0.1)  # p(x) rounds to 0 far out: 0 * (-inf) must not become nan
    qs = Normal(torch.tensor([[0.0], [1.0]], dtype=f64), torch.tensor([[1.0], [2.0]], dtype=f64))
    kl = maths.kl_on_grid(p.log_prob(X), qs.log_prob(X), X)
    assert kl.shape == (2,) and torch.isfinite(kl).all()
    torch.testing.assert_close(kl, kl_divergence(p, qs)[:, 0], atol=1e-9, rtol=0)


def test_kl_monte_carlo_agrees_with_the_closed_form_within_its_standard_error():
    torch.manual_seed(0)
    p, q = normal(0.5, 0.8), normal(-1.0, 2.0)
    est, se = maths.kl_monte_carlo(p, q, 200_000)
    assert abs(est - kl_divergence(p, q).item()) < 4 * se
    with pytest.raises(ValueError, match="at least 2"):
        maths.kl_monte_carlo(p, q, 1)


def test_mixture_is_a_normalised_density_with_the_right_moments():
    mix = maths.mixture([0.3, 0.7], [-1.0, 2.0], [0.5, 1.0])
    assert abs(maths.integrate(mix.log_prob(X).exp(), X).item() - 1) < 1e-9
    m = maths.integrate(X * mix.log_prob(X).exp(), X).item()
    assert abs(m - mix.mean.item()) < 1e-9 and abs(m - (0.3 * -1 + 0.7 * 2)) < 1e-9


@pytest.mark.parametrize("args, words", [
    (([0.5, 0.6], [0, 1], [1, 1]), "sum to 1"),
    (([0.5, 0.5], [0, 1], [1, 0]), "must be > 0"),
    (([1.0], [0, 1], [1, 1]), "same length"),
    (("a", [0], [1]), "list of numbers"),
])
def test_mixture_rejects_bad_input_with_a_message(args, words):
    with pytest.raises((ValueError, TypeError), match=words):
        maths.mixture(*args)


def test_forward_kl_fit_is_moment_matching_and_reverse_fit_seeks_a_mode():
    target = maths.mixture([0.5, 0.5], [-2.0, 2.0], [0.6, 0.6])
    x = torch.linspace(-10, 10, 801, dtype=f64)
    mus, sigmas = torch.linspace(-3, 3, 61, dtype=f64), torch.linspace(0.3, 3, 55, dtype=f64)
    fwd, rev = maths.gaussian_kl_landscape(target.log_prob(x), x, mus, sigmas)
    assert fwd.shape == rev.shape == (61, 55)
    i, j = divmod(int(fwd.argmin()), 55)
    assert abs(mus[i]) < 0.06 and abs(sigmas[j] - math.sqrt(4.36)) < 0.03
    i, j = divmod(int(rev.argmin()), 55)
    assert abs(abs(mus[i]) - 2) < 0.06 and abs(sigmas[j] - 0.6) < 0.03


def test_jsd_properties():
    p, q = normal(-1.0, 1.0), normal(1.5, 0.7)
    lp, lq = p.log_prob(X), q.log_prob(X)
    j = maths.jsd_on_grid(lp, lq, X)
    torch.testing.assert_close(j, maths.jsd_on_grid(lq, lp, X))  # symmetric
    assert 0 < j < math.log(2)
    assert abs(maths.jsd_on_grid(lp, lp, X).item()) < 1e-12
    far = normal(200.0, 1.0).log_prob(torch.linspace(-20, 220, 48001, dtype=f64))
    near = normal(0.0, 1.0).log_prob(torch.linspace(-20, 220, 48001, dtype=f64))
    assert abs(maths.jsd_on_grid(near, far, torch.linspace(-20, 220, 48001, dtype=f64)).item()
               - math.log(2)) < 1e-6  # disjoint supports: log 2, the maximum


def test_optimal_discriminator_and_the_gan_value():
    p, q = normal(-1.0, 1.0), normal(1.5, 0.7)
    pd, pg = p.log_prob(X).exp(), q.log_prob(X).exp()
    d = maths.optimal_discriminator(pd, pg)
    torch.testing.assert_close(d, pd / (pd + pg).clamp_min(1e-300))
    zero = torch.zeros(3, dtype=f64)
    assert (maths.optimal_discriminator(zero, zero) == 0.5).all()  # nothing to tell apart
    v = maths.gan_value(d, pd, pg, X)
    torch.testing.assert_close(v, -math.log(4) + 2 * maths.jsd_on_grid(p.log_prob(X), q.log_prob(X), X))
    for worse in (d.clamp(0.2, 0.8), torch.full_like(d, 0.5), 0.9 * d + 0.05):
        assert maths.gan_value(worse, pd, pg, X) < v


def small_model(k=1, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return maths.LinearGaussian(torch.randn(d, k, generator=g, dtype=f64),
                                torch.randn(d, generator=g, dtype=f64), 0.6)


def test_linear_gaussian_marginal_equals_the_integral_over_z():
    model = small_model(k=1)
    x = torch.tensor([0.3, -1.0, 2.0], dtype=f64)
    z = torch.linspace(-12, 12, 24001, dtype=f64)[:, None]
    by_quadrature = maths.integrate(model.log_joint(x, z).exp(), z[:, 0]).log()
    torch.testing.assert_close(by_quadrature, model.marginal().log_prob(x), atol=1e-9, rtol=0)


def test_linear_gaussian_posterior_is_bayes_rule():
    model = small_model(k=2, d=4)
    x = torch.randn(4, dtype=f64)
    z = torch.randn(10, 2, dtype=f64)
    torch.testing.assert_close(model.posterior(x).log_prob(z),
                               model.log_joint(x, z) - model.marginal().log_prob(x))


def test_elbo_closed_form_matches_monte_carlo_and_the_identity():
    model = small_model(k=2, d=4, seed=1)
    x = torch.randn(4, dtype=f64)
    mu, logvar = torch.tensor([0.3, -0.2], dtype=f64), torch.tensor([-1.0, 0.5], dtype=f64)
    q = Normal(mu, (0.5 * logvar).exp())
    torch.manual_seed(0)
    z = q.sample((400_000,))
    w = model.log_joint(x, z) - q.log_prob(z).sum(-1)
    assert abs(w.mean() - model.elbo(x, mu, logvar)) < 4 * w.std() / math.sqrt(len(w))
    torch.testing.assert_close(model.elbo(x, mu, logvar) + model.gap(x, mu, logvar),
                               model.marginal().log_prob(x))
    batch = model.elbo(x, torch.randn(7, 2, dtype=f64), torch.randn(7, 2, dtype=f64))
    assert batch.shape == (7,) and (batch <= model.marginal().log_prob(x)).all()


def test_linear_gaussian_rejects_bad_shapes():
    with pytest.raises(ValueError, match="W must be"):
        maths.LinearGaussian(torch.ones(3, 2), torch.ones(2), 1.0)
    with pytest.raises(ValueError, match="noise_std"):
        maths.LinearGaussian(torch.ones(3, 2), torch.ones(3), 0.0)


def test_gradients_match_finite_differences():
    model = small_model(k=2, d=3, seed=2)
    x = torch.randn(3, dtype=f64)
    mu = torch.randn(2, dtype=f64, requires_grad=True)
    logvar = torch.randn(2, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, lv: model.elbo(x, m, lv), (mu, logvar))
    q, k = torch.randn(2, 3, dtype=f64, requires_grad=True), torch.randn(2, 4, 5, dtype=f64, requires_grad=True)
    W_q, W_k, v = (torch.randn(6, 3, dtype=f64), torch.randn(6, 5, dtype=f64), torch.randn(6, dtype=f64))
    assert torch.autograd.gradcheck(lambda a, b: maths.additive_scores(a, b, W_q, W_k, v), (q, k))
    values = torch.randn(2, 4, 3, dtype=f64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, vv: maths.soft_lookup(s, vv, 0.7)[0],
                                    (torch.randn(2, 4, dtype=f64, requires_grad=True), values))
    x = torch.linspace(-6, 6, 61, dtype=f64)
    log_q = Normal(0.3, 1.2).log_prob(x).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda lq: maths.kl_on_grid(normal(0.0, 1.0).log_prob(x), lq, x), (log_q,))


def test_attention_matches_torch_and_handles_masks():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 4, generator=g), torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 2, generator=g)
    ctx, w = maths.soft_lookup(maths.dot_scores(q, k), v, temperature=0.5)
    ref = torch.nn.functional.scaled_dot_product_attention(q[:, None], k, v, scale=2.0)[:, 0]
    torch.testing.assert_close(ctx, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    mask = torch.tensor([[True] * 5, [True, True, False, False, False], [True] + [False] * 4])
    _, wm = maths.soft_lookup(maths.dot_scores(q, k), v, mask=mask)
    assert (wm[~mask] == 0).all() and torch.allclose(wm[2, 0], torch.tensor(1.0))
    loop = torch.tensor([[0.5 * torch.tanh(q[b] + k[b, t]).sum() for t in range(5)] for b in range(3)])
    eye = torch.eye(4)
    torch.testing.assert_close(maths.additive_scores(q, k, eye, eye, torch.full((4,), 0.5)), loop)


@pytest.mark.parametrize("call, words", [
    (lambda: maths.dot_scores(torch.ones(2, 3), torch.ones(2, 4, 5)), "same size"),
    (lambda: maths.dot_scores(torch.ones(3), torch.ones(2, 4, 3)), "expected query"),
    (lambda: maths.soft_lookup(torch.ones(2, 4), torch.ones(2, 4, 3), temperature=0), "temperature"),
    (lambda: maths.soft_lookup(torch.ones(4, 2), torch.ones(2, 4, 3)), "must be"),
    (lambda: maths.integrate(torch.ones(5), torch.ones(4)), "grid"),
])
def test_bad_input_gets_a_message(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_multivariate_gap_is_batched_and_matches_torch():
    model = small_model(k=2, d=3, seed=3)
    x = torch.randn(3, dtype=f64)
    mu, lv = torch.randn(5, 2, dtype=f64), torch.randn(5, 2, dtype=f64)
    one = [kl_divergence(MultivariateNormal(m, torch.diag(v.exp())), model.posterior(x)) for m, v in zip(mu, lv)]
    torch.testing.assert_close(model.gap(x, mu, lv), torch.stack(one))


def test_checklist_counts_prints_and_fails_loudly(capsys):
    c = verify.Checklist()
    c.close("two plus two", 2 + 2, 4, atol=1e-12)
    c.close("an error against zero", torch.tensor(3e-9), 0.0, atol=1e-8)
    c.holds("a tensor condition", torch.tensor([True, True]), "both")
    assert c.counts() == {"checks_passed": 3, "checks_total": 3}
    out = capsys.readouterr().out
    assert "✔ check 1: two plus two" in out and "✔ check 3: a tensor condition: both" in out
    with pytest.raises(verify.CheckError, match="check 4 failed: pi"):
        c.close("pi", 3.14, math.pi, atol=1e-3)
    assert c.counts() == {"checks_passed": 3, "checks_total": 4}
    with pytest.raises(verify.CheckError):
        c.holds("false", False)
    with pytest.raises(verify.CheckError):
        c.close("nan is never close", float("nan"), 0.0, atol=1.0)
    with pytest.raises(ValueError, match="tolerance"):
        c.close("no tolerance", 1.0, 1.0)
    with pytest.raises(TypeError, match="must be a number"):
        c.close("text", "one", 1.0, atol=1)
    with pytest.raises(ValueError, match="one number"):
        c.close("a vector", torch.ones(3), 1.0, atol=1)
    with pytest.raises(TypeError, match="must be a bool"):
        c.holds("not a condition", "yes")
