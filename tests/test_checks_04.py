"""Chapter 04's checkers: right answers pass, typical mistakes are named, bad input is a message."""
import math

import pytest
import torch
import torch.nn.functional as F

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
def test_check_additive_scores(fn, words, verdict):
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
def test_check_attend(fn, words, verdict):
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
def test_check_masked_loss(fn, words, verdict):
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
def test_check_beam_step(fn, words, verdict):
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
def test_check_exact_match(fn, words, verdict):
    assert words in verdict(checks.check_exact_match, fn)


# 4.3 the attention decoder step (build)
from torch import nn  # noqa: E402

from genai_helpers.dates import Vocab  # noqa: E402
from genai_helpers.seq2seq import teacher_inputs  # noqa: E402


def make_decoder(mistake=None):
    class Decoder(nn.Module):
        def __init__(self, vocab_size, enc_dim, hidden=128, attn_dim=64, emb=16):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, emb)
            self.W_k = nn.Linear(enc_dim, attn_dim, bias=False)
            self.W_q = nn.Linear(hidden, attn_dim, bias=False)
            self.v = nn.Linear(attn_dim, 1, bias=False)
            self.cell = nn.GRUCell(emb + enc_dim, hidden)
            self.out = nn.Linear(hidden + enc_dim + emb, vocab_size)
            if mistake == "layers in a list":
                self.layers = [self.embed]
                del self.embed, self.W_k, self.W_q, self.v, self.cell, self.out

        def keys(self, states):
            return self.W_k(states)

        def forward(self, y_prev, h, memory):
            e = self.embed(y_prev)
            q = 0 * h if mistake == "no query" else h
            scores = self.v(torch.tanh(memory.keys + self.W_q(q)[:, None])).squeeze(-1)
            masked = scores if mistake == "no mask" else scores.masked_fill(~memory.mask, -math.inf)
            if mistake == "softmax over the batch":
                w = torch.softmax(masked, 0)
            elif mistake == "zeroed after softmax":
                w = torch.softmax(scores, -1) * memory.mask
            else:
                w = torch.softmax(masked, -1)
            ctx = memory.states.mean(1) if mistake == "plain mean" else (w[..., None] * memory.states).sum(1)
            h = self.cell(torch.cat([e, ctx], -1), h)
            logits = self.out(torch.cat([h, ctx, e], -1))
            return (torch.softmax(logits, -1) if mistake == "probabilities" else logits), h, w

    return Decoder


@pytest.mark.parametrize("mistake, words", [
    (None, "passed"),
    ("no mask", "padding gets attention"),
    ("softmax over the batch", "softmax over dim 0"),
    ("zeroed after softmax", "do not sum to 1"),
    ("probabilities", "returned probabilities"),
    ("no query", "do not depend on the decoder state"),
    ("plain mean", "padded positions changes your output"),
    ("layers in a list", "no parameters"),
])
def test_check_attention_decoder(mistake, words, verdict):
    assert words in verdict(checks.check_attention_decoder, make_decoder(mistake))


def test_reference_decoder_passes_and_trains_in_the_built_model(verdict):
    from genai_helpers import seq2seq_build as b
    from genai_helpers.dates import DateCorpus

    assert "passed" in verdict(checks.check_attention_decoder, b.ReferenceDecoder)
    src_vocab, tgt_vocab = Vocab(DateCorpus().characters()), Vocab("0123456789- ")
    model = b.BuiltSeq2Seq(src_vocab, tgt_vocab, make_decoder())
    src, lengths = src_vocab.encode(["28/11/2026", "3 nov 1999"])
    tgt, _ = tgt_vocab.encode(["2026-11-28", "1999-11-03"], end=True)
    logits, w = model(src, lengths, teacher_inputs(tgt))
    assert logits.shape == (2, 11, len(tgt_vocab)) and w.shape == (2, 11, 10)
    assert b.greedy_decode(model, src, lengths).shape[0] == 2


