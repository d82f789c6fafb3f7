"""Chapter 04's checkers: right answers pass, typical mistakes are named, bad input is a message."""
import math

import pytest
import torch
import torch.nn.functional as F
from test_checks import verdict  # the verdict, or "passed"

from genai_helpers import checks


# 4.1 additive scores
def scores_right(q, keys, W_q, v):
    return torch.tanh(keys + (q @ W_q.T)[:, None]) @ v


@pytest.mark.parametrize("fn, words", [
    (scores_right, "passed"),
    (lambda q, k, W, v: (k + (q @ W.T)[:, None]) @ v, "tanh is missing"),
    (lambda q, k, W, v: torch.tanh((k + (q @ W.T)[:, None]) @ v), "tanh goes inside"),
    (lambda q, k, W, v: torch.softmax(scores_right(q, k, W, v), -1), "attention weights"),
    (lambda q, k, W, v: (k * (q @ W.T)[:, None]).sum(-1), "dot-product"),
    (lambda q, k, W, v: scores_right(q, k, W, v).T, "expected shape"),
    (lambda q, k, W, v: torch.tanh(k + q @ W) @ v, "query @ W_q.T"),
])
def test_check_additive_scores(fn, words):
    assert words in verdict(checks.check_additive_scores, fn)


# 4.2 attend
def attend_right(scores, mask, values):
    w = torch.softmax(scores.masked_fill(~mask, -math.inf), -1)
    return (w[..., None] * values).sum(1), w


def attend_zeroed_after(scores, mask, values):
    w = torch.softmax(scores, -1) * mask
    return (w[..., None] * values).sum(1), w


@pytest.mark.parametrize("fn, words", [
    (attend_right, "passed"),
    (lambda s, m, v: attend_right(s, torch.ones_like(m), v), "padding gets attention"),
    (lambda s, m, v: attend_zeroed_after(s, m, v), "sum to 1"),
    (lambda s, m, v: attend_right(s.masked_fill(~m, 0.0), torch.ones_like(m), v), "not 0"),
    (lambda s, m, v: attend_right(s, ~m, v) if not m.all() else attend_right(s, m, v), "where it is False"),
    (lambda s, m, v: (v.mean(1), attend_right(s, m, v)[1]), "plain mean"),
    (lambda s, m, v: attend_right(s, m, v)[1], "return 2 tensors"),
])
def test_check_attend(fn, words):
    assert words in verdict(checks.check_attend, fn)


# 4.3 masked loss
def loss_right(logits, targets, pad_id):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)


def per_token(logits, targets):
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


@pytest.mark.parametrize("fn, words", [
    (loss_right, "passed"),
    (lambda lo, t, p: (per_token(lo, t) * (t != p)).sum() / (t != p).sum(), "passed"),
    (lambda lo, t, p: F.cross_entropy(lo.flatten(0, 1), t.flatten()), "padding counts"),
    (lambda lo, t, p: (per_token(lo, t) * (t != p)).sum() / t.numel(), "divided by all"),
    (lambda lo, t, p: (per_token(lo, t) * (t != p)).sum(), "sum over the tokens"),
    (lambda lo, t, p: ((per_token(lo, t) * (t != p)).sum(1) / (t != p).sum(1)).mean(), "each sequence"),
    (lambda lo, t, p: F.nll_loss(lo.flatten(0, 1), t.flatten(), ignore_index=p), "log-softmax is missing"),
    (lambda lo, t, p: F.cross_entropy(lo, t, ignore_index=p), "classes in dim 1"),
])
def test_check_masked_loss(fn, words):
    assert words in verdict(checks.check_masked_loss, fn)


# 4.4 beam step
def beam_right(scores, logp, k):
    best, idx = (scores[..., None] + logp).flatten(1).topk(k, dim=1)
    return best, idx // logp.size(-1), idx % logp.size(-1)


def beam_flat_token(scores, logp, k):
    best, idx = (scores[..., None] + logp).flatten(1).topk(k, dim=1)
    return best, idx // logp.size(-1), idx


@pytest.mark.parametrize("fn, words", [
    (beam_right, "passed"),
    (lambda s, lp, k: beam_right(torch.zeros_like(s), lp, k), "ignored the scores"),
    (lambda s, lp, k: ((s[..., None] + lp).max(-1).values, torch.arange(k).expand_as(s),
                       (s[..., None] + lp).argmax(-1)), "best token of each beam"),
    (lambda s, lp, k: (beam_right(s, lp, k)[0], beam_right(s, lp, k)[2], beam_right(s, lp, k)[1]),
     "idx // V"),
    (lambda s, lp, k: beam_flat_token(s, lp, k), "not the flat index itself"),
    (lambda s, lp, k: beam_right(s, lp, k)[:2], "return 3 tensors"),
])
def test_check_beam_step(fn, words):
    assert words in verdict(checks.check_beam_step, fn)


# 4.5 exact match
def match_right(pred, target, end_id):
    after = (target == end_id).long().cumsum(1) - (target == end_id).long() > 0
    return ((pred == target) | after).all(1)


@pytest.mark.parametrize("fn, words", [
    (match_right, "passed"),
    (lambda p, t, e: match_right(p, t, e).float(), "passed"),
    (lambda p, t, e: (p == t).all(1), "after </s>"),
    (lambda p, t, e: (p == t).float().mean(1), "fraction of correct characters"),
    (lambda p, t, e: match_right(p, t, e).float().mean(), "one answer per row"),
])
def test_check_exact_match(fn, words):
    assert words in verdict(checks.check_exact_match, fn)


@pytest.mark.parametrize("checker", [checks.check_additive_scores, checks.check_attend,
                                     checks.check_masked_loss, checks.check_beam_step,
                                     checks.check_exact_match])
def test_bad_input_is_a_message(checker):
    def stub(*args):
        raise NotImplementedError("one line of hint")

    v = verdict(checker, stub)
    assert "not implemented yet" in v and "Hint: one line of hint" in v
    assert "raised ZeroDivisionError" in verdict(checker, lambda *a: 1 / 0)
    for bad in (None, 3, "fn"):
        assert "pass your function itself" in verdict(checker, bad)
    assert "❌" in verdict(checker, lambda *a: None)
    assert "❌" in verdict(checker, lambda *a: "text")
