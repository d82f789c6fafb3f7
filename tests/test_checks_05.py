"""Chapter 05 checkers: right answers pass, typical mistakes are named, bad input is a message."""
import pytest
import torch
import torch.nn.functional as F
from test_checks import verdict  # the verdict, or "passed"

from genai_helpers import checks


@pytest.mark.parametrize("fn, words", [
    (lambda y: F.one_hot(y, 10).float(), "passed"),
    (lambda y: torch.eye(10)[y], "passed"),
    (lambda y: F.one_hot(y).float(), "number of columns is the number of classes"),
    (lambda y: F.one_hot(y, 10), "dtype is torch.int64"),
    (lambda y: F.one_hot(y, 10).float().T, "one row per label"),
    (lambda y: F.one_hot((y + 1) % 10, 10).float(), "one column off"),
    (lambda y: y, "not the labels themselves"),
    (lambda y: None, "return a torch tensor"),
])
def test_check_one_hot(fn, words):
    assert words in verdict(checks.check_one_hot, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda g, o, m: torch.where(m, g, o), "passed"),
    (lambda g, o, m: g * m + o * ~m, "passed"),
    (lambda g, o, m: torch.where(m, o, g), "missing"),
    (lambda g, o, m: g * m, "not 0"),
    (lambda g, o, m: g, "not the model's guess"),
    (lambda g, o, m: g * m + o, "don't add it"),
    (lambda g, o, m: (g + o) / 2, "blends"),
])
def test_check_keep_observed(fn, words):
    assert words in verdict(checks.check_keep_observed, fn)


def mse(r, t, m):
    m = m.flatten(1).float()
    return ((r - t).pow(2).flatten(1) * m).sum(1) / m.sum(1)


@pytest.mark.parametrize("fn, words", [
    (lambda r, t, m: 10 * torch.log10(1 / mse(r, t, m)), "passed"),
    (lambda r, t, m: -10 * torch.log10(mse(r, t, m)), "passed"),
    (lambda r, t, m: 10 * torch.log10(1 / (r - t).pow(2).flatten(1).mean(1)), "masked pixels only"),
    (lambda r, t, m: 20 * torch.log10(1 / mse(r, t, m)), "20 log10"),
    (lambda r, t, m: 10 * torch.log(1 / mse(r, t, m)), "natural log"),
    (lambda r, t, m: 10 * torch.log10(mse(r, t, m)), "sign is flipped"),
    (lambda r, t, m: 10 * torch.log10(1 / mse(r, t, m)).mean(), "not the batch average"),
    (lambda r, t, m: 1 / 0, "raised ZeroDivisionError"),
])
def test_check_masked_psnr(fn, words):
    assert words in verdict(checks.check_masked_psnr, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda x: F.avg_pool2d(x, 2), "passed"),
    (lambda x: x.unflatten(2, (14, 2)).unflatten(4, (14, 2)).mean((3, 5)), "passed"),
    (lambda x: x[..., ::2, ::2], "every other pixel"),
    (lambda x: F.avg_pool2d(x, 2) * 4, "block's sum"),
    (lambda x: F.max_pool2d(x, 2), "maximum"),
    (lambda x: F.interpolate(x, size=(14, 14), mode="bilinear"), "passed"),  # exactly the 2x2 mean
    (lambda x: F.avg_pool2d(x, 4), "expected shape (3, 1, 14, 14)"),
])
def test_check_downsample(fn, words):
    assert words in verdict(checks.check_downsample, fn)


def per_class(pred, req):
    return torch.stack([(pred[req == c] == c).double().mean() for c in range(10)])


@pytest.mark.parametrize("fn, words", [
    (per_class, "passed"),
    (lambda p, r: torch.bincount(r[p == r], minlength=10) / torch.bincount(r, minlength=10), "passed"),
    (lambda p, r: torch.bincount(r[p == r], minlength=10) / torch.bincount(p, minlength=10), "precision"),
    (lambda p, r: torch.bincount(r[p == r], minlength=10).double(), "count of right answers"),
    (lambda p, r: (p == r).double().mean().expand(10), "overall accuracy repeated"),
    (lambda p, r: torch.bincount(p, minlength=10) / len(p), "how often each digit was read"),
    (lambda p, r: 1 / 0, "raised ZeroDivisionError"),
])
def test_check_accuracy_per_class(fn, words):
    assert words in verdict(checks.check_accuracy_per_class, fn)


@pytest.mark.parametrize("checker", [checks.check_one_hot, checks.check_keep_observed, checks.check_masked_psnr,
                                     checks.check_downsample, checks.check_accuracy_per_class])
def test_bad_input_is_a_message(checker):
    assert "pass your function itself" in verdict(checker, "not a function")
    def todo(*a):
        raise NotImplementedError("Exercise 5.x")
    assert "not implemented yet" in verdict(checker, todo)
