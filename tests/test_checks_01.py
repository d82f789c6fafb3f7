"""Chapter 01's checkers: a right answer passes, typical wrong ones are named, bad input is a message."""
import math

import pytest
import torch
import torch.nn.functional as F

from genai_helpers import checks

CHECKERS = [checks.check_kl_normal, checks.check_elbo_estimate, checks.check_score_function_grad,
            checks.check_gan_value, checks.check_attention]


def kl_right(m1, s1, m2, s2):
    return torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


@pytest.mark.parametrize("fn, words", [
    (kl_right, "passed"),
    (lambda m1, s1, m2, s2: kl_right(m1, s1, m2, s2).tolist(), "not a list"),
    (lambda m1, s1, m2, s2: kl_right(m2, s2, m1, s1), "KL(second ‖ first)"),
    (lambda m1, s1, m2, s2: -torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5,
     "sign of the log term"),
    (lambda m1, s1, m2, s2: -torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5,
     "your KL is negative"),
    (lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1 + (m1 - m2) ** 2) / (2 * s2) - 0.5, "needs variances"),
    (lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2), "constant −½"),
    (lambda m1, s1, m2, s2: torch.log(s2**2 / s1**2) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5,
     "log(σ2²/σ1²)"),
])
def test_check_kl_normal(fn, words, verdict):
    assert words in verdict(checks.check_kl_normal, fn)


def elbo_right(log_joint, q, z):
    return (log_joint(z) - q.log_prob(z).sum(-1)).mean()


@pytest.mark.parametrize("fn, words", [
    (elbo_right, "passed"),
    (lambda lj, q, z: elbo_right(lj, q, z).item(), "not a Python float"),  # .item() detaches it
    (lambda lj, q, z: lj(z).mean(), "log q(z) is missing"),
    (lambda lj, q, z: -elbo_right(lj, q, z), "wrong sign"),
    (lambda lj, q, z: (lj(z) - q.log_prob(z)).mean(), "sum it over the last dimension"),
    (lambda lj, q, z: (lj(z)[:, None] - q.log_prob(z)).mean(), "sum log q(z) over the latent dimensions"),
    (lambda lj, q, z: torch.logsumexp(lj(z) - q.log_prob(z).sum(-1), 0) - math.log(len(z)), "IWAE"),
    (lambda lj, q, z: lj(z) - q.log_prob(z).sum(-1), "one value per sample"),
    (lambda lj, q, z: (lj(z) - q.log_prob(z).sum(-1)).sum(), "summed over the samples"),
])
def test_check_elbo_estimate(fn, words, verdict):
    assert words in verdict(checks.check_elbo_estimate, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda f, z, mu, s: (f(z) * (z - mu) / s**2).mean(), "passed"),
    (lambda f, z, mu, s: (f(z) * (z - mu) / s).mean(), "divide by the variance"),
    (lambda f, z, mu, s: ((z - mu) / s**2).mean(), "multiply it by f(z)"),
    (lambda f, z, mu, s: (f(z) * (mu - z) / s**2).mean(), "wrong sign"),
    (lambda f, z, mu, s: f(z) * (z - mu) / s**2, "one estimate per sample"),
    (lambda f, z, mu, s: (f(z) * (z - mu) / s**2).mean().item(), "not a Python float"),
    (lambda f, z, mu, s: f(z).mean(), "not its gradient"),
])
def test_check_score_function_grad(fn, words, verdict):
    assert words in verdict(checks.check_score_function_grad, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda r, f: F.logsigmoid(r).mean() + F.logsigmoid(-f).mean(), "passed"),
    (lambda r, f: -F.softplus(-r).mean() - F.softplus(f).mean(), "passed"),
    (lambda r, f: torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean(), "F.logsigmoid"),
    (lambda r, f: -(F.logsigmoid(r).mean() + F.logsigmoid(-f).mean()), "the negative of V"),
    (lambda r, f: F.logsigmoid(r).mean() + F.logsigmoid(f).mean(), "not log D(G(z))"),
    (lambda r, f: F.logsigmoid(f).mean() + F.logsigmoid(-r).mean(), "swapped"),
    (lambda r, f: torch.sigmoid(torch.sigmoid(r)).log().mean() + (1 - torch.sigmoid(torch.sigmoid(f))).log().mean(),
     "sigmoid applied twice"),
    (lambda r, f: F.logsigmoid(r).sum() + F.logsigmoid(-f).sum(), "take means"),
    (lambda r, f: (F.logsigmoid(r).mean() + F.logsigmoid(-f).mean()).item(), "not a Python float"),
])
def test_check_gan_value(fn, words, verdict):
    assert words in verdict(checks.check_gan_value, fn)