# 4.5 the training step (build)
def make_step_with(mistake=None):
    def make_step(model, opt):
        def step(batch):
            src, lengths, tgt = batch
            start = torch.full_like(tgt[:, :1], Vocab.START)
            if mistake == "not shifted":
                tgt_in = tgt
            elif mistake == "shifted the wrong way":
                tgt_in = torch.cat([tgt[:, 1:], torch.full_like(tgt[:, :1], Vocab.PAD)], 1)
            else:
                tgt_in = torch.cat([start, tgt[:, :-1]], 1)
            logits, _ = model(src, lengths, tgt_in)
            if mistake == "probabilities":
                logits = torch.softmax(logits, -1)
            ignore = -100 if mistake == "padding counts" else Vocab.PAD
            loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=ignore)
            if mistake != "no zero_grad":
                opt.zero_grad()
            loss.backward()
            if mistake != "no opt.step":
                opt.step()
            return {"loss": loss}
        return step
    return make_step


@pytest.mark.parametrize("mistake, words", [
    (None, "passed"),
    ("not shifted", "not shifted"),
    ("shifted the wrong way", "shifted the wrong way"),
    ("padding counts", "padding counts"),
    ("probabilities", "probabilities went into the cross-entropy"),
    ("no zero_grad", "pile up"),
    ("no opt.step", "did not change"),
])
def test_check_train_step(mistake, words, verdict):
    assert words in verdict(checks.check_train_step, make_step_with(mistake))


def test_check_train_step_accepts_the_package_step(verdict):
    assert "passed" in verdict(checks.check_train_step, gh_seq2seq_step)


def gh_seq2seq_step(model, opt):
    from genai_helpers.seq2seq import seq2seq_step

    return seq2seq_step(model, opt)


# 4.6 greedy decoding (build)
def greedy_with(mistake=None):
    def greedy_decode(model, src, lengths, max_len=11):
        if mistake != "no eval":
            model.eval()
        with torch.set_grad_enabled(mistake == "no no_grad"):
            memory = model.encode(src, lengths)
            h = model.start(memory)
            first = Vocab.PAD if mistake == "no start" else Vocab.START
            y = torch.full((src.size(0),), first, dtype=torch.long)
            done = torch.zeros_like(y, dtype=torch.bool)
            out = []
            for _ in range(max_len):
                logits, h, _ = model.step(torch.full_like(y, Vocab.START) if mistake == "not fed back" else y,
                                          h, memory)
                y = model.log_probs(logits).argmax(-1)
                if mistake != "no padding after end":
                    y = y.masked_fill(done, Vocab.PAD)
                out.append(y)
                done = done | (y == Vocab.END)
                if mistake not in ("never stops", "no padding after end") and bool(done.all()):
                    break
            return torch.stack(out, 1)
    return greedy_decode


@pytest.mark.parametrize("mistake, words", [
    (None, "passed"),
    ("no eval", "model.eval()"),
    ("no no_grad", "torch.no_grad()"),
    ("no start", "first input must be <s>"),
    ("not fed back", "same symbol"),
    ("no padding after end", "stay padding"),
    ("never stops", "stop as soon as all rows are done"),
])
def test_check_greedy_decode(mistake, words, verdict):
    assert words in verdict(checks.check_greedy_decode, greedy_with(mistake))


def test_greedy_reference_and_exact_match_reference_pass(verdict):
    from genai_helpers import seq2seq_build as b

    assert "passed" in verdict(checks.check_greedy_decode, b.greedy_decode)
    assert "passed" in verdict(checks.check_exact_match, b.exact_match)
    assert "passed" in verdict(checks.check_masked_loss, b.masked_loss)
    assert "passed" in verdict(checks.check_attend, b.attend)
    assert "passed" in verdict(checks.check_additive_scores, b.additive_scores)


@pytest.mark.parametrize("checker", [checks.check_attention_decoder, checks.check_train_step,
                                     checks.check_greedy_decode])
def test_build_checkers_report_a_stub(checker, verdict):
    def stub(*args):
        raise NotImplementedError("one line of hint")

    class Stub(nn.Module):
        def __init__(self, *args):
            super().__init__()
            raise NotImplementedError("one line of hint")

    v = verdict(checker, Stub if checker is checks.check_attention_decoder else stub)
    assert "not implemented yet" in v and "one line of hint" in v
    for bad in (None, 3, "fn"):
        assert "pass your function itself" in verdict(checker, bad)
