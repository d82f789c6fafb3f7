"""Each checker: a right answer passes; typical wrong answers are named; bad input is a message."""
import pytest
import torch
import torch.nn.functional as F

from genai_helpers import checks
from genai_helpers.checks import CheckFailed


def verdict(checker, fn):
    try:
        checker(fn)
    except CheckFailed as e:
        return str(e)
    return "passed"


def kl_right(mu, logvar):
    return -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)


@pytest.mark.parametrize("fn, words", [
    (kl_right, "passed"),
    (lambda mu, lv: 0.5 * (1 + lv - mu**2 - lv.exp()).sum(1), "wrong sign"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - lv.exp()).mean(1), "averaged over the latent"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - (0.5 * lv).exp()).sum(1), "sigma^2 = exp(logvar)"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - lv.exp()), "forgot to sum"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - lv.exp()).sum(0), "expected shape"),
])
def test_check_kl(fn, words):
    assert words in verdict(checks.check_kl, fn)


def test_not_implemented_and_crashes_and_bad_input_are_messages():
    def stub(mu, logvar):
        raise NotImplementedError("sum -1/2 (1 + logvar - mu^2 - exp(logvar)) over dim 1")

    v = verdict(checks.check_kl, stub)
    assert "not implemented yet" in v and "Hint: sum" in v
    assert "raised ZeroDivisionError" in verdict(checks.check_kl, lambda mu, lv: 1 / 0)
    for bad in (None, 3, "kl_term"):
        assert "pass your function itself" in verdict(checks.check_kl, bad)
    assert "not float" in verdict(checks.check_kl, lambda mu, lv: 1.0)
    assert "not a tuple" in verdict(checks.check_kl, lambda mu, lv: (mu, lv))


def test_failure_renders_without_traceback():
    with pytest.raises(CheckFailed) as e:
        checks.check_kl(None)
    assert e.value._render_traceback_() == str(e.value).splitlines()


@pytest.mark.parametrize("fn, words", [
    (lambda mu, lv: mu + (0.5 * lv).exp() * torch.randn_like(mu), "passed"),
    (lambda mu, lv: mu + lv.exp() * torch.randn_like(mu), "sigma^2"),
    (lambda mu, lv: mu, "does not vary"),
    (lambda mu, lv: torch.distributions.Normal(mu, (0.5 * lv).exp()).sample(), "no gradient"),
    (lambda mu, lv: (mu + (0.5 * lv).exp() * torch.randn_like(mu)).detach(), "no gradient"),
    (lambda mu, lv: mu + (0.5 * lv).exp() * torch.randn_like(mu) + 1, "mean mu"),
])
def test_check_reparameterize(fn, words):
    assert words in verdict(checks.check_reparameterize, fn)


def bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))


@pytest.mark.parametrize("fn, words", [
    (bce, "passed"),
    (lambda lg, x: F.binary_cross_entropy_with_logits(lg, x, reduction="none").mean((1, 2, 3)),
     "averaged over the 784 pixels"),
    (lambda lg, x: F.binary_cross_entropy_with_logits(lg, x), "default reduction"),
    (lambda lg, x: bce(lg, x).mean(), "not the batch mean"),
    (lambda lg, x: (torch.sigmoid(lg) - x).pow(2).mean((1, 2, 3)), "mean squared error"),
    (lambda lg, x: -bce(lg, x), "wrong sign"),
])
def test_check_reconstruction(fn, words):
    assert words in verdict(checks.check_reconstruction, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda lg, x, mu, lv: bce(lg, x) + kl_right(mu, lv), "passed"),
    (lambda lg, x, mu, lv: bce(lg, x) - kl_right(mu, lv), "KL is subtracted"),
    (lambda lg, x, mu, lv: bce(lg, x), "KL term is missing"),
    (lambda lg, x, mu, lv: (bce(lg, x) + kl_right(mu, lv)).mean(), "not the batch mean"),
])
def test_check_neg_elbo(fn, words):
    assert words in verdict(checks.check_neg_elbo, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda x: x.float() / 255, "passed"),
    (lambda x: x / 255, "passed"),
    (lambda x: x.float() / 256, "not 256"),
    (lambda x: x // 255, "integer division"),
    (lambda x: x.double() / 255, "the dtype is torch.float64"),
    (lambda x: x.float(), "still 0..255"),
])
def test_check_to_unit(fn, words):
    assert words in verdict(checks.check_to_unit, fn)