def attention_right(q, k, v, t):
    w = torch.softmax(torch.einsum("bd,btd->bt", q, k) / t, dim=-1)
    return torch.einsum("bt,btv->bv", w, v), w


def attention_with(weights_fn, context_fn=None):
    def fn(q, k, v, t):
        s = torch.einsum("bd,btd->bt", q, k)
        w = weights_fn(s, t, q.shape[-1])
        return (context_fn(w, k, v) if context_fn else torch.einsum("bt,btv->bv", w, v)), w
    return fn


@pytest.mark.parametrize("fn, words", [
    (attention_right, "passed"),
    (attention_with(lambda s, t, d: torch.softmax(s / t, 0)), "softmax over dim 0"),
    (attention_with(lambda s, t, d: s / t), "raw scores"),
    (attention_with(lambda s, t, d: torch.softmax(s * t, -1)), "divide by it"),
    (attention_with(lambda s, t, d: torch.softmax(s, -1)), "temperature is ignored"),
    (attention_with(lambda s, t, d: torch.softmax(s / t / math.sqrt(d), -1)), "√d"),
    (lambda q, k, v, t: (attention_right(q, k, v, t)[0], attention_right(q, k, v, t)[1].T), "swapped"),
    (attention_with(lambda s, t, d: torch.softmax(s / t, -1), lambda w, k, v: torch.einsum("bt,btv->bv", w, k)),
     "not of the keys"),
    (attention_with(lambda s, t, d: torch.softmax(s / t, -1), lambda w, k, v: v.mean(1)), "plain mean"),
    (attention_with(lambda s, t, d: torch.softmax(s / t, -1), lambda w, k, v: w[..., None] * v),
     "sum over the keys"),
    (lambda q, k, v, t: attention_right(q, k, v, t)[0], "return two tensors"),
    (lambda q, k, v, t: attention_right(q, k, v, t)[::-1], "expected shape"),
])
def test_check_attention(fn, words, verdict):
    assert words in verdict(checks.check_attention, fn)


@pytest.mark.parametrize("checker, reference", [
    (checks.check_kl_normal, "kl_normal"), (checks.check_elbo_estimate, "elbo_estimate"),
    (checks.check_score_function_grad, "score_function_grad"),
    (checks.check_gan_value, "gan_value_from_logits"), (checks.check_attention, "dot_attention")])
def test_the_references_taken_by_the_skip_lines_pass_their_checkers(checker, reference, verdict):
    from genai_helpers import maths
    assert verdict(checker, getattr(maths, reference)) == "passed"


@pytest.mark.parametrize("checker", [checks.check_elbo_estimate, checks.check_score_function_grad,
                                     checks.check_gan_value])
def test_a_python_float_is_refused_with_the_reason_and_the_fix(checker, verdict):
    """An answer ending in .item() must not pass: the chapter keeps these numbers as tensors."""
    v = verdict(checker, lambda *a: 0.5)
    assert "return a 0-dim tensor" in v and "detaches the number from autograd" in v and "drop the .item()" in v


def test_chapter_01_hints_have_an_idea_and_a_tools_level():
    from genai_helpers.checks.mathematics import HINTS
    assert sorted(HINTS) == ["1.1", "1.2", "1.3", "1.4", "1.5"]
    assert all(len(levels) == 2 and all(len(h) > 40 for h in levels) for levels in HINTS.values())
