"""Chapter 04's exercises: attention scores and weights, the attention decoder step (build), the
masked loss, the teacher-forced training step (build), greedy decoding (build), a beam-search step,
exact match."""
from __future__ import annotations

import math

import torch

from ..i18n import N_, _
from .framework import Report, _as_tensor, _require_callable, _scalar, call, compare


def _pair(out, names: str):
    """(None, message) unless `out` is a tuple of len(names.split(', ')) tensors."""
    n = len(names.split(", "))
    if not isinstance(out, (tuple, list)) or len(out) != n:
        return _("return {n} tensors, ({names}); got {type}").format(n=n, names=names, type=type(out).__name__) + (
            _(" of {n_out} items").format(n_out=len(out)) if isinstance(out, (tuple, list)) else "")
    bad = [type(o).__name__ for o in out if not torch.is_tensor(o)]
    return _("return tensors, ({names}); got {bad}").format(names=names, bad=", ".join(bad)) if bad else None


def check_additive_scores(fn) -> None:
    """Exercise 4.1: additive_scores(query, keys, W_q, v) = v . tanh(keys + W_q query), shape (B, T)."""
    _require_callable(fn, "additive_scores", "check_additive_scores(additive_scores)")
    r = Report("additive_scores")
    g = torch.Generator().manual_seed(40)
    cases = {_("B=3, T=5, decoder state 4, attention size 6"): (3, 5, 4, 6),
             _("B=2, T=7, decoder state 8, attention size 3"): (2, 7, 8, 3),
             _("one input character (T=1)"): (4, 1, 4, 6)}
    for case, (b, t, h, a) in cases.items():
        q, keys = torch.randn(b, h, generator=g), 2 * torch.randn(b, t, a, generator=g)
        W_q, v = torch.randn(a, h, generator=g), torch.randn(a, generator=g)
        out, err = call(fn, q.clone(), keys.clone(), W_q.clone(), v.clone())
        if err and "shape" in err and ("mat1" in err or "size of tensor" in err):
            err += (_(" (W_q has shape (A, H): the projected query is query @ W_q.T, shape (B, A); add a dimension, "
                      "[:, None, :], to add it to every key)"))
        if err:
            r.fail(case, err)
            continue
        pq = q @ W_q.T
        ref = torch.tanh(keys + pq[:, None]) @ v
        why = compare(out, ref, {
            _("the tanh is missing: score = v · tanh(W_k h_j + W_q s)"): (keys + pq[:, None]) @ v,
            _("tanh goes inside, before the product with v: v · tanh(...), not tanh(v · ...)"):
                torch.tanh((keys + pq[:, None]) @ v),
            _("that is a dot-product score (Luong), not the additive one: add the projected query to each key, then "
              "tanh, then v"): (keys * pq[:, None]).sum(-1),
            _("you returned attention weights (a softmax of the scores); return the raw scores, the softmax comes in "
              "Exercise 4.2"): torch.softmax(ref, -1),
            _("the query is missing: every decoder step would look at the same places"):
                torch.tanh(keys) @ v,
        }, _("one score per input character, shape (B, T)"))
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_attend(fn) -> None:
    """Exercise 4.2: attend(scores, mask, values) -> (context (B, E), weights (B, T)), padding masked."""
    _require_callable(fn, "attend", "check_attend(attend)")
    r = Report("attend")
    g = torch.Generator().manual_seed(41)
    lengths = {_("a batch of 3 with padding (lengths 5, 3, 1)"): [5, 3, 1],
               _("a batch of 2 without padding"): [4, 4],
               _("a batch of 4 with padding (lengths 2, 6, 6, 3)"): [2, 6, 6, 3]}
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
            r.fail(case, _("weights: some rows are nan: all their scores were -inf. The mask is True at real "
                           "characters: fill the scores where it is False (~mask), and keep the rest"))
            continue
        ref_w = torch.softmax(scores.masked_fill(~mask, -math.inf), -1)
        plain = torch.softmax(scores, -1)
        why = compare(weights, ref_w, {
            _("padding gets attention: give the padded positions (mask False) a score of -inf before the softmax "
              "(scores.masked_fill(~mask, float('-inf')))"): plain,
            _("the weights no longer sum to 1: you zeroed the padded positions after the softmax; fill their scores "
              "with -inf before it"): plain * mask,
            _("a score of 0 still gets weight (exp(0) = 1): fill the padded positions with -inf, not "
              "0"): torch.softmax(scores.masked_fill(~mask, 0.0), -1),
            _("the mask is True at real characters: fill where it is False (~mask), not where it is True"):
                torch.softmax(scores.masked_fill(mask, -math.inf), -1),
            _("softmax over dim 0 (the batch): each row's weights must sum to 1 over its characters "
              "(dim=-1)"): torch.softmax(scores.masked_fill(~mask, -math.inf), 0),
        } if not torch.equal(mask, torch.ones_like(mask)) else {
            _("softmax over dim 0 (the batch): each row's weights must sum to 1 over its characters "
              "(dim=-1)"): torch.softmax(scores, 0),
            _("the weights are raw scores: apply a softmax over the characters"): scores,
        }, _("weights, shape (B, T)"), atol=1e-5)
        if why:
            r.fail(case, f"weights: {why}")
            continue
        ref_c = (ref_w[..., None] * values).sum(1)
        why = compare(context, ref_c, {
            _("the context is the weighted sum of the encoder states, not their plain mean"):
                values.mean(1),
            _("sum over the characters (dim 1) to get one context vector per row, shape (B, E)"):
                ref_w[..., None] * values,
        }, _("context, shape (B, E)"), atol=1e-5)
        r.fail(case, f"context: {why}") if why else r.ok(case)
    return r.finish()


def check_masked_loss(fn) -> None:
    """Exercise 4.4: masked_loss(logits (B, L, V), targets (B, L), pad_id) -> mean CE over real tokens."""
    import torch.nn.functional as F

    _require_callable(fn, "masked_loss", "check_masked_loss(masked_loss)")
    r = Report("masked_loss")
    g = torch.Generator().manual_seed(42)
    cases = {_("targets of lengths 6, 3 and 1 (padded), pad_id=0"): ([6, 3, 1], 9, 0),
             _("targets of lengths 2, 5, 5, 4 (padded), pad_id=0"): ([2, 5, 5, 4], 7, 0),
             _("targets of lengths 4, 2 with pad_id=5"): ([4, 2], 8, 5)}
    for case, (lens, v, pad) in cases.items():
        b, ln = len(lens), max(lens)
        logits = 2 * torch.randn(b, ln, v, generator=g)
        real = torch.randint(0, v - 1, (b, ln), generator=g)
        real = real + (real >= pad).long()  # real tokens are never the pad id
        mask = torch.arange(ln)[None, :] < torch.tensor(lens)[:, None]
        targets = real.masked_fill(~mask, pad)
        out, err = call(fn, logits.clone(), targets.clone(), pad)
        if err and "target" in err.lower() and "size" in err.lower():
            err += (_(" (F.cross_entropy wants the classes in dim 1: flatten logits to (B*L, V) and targets to (B*L,), "
                      "or pass logits.transpose(1, 2))"))
        if err:
            r.fail(case, err)
            continue
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            out = torch.tensor(float(out))
        ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        ref = (ce * mask).sum() / mask.sum()
        nll_raw = -logits.gather(2, targets[..., None])[..., 0]
        why = compare(out, ref, {
            _("the padding counts in your loss: exclude the positions where targets == pad_id (a mask, or "
              "ignore_index=pad_id)"): ce.mean(),
            _("you divided by all B×L positions: divide by the number of real tokens (mask.sum())"):
                (ce * mask).sum() / mask.numel(),
            _("that is a sum over the tokens: take the mean over the real tokens"): (ce * mask).sum(),
            _("you averaged each sequence, then the batch: a short target then weighs as much as a long one; average "
              "over all real tokens at once"): ((ce * mask).sum(1) / mask.sum(1)).mean(),
            _("the log-softmax is missing (nll_loss wants log-probabilities): use F.cross_entropy on the "
              "logits"): (nll_raw * mask).sum() / mask.sum(),
            _("return one number, the mean over the real tokens"): ce * mask,
        }, _("one number"), atol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_beam_step(fn) -> None:
    """Exercise 4.7: beam_step(scores (B, k), logp (B, k, V), k) -> (scores, beam, token), each (B, k)."""
    _require_callable(fn, "beam_step", "check_beam_step(beam_step)")
    r = Report("beam_step")
    g = torch.Generator().manual_seed(43)
    cases = {_("B=2, k=3 beams, V=5 tokens"): (2, 3, 5),
             _("B=1, k=4 beams, V=6 tokens"): (1, 4, 6),
             _("B=3, k=2 beams, V=7 tokens"): (3, 2, 7)}
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
            _("you ignored the scores of the beams so far: add scores[..., None] to logp"):
                logp.flatten(1).topk(k, dim=1).values,
            _("log-probabilities add up (a product of probabilities): scores + logp, not scores * logp"):
                (scores[..., None] * logp).flatten(1).topk(k, dim=1).values,
            _("you kept the best token of each beam; the k best extensions may come from the same beam: flatten (k, V) "
              "into one row per example, then topk"): per_beam.values,
            _("sort the new scores best first (topk does)"): best.flip(1),
        }, _("new scores, shape (B, k)"), atol=1e-5)
        if why:
            r.fail(case, f"scores: {why}")
            continue
        for name, got, ref, wrong in (("beam", beam, idx // v, {
                _("the beam is the flat index divided by V (idx // V); you took idx % V"): idx % v,
                _("the beam is idx // V, not the flat index itself"): idx}),
                                      ("token", tok, idx % v, {
                _("the token is the flat index modulo V (idx % V); you took idx // V"): idx // v,
                _("the token is idx % V, not the flat index itself (which counts k × V)"): idx})):
            why = compare(got.long() if torch.is_tensor(got) else got, ref, wrong,
                          _("{name} indices, shape (B, k)").format(name=name), atol=0)
            if why:
                r.fail(case, f"{name}: {why}")
                break
        else:
            r.ok(case)
    return r.finish()


def check_exact_match(fn) -> None:
    """Exercise 4.8: exact_match(pred, target, end_id) -> bool (B,): equal up to and including </s>."""
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
        r.fail(_("7 predictions"), err)
        return r.finish()
    if torch.is_tensor(out) and out.dtype == torch.bool:
        out = out.float()
    eq = pred == target
    before_end = (target == E).long().cumsum(1) - (target == E).long() == 0
    why = compare(out, ref.float(), {
        _("tokens after </s> count in your version: the decoder may write anything after </s>, compare up to and "
          "including the first </s> of the target"): eq.all(1).float(),
        _("that is the fraction of correct characters; exact match is all or nothing per row"):
            eq.float().mean(1),
        _("the </s> must match too: a prediction that goes on after the date is not exact"):
            (eq | ~(before_end & (target != E))).all(1).float(),
        _("one answer per row, shape (B,), not the mean over the batch"): ref.float().mean(),
    }, _("one True/False per row, shape (B,)"))
    if why is None:
        r.ok(_("exact, junk after </s>, wrong character, too long, too short, nonsense"))
    else:
        r.fail(_("7 predictions"), why)
    return r.finish()


# --- build exercises: the attention decoder step, the training step, greedy decoding -------------

def _memory(b_lengths, enc_dim, attn_keys, g):
    """A padded batch of encoder states (junk in the padding) and its mask, as gh.seq2seq.Memory."""
    from ..seq2seq import Memory

    t = max(b_lengths)
    states = torch.randn(len(b_lengths), t, enc_dim, generator=g)
    mask = torch.arange(t)[None, :] < torch.tensor(b_lengths)[:, None]
    return Memory(states, None, mask, states[:, 0].clone())


_DEC_SIZES = (11, 6, 5, 4, 3)  # vocab_size, enc_dim, hidden, attn_dim, emb of the decoder under test


def _build_decoder(r, cls):
    """Build cls(11, 6, 5, 4, 3) and make sure it has parameters; the decoder, or None once reported."""
    torch.manual_seed(44)
    try:
        dec = cls(*_DEC_SIZES)
    except NotImplementedError as e:
        r.fail(_("building it"), _("not implemented yet: replace `raise NotImplementedError` with your code. Hint: "
                                   "{hint}").format(hint=e))
        return None
    except Exception as e:
        r.fail("AttentionDecoder(vocab_size=11, enc_dim=6, hidden=5, attn_dim=4, emb=3)",
               _("raised {type}: {message}").format(type=type(e).__name__,
                                                     message=str(e).splitlines()[0] if str(e) else ""))
        return None
    if not isinstance(dec, torch.nn.Module) or not list(dec.parameters()):
        r.fail(_("its layers"), _("no parameters: create the layers in __init__ as attributes (self.embed = "
                                  "nn.Embedding(...), ...), after super().__init__(), so that the optimiser sees them"))
        return None
    return dec


def _decoder_memory(r, dec, g):
    """A padded batch (lengths 6, 4, 2) with the decoder's own keys, as gh.seq2seq.Memory; None once reported."""
    from ..seq2seq import Memory

    __, E, __, A, __ = _DEC_SIZES
    mem = _memory([6, 4, 2], E, None, g)
    keys, err = call(dec.keys, mem.states)
    if err:
        r.fail(_("keys(states)"), err)
        return None
    if not torch.is_tensor(keys) or keys.shape[:2] != mem.states.shape[:2]:
        got = tuple(keys.shape) if torch.is_tensor(keys) else type(keys).__name__
        r.fail(_("keys(states)"), _("keys(states) must give one key per input character, shape (B, T, attn_dim) = (3, "
                                    "6, {A}); got {got}").format(A=A, got=got))
        return None
    return Memory(mem.states, keys, mem.mask, mem.summary)


def _run_decoder(dec, y, h, mem):
    """One decoder step on the student's class: (output, None), or (None, what went wrong)."""
    out, err = call(dec, y, h, mem)
    if err is None:
        err = _pair(out, "logits, h, weights")
    return out, err


_DEC_CASE = N_("B=3, lengths 6, 4, 2")


def _check_decoder_output(r, dec, y, h, mem):
    """Shapes, no nan, softmax over the characters, zero weight on padding; (logits, h, weights) or None."""
    V, __, H, __, __ = _DEC_SIZES
    out, err = _run_decoder(dec, y, h, mem)
    if err:
        if "size" in err or "shape" in err:
            err += (_(" (here vocab_size=11, enc_dim=6, hidden=5, attn_dim=4, emb=3: the GRU cell reads [embedding; "
                      "context] = emb + enc_dim numbers, the output layer [h; context; embedding])"))
        r.fail(_(_DEC_CASE), err)
        return None
    logits, h_new, w = out
    for name, got, want in (("logits", logits, (3, V)), (_("new state h"), h_new, (3, H)), ("weights", w, (3, 6))):
        if tuple(got.shape) != want:
            r.fail(_(_DEC_CASE), _("{name}: expected shape {want}, got {got_shape}").format(
                name=name, want=want, got_shape=tuple(got.shape)))
            return None
    w = w.detach()
    if torch.isnan(w).any() or torch.isnan(logits.detach()).any():
        r.fail(_(_DEC_CASE), _("nan in the output: a row whose scores are all -inf (fill the scores where the mask is "
                               "False, ~mask, not where it is True)"))
        return None
    if torch.allclose(w.sum(0), torch.ones(6), atol=1e-5) and not torch.allclose(w.sum(1), torch.ones(3), atol=1e-5):
        r.fail(_(_DEC_CASE), _("weights: softmax over dim 0 (the batch); each row's weights must sum to 1 over its "
                               "characters (dim=-1)"))
        return None
    if w[~mem.mask].abs().max() > 1e-6:
        r.fail(_(_DEC_CASE), _("weights: padding gets attention: give the padded positions (mask False) a score of "
                               "-inf before the softmax, so that their weight is exactly 0"))
        return None
    if not torch.allclose(w.sum(1), torch.ones(3), atol=1e-5):
        r.fail(_(_DEC_CASE), _("weights: they do not sum to 1 over the characters: mask the scores before the softmax "
                               "(zeroing weights after it breaks the sum)"))
        return None
    r.ok(_("shapes, weights sum to 1, zero weight on padding"))
    return logits, h_new, w


def _check_raw_logits(r, lo) -> bool:
    """The decoder returns logits, not (log-)probabilities, since the loss applies the softmax itself."""
    if (lo >= 0).all() and torch.allclose(lo.sum(-1), torch.ones(3), atol=1e-4):
        r.fail(_("logits"), _("you returned probabilities (a softmax); return the logits: the loss (cross-entropy) and "
                              "the decoder apply the (log-)softmax themselves"))
        return False
    if (lo <= 0).all() and torch.allclose(lo.exp().sum(-1), torch.ones(3), atol=1e-4):
        r.fail(_("logits"), _("you returned log-probabilities (a log_softmax); return the logits, the raw output of "
                              "the output layer"))
        return False
    return True


def _check_padding_and_rows(r, dec, y, h, mem, lo, h_new, g) -> None:
    """Junk in the padded states changes nothing, and a row alone gives what it gives within the batch."""
    from ..seq2seq import Memory

    pad = ~mem.mask
    junk_states = mem.states.clone()
    junk_states[pad] = 100 * torch.randn(int(pad.sum()), _DEC_SIZES[1], generator=g)
    junk_keys, __ = call(dec.keys, junk_states)
    out2, err = _run_decoder(dec, y, h, Memory(junk_states, junk_keys, mem.mask, mem.summary))
    if err is None and not (torch.allclose(out2[0].detach(), lo, atol=1e-5) and
                            torch.allclose(out2[1].detach(), h_new.detach(), atol=1e-5)):
        err = (_("what sits in the padded positions changes your output: the context must be the weighted sum with the "
                 "masked weights, over the real characters only"))
    r.fail(_("junk in the padding"), err) if err else r.ok(_("padding changes nothing"))
    # one row alone = the same row in the batch (rows must not mix)
    row = Memory(mem.states[:1], mem.keys[:1], mem.mask[:1], mem.summary[:1])
    out3, err = _run_decoder(dec, y[:1], h[:1], row)
    if err is None and not torch.allclose(out3[0].detach(), lo[:1], atol=1e-5):
        err = _("a row's output depends on the other rows of the batch: softmax over dim=-1 (the characters)")
    r.fail(_("one row alone"), err) if err else r.ok(_("rows independent"))


def _check_decoder_inputs_matter(r, dec, y, h, mem, h_new, w, g) -> None:
    """The decoder state, the previous symbol and the encoder states each change the output, so all are read."""
    from ..seq2seq import Memory

    out4, err = _run_decoder(dec, y, torch.randn(3, _DEC_SIZES[2], generator=g), mem)
    if err is None and torch.allclose(out4[2].detach(), w, atol=1e-6):
        err = (_("the weights do not depend on the decoder state h: score each character with v · tanh(W_q h + key), "
                 "the query is the previous state"))
    r.fail(_("another decoder state"), err) if err else r.ok(_("the weights follow the decoder state"))
    out5, err = _run_decoder(dec, torch.tensor([5, 5, 5]), h, mem)
    if err is None and torch.allclose(out5[1].detach(), h_new.detach(), atol=1e-6):
        err = _("the new state does not depend on the previous symbol: feed its embedding into the GRU cell")
    r.fail(_("another previous symbol"), err) if err else r.ok(_("the previous symbol is read"))
    other = mem.states.clone()
    other[mem.mask] = torch.randn(int(mem.mask.sum()), _DEC_SIZES[1], generator=g)
    okeys, __ = call(dec.keys, other)
    out6, err = _run_decoder(dec, y, h, Memory(other, okeys, mem.mask, mem.summary))
    if err is None and torch.allclose(out6[1].detach(), h_new.detach(), atol=1e-6):
        err = _("the new state does not depend on the encoder states: feed the context vector into the GRU cell")
    r.fail(_("other encoder states"), err) if err else r.ok(_("the context is read"))


def _check_every_layer_learns(r, dec, y, h, mem) -> None:
    """Every parameter gets a gradient from the logits and the new state; an unused layer never learns."""
    dec.zero_grad()
    logits, h_new, __ = dec(y, h, mem)
    (logits.sum() + h_new.sum()).backward()
    unused = [n for n, p in dec.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    r.fail(_("gradients"), _("these parameters get no gradient, so they never learn: {names}").format(
        names=", ".join(unused))) if unused \
        else r.ok(_("every parameter learns"))


def check_attention_decoder(cls) -> None:
    """Exercise 4.3: cls(vocab_size, enc_dim, hidden, attn_dim, emb) with keys(states) and
    forward(y_prev (B,), h (B, H), memory) -> (logits (B, V), new h (B, H), weights (B, T))."""
    _require_callable(cls, "AttentionDecoder", "check_attention_decoder(AttentionDecoder)")
    r = Report("AttentionDecoder")
    dec = _build_decoder(r, cls)
    if dec is None:
        return r.finish()
    g = torch.Generator().manual_seed(45)
    mem = _decoder_memory(r, dec, g)
    if mem is None:
        return r.finish()
    y = torch.tensor([4, 7, 9])
    h = torch.randn(3, _DEC_SIZES[2], generator=g)
    dec.train()
    out = _check_decoder_output(r, dec, y, h, mem)
    if out is None:
        return r.finish()
    logits, h_new, w = out
    lo = logits.detach()
    if not _check_raw_logits(r, lo):
        return r.finish()
    _check_padding_and_rows(r, dec, y, h, mem, lo, h_new, g)
    _check_decoder_inputs_matter(r, dec, y, h, mem, h_new, w, g)
    _check_every_layer_learns(r, dec, y, h, mem)
    return r.finish()


class _RecordingModel(torch.nn.Module):
    """A tiny stand-in for the Seq2Seq: logits from the decoder input, records what it was given."""

    def __init__(self, V=9):
        super().__init__()
        g = torch.Generator().manual_seed(46)
        self.table = torch.nn.Parameter(0.3 * torch.randn(V, V, generator=g))
        self.seen = []

    def forward(self, src, lengths, tgt_in):
        self.seen.append(tgt_in.detach().clone())
        return self.table[tgt_in] + 0.1 * src[:, :1, None].float(), None


def _train_batch():
    """A batch (src, lengths, tgt) of three pairs, the targets ending in </s> and padded."""
    from ..dates import Vocab

    P, E = Vocab.PAD, Vocab.END
    tgt = torch.tensor([[5, 6, 7, 8, E], [6, 5, E, P, P], [7, E, P, P, P]])
    src = torch.tensor([[4, 5, 6, 0], [5, 6, 0, 0], [7, 0, 0, 0]])
    lengths = torch.tensor([3, 2, 1])
    return src, lengths, tgt


def _run_train_step(r, make_step, model, opt, batch):
    """Build the student's step and run it once: (step, its dict of losses), or None once reported."""
    src, lengths, tgt = batch
    step, err = call(make_step, model, opt)
    if err is None and not callable(step):
        err = _("make_step(model, opt) must return the step function (def step(batch): ...), got {type}").format(
            type=type(step).__name__)
    if err:
        r.fail(_("make_step(model, opt)"), err)
        return None
    out, err = call(step, (src.clone(), lengths.clone(), tgt.clone()))
    if err:
        r.fail(_("one step"), err)
        return None
    if not isinstance(out, dict) or "loss" not in out:
        r.fail(_("one step"), _("gh.fit wants a dict of losses, e.g. {{'loss': loss}}; got {type}").format(
            type=type(out).__name__))
        return None
    return step, out


def _check_teacher_forcing(r, model, tgt):
    """What went into the decoder is <s> + the targets shifted right; those inputs, or None once reported."""
    from ..dates import Vocab
    from ..seq2seq import teacher_inputs

    want_in = teacher_inputs(tgt)
    if not model.seen:
        r.fail(_("decoder "
                 "input"), _("the model was never called: logits come from model(src, lengths, "
                                     "decoder_inputs)"))
        return None
    got_in = model.seen[0]
    wrong_in = {_("the decoder reads the targets themselves (not shifted): at step i it would see the symbol it must "
                  "predict; shift right, with <s> first"): tgt,
                _("shifted the wrong way: the decoder input is <s> followed by the targets without their last "
                  "symbol"): torch.cat([tgt[:, 1:], torch.full_like(tgt[:, :1], Vocab.PAD)], 1),
                _("<s> is missing: the decoder input is <s> followed by the targets shifted right, as long as the "
                  "targets"): tgt[:, :-1]}
    if got_in.shape != want_in.shape or not torch.equal(got_in, want_in):
        why = next((d for d, t in wrong_in.items() if t.shape == got_in.shape and torch.equal(t, got_in)),
                   _("the decoder input should be {want} for the target {target}, got {got_in}").format(
                         want=want_in[1].tolist(), target=tgt[1].tolist(), got_in=got_in[1].tolist()))
        r.fail(_("teacher forcing"), why)
        return None
    r.ok(_("teacher forcing (<s> + targets shifted right)"))
    return want_in


def _check_train_loss(r, loss, start, src, tgt, want_in) -> bool:
    """The loss is the cross-entropy of the logits, padding ignored; else name the typical mistake."""
    import torch.nn.functional as F

    from ..dates import Vocab

    P = Vocab.PAD
    logits = start[want_in] + 0.1 * src[:, :1, None].float()
    ref = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=P)
    probs = torch.softmax(logits, -1)
    why = compare(_scalar(loss), ref, {
        _("the padding counts in your loss: ignore the targets equal to Vocab.PAD (ignore_index)"):
            F.cross_entropy(logits.flatten(0, 1), tgt.flatten()),
        _("probabilities went into the cross-entropy: it wants the logits (it applies the log-softmax itself)"):
            F.cross_entropy(probs.flatten(0, 1), tgt.flatten(), ignore_index=P),
        _("the log-softmax is missing (nll_loss wants log-probabilities): use F.cross_entropy on the logits"):
            F.nll_loss(logits.flatten(0, 1), tgt.flatten(), ignore_index=P),
        _("the loss compares the predictions with the decoder inputs; compare them with the targets"):
            F.cross_entropy(logits.flatten(0, 1), want_in.flatten(), ignore_index=P),
    }, _("one number, the loss"), atol=1e-4)
    if why:
        r.fail(_("the loss"), why)
        return False
    r.ok(_("masked cross-entropy on the logits"))
    return True


def _table_grad(w, want_in, src, tgt):
    """The gradient of the right loss with respect to _RecordingModel's table, taken at the weights w."""
    import torch.nn.functional as F

    from ..dates import Vocab

    w = w.detach().clone().requires_grad_(True)
    lo = w[want_in] + 0.1 * src[:, :1, None].float()
    F.cross_entropy(lo.flatten(0, 1), tgt.flatten(), ignore_index=Vocab.PAD).backward()
    return w.grad


def _check_optimiser_update(r, step, model, start, batch, want_in) -> None:
    """One step moves the table by one SGD step (lr 0.5), and a second step does not pile up gradients."""
    src, lengths, tgt = batch
    g0 = _table_grad(start, want_in, src, tgt)
    w1 = start - 0.5 * g0
    after = model.table.detach()
    if torch.allclose(after, start):
        r.fail(_("the update"), _("the parameters did not change: call loss.backward() and opt.step() in the step"))
        return
    if not torch.allclose(after, w1, atol=1e-5):
        r.fail(_("the update"), _("the parameters moved, but not by one optimiser step on this loss's gradient "
                                  "(opt.zero_grad(), loss.backward(), opt.step(), in this order)"))
        return
    step((src.clone(), lengths.clone(), tgt.clone()))
    g1 = _table_grad(w1, want_in, src, tgt)
    after2 = model.table.detach()
    if torch.allclose(after2, w1 - 0.5 * (g0 + g1), atol=1e-5) and not torch.allclose(g0, torch.zeros_like(g0)):
        r.fail(_("two "
                 "steps"), _("the gradients pile up from step to step: call opt.zero_grad() before "
                                 "loss.backward()"))
        return
    r.ok(_("one optimiser step per batch, gradients reset"))


def check_train_step(make_step) -> None:
    """Exercise 4.5: make_step(model, opt) -> step(batch) for gh.fit; batch = (src, lengths, tgt)."""
    _require_callable(make_step, "make_step", "check_train_step(make_step)")
    r = Report("make_step")
    batch = _train_batch()
    src, __, tgt = batch
    model = _RecordingModel()
    start = model.table.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    ran = _run_train_step(r, make_step, model, opt, batch)
    if ran is None:
        return r.finish()
    step, out = ran
    want_in = _check_teacher_forcing(r, model, tgt)
    if want_in is None or not _check_train_loss(r, out["loss"], start, src, tgt, want_in):
        return r.finish()
    _check_optimiser_update(r, step, model, start, batch, want_in)
    return r.finish()


class _ScriptedModel(torch.nn.Module):
    """A stand-in decoder whose next symbol is a fixed function of the previous one, per row."""

    def __init__(self, chains, V=12):
        super().__init__()
        self.chains, self.V = chains, V  # row -> {previous symbol: next symbol}
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls, self.first_inputs = [], None
        from ..dates import Vocab
        banned = torch.zeros(V, dtype=torch.bool)
        banned[[Vocab.PAD, Vocab.START, Vocab.UNK]] = True
        self.register_buffer("banned", banned, persistent=False)

    def encode(self, src, lengths):
        return torch.arange(src.size(0))

    def start(self, memory):
        return torch.zeros(len(memory), 4) + self.w

    def step(self, y_prev, h, memory):
        if self.first_inputs is None:
            self.first_inputs = y_prev.detach().clone()
        self.calls.append((self.training, torch.is_grad_enabled()))
        logits = torch.full((len(memory), self.V), -3.0)
        for b, row in enumerate(memory.tolist()):
            nxt = self.chains[row].get(int(y_prev[b]), 3)
            logits[b, nxt] = 4.0
            logits[b, 0] = -1.0  # pad, start, unk never win
        return logits + 0 * self.w, h, None

    def log_probs(self, logits):
        return torch.log_softmax(logits.float().masked_fill(self.banned, -math.inf), -1)


def check_greedy_decode(fn) -> None:
    """Exercise 4.6: greedy_decode(model, src, lengths, max_len) -> token ids (B, L), L <= max_len,
    <s> first, each argmax fed back, <pad> after a row's </s>, stop when every row has ended."""
    from ..dates import Vocab

    _require_callable(fn, "greedy_decode", "check_greedy_decode(greedy_decode)")
    r = Report("greedy_decode")
    S, E, P = Vocab.START, Vocab.END, Vocab.PAD
    chains = [{S: 5, 5: 6, 6: 7, 7: E},        # 5 6 7 </s>
              {S: 8, 8: E},                    # 8 </s>
              {S: 9, 9: 10, 10: 9, E: 11}]     # never ends: 9 10 9 10 ...
    cases = {_("three rows, one never ends, max_len=6"): ([0, 1, 2], 6),
             _("two rows that end after 4 and 2 symbols, max_len=11"): ([0, 1], 11)}
    for case, (rows, max_len) in cases.items():
        model = _ScriptedModel([chains[i] for i in rows]).train()
        src = torch.ones(len(rows), 3, dtype=torch.long)
        lengths = torch.full((len(rows),), 3)
        out, err = call(fn, model, src, lengths, max_len)
        if err is None:
            out, err = _as_tensor(out, _("token ids (B, L)"))
        if err:
            r.fail(case, err)
            continue
        want = []
        for i in rows:
            seq, y = [], S
            for __ in range(max_len):
                y = chains[i].get(y, 3) if not seq or seq[-1] != E else P
                seq.append(y)
            want.append(seq)
        want = torch.tensor(want)
        stop = max(next((t + 1 for t, v in enumerate(row) if v == E), max_len) for row in want.tolist())
        want = want[:, :stop]
        first = model.first_inputs
        if first is not None and not torch.equal(first, torch.full_like(first, S)):
            r.fail(case, _("the first input must be <s> (Vocab.START = {S}) in every row; got {first}").format(
                S=S, first=first.tolist()))
            continue
        if any(training for training, __ in model.calls):
            r.fail(case, _("the model was in training mode while decoding: call model.eval() first (dropout and batch "
                           "norm behave differently in training)"))
            continue
        if any(grad for __, grad in model.calls):
            r.fail(case, _("decoding ran with gradients on: wrap it in torch.no_grad() (or decorate the function), or "
                           "memory grows with every step for nothing"))
            continue
        if out.dim() != 2 or out.size(0) != len(rows):
            r.fail(case, _("return token ids of shape (B, L) = ({n_rows}, L); got {out_shape}").format(
                n_rows=len(rows), out_shape=tuple(out.shape)))
            continue
        got = out.long()
        n = min(got.size(1), want.size(1))
        firsts = got[:, :n]
        if n and torch.equal(firsts, want[:, :1].expand(-1, n)) and not torch.equal(want[:, :n], firsts):
            r.fail(case, _("every step wrote the same symbol: feed each step's argmax back as the next input"))
            continue
        if got.size(1) > max_len:
            r.fail(case, _("{length} symbols, more than max_len={max_len}: stop after max_len steps").format(
                length=got.size(1), max_len=max_len))
            continue
        until_end = (want.cumsum(1) * 0 + (want == E).long().cumsum(1) - (want == E).long()) == 0
        cmp_n = min(got.size(1), want.size(1))
        if not torch.equal((got[:, :cmp_n] == want[:, :cmp_n]) | ~until_end[:, :cmp_n],
                           torch.ones(len(rows), cmp_n, dtype=torch.bool)) or got.size(1) < want.size(1):
            r.fail(case, _("expected the symbols {want} (each step's argmax fed back), got {got}").format(
                               want=[row[:stop] for row in want.tolist()], got=got.tolist()))
            continue
        after = ~until_end[:, :cmp_n]
        if (got[:, :cmp_n][after] != P).any():
            r.fail(case, _("after a row's </s> it must stay padding (Vocab.PAD = {P}); got {got}: once a row has "
                           "ended, fill it with PAD (a done flag per row)").format(P=P, got=got.tolist()))
            continue
        if got.size(1) > want.size(1) or len(model.calls) > stop:
            r.fail(case, _("the loop ran {n_calls} steps although every row had written </s> after {stop}: stop as "
                           "soon as all rows are done").format(n_calls=len(model.calls), stop=stop))
            continue
        r.ok(case)
    return r.finish()


HINTS = {
    "4.1": (N_("The formula is the score e_ij in section 4: project the query, add it to every key, squash, then one "
               "number per character."),
            N_("W_q has shape (A, H), so the projected query is a matrix product with its transpose, shape (B, A). "
               "Insert a dimension of size 1 to broadcast it over the T keys; torch.tanh, then a product with v.")),
    "4.2": (N_("Padded positions must get weight exactly 0, and each row's weights must sum to 1 over its own "
               "characters: mask the scores before the softmax, not the weights after it."),
            N_("Tensor.masked_fill with float('-inf') where the mask is False (~mask); torch.softmax along the last "
               "dimension; the context is a weighted sum over dimension 1 (broadcast the weights with [..., None]).")),
    "4.3": (N_("One step of the equations of section 4: embed the previous symbol, score every encoder state against "
               "the previous decoder state (your Exercises 4.1 and 4.2 do the scoring and weighting), then the GRU "
               "cell reads [embedding; context], and the output layer reads [new state; context; embedding]."),
            N_("Layers in __init__: an nn.Embedding of the vocabulary into emb numbers; three bias-free nn.Linear for "
               "W_k (enc_dim to attn_dim), W_q (hidden to attn_dim) and v (attn_dim to 1); an nn.GRUCell whose input "
               "is the embedding and the context side by side; an nn.Linear from the new state, the context and the "
               "embedding side by side to the vocabulary. keys() applies W_k to all states; forward reads the keys, "
               "states and mask of memory, and joins vectors with torch.cat along the last dimension.")),
    "4.4": (N_("Average the cross-entropy over the real target symbols only: padding is not part of any answer."),
            N_("cross_entropy (in torch.nn.functional) wants the classes in dimension 1 (flatten to (B*L, V) and "
               "(B*L,), or transpose), and can either ignore one target id for you (ignore_index) or return one loss "
               "per symbol (reduction='none') to weight with the mask targets != pad_id.")),
    "4.5": (N_("Section 5: the decoder reads <s> and then the true previous symbols (teacher forcing), the loss is "
               "your masked loss of Exercise 4.4, and one call of the step is one optimiser update."),
            N_("gh.seq2seq.teacher_inputs builds the decoder inputs (or put a column of Vocab.START in front of the "
               "targets without their last column); calling the model on (src, lengths, inputs) returns (logits, "
               "weights). Then: zero the gradients, backpropagate, clip the gradient norm to 1 (clip_grad_norm_, in "
               "torch.nn.utils), step the optimiser, and return a dict with the loss under 'loss'.")),
    "4.6": (N_("Section 6: start every row with <s>, and at each step feed back the symbol the model finds most "
               "likely; a row is done at </s>, the loop is done when all rows are, or after max_len steps."),
            N_("Switch the model to eval mode and turn gradients off (torch.no_grad); model.encode, model.start, then "
               "model.step in a loop, which returns (logits, new state, weights); argmax over the last dimension of "
               "model.log_probs of the logits; a bool tensor of finished rows, filled with Vocab.PAD by masked_fill; "
               "torch.stack the steps along dimension 1.")),
    "4.7": (N_("Each of the k beams can be extended by each of the V symbols: score all k × V extensions "
               "(log-probabilities add up) and keep the k best over all of them, not the best per beam."),
            N_("Broadcast scores with [..., None] against logp, flatten the last two dimensions, Tensor.topk(k, "
               "dim=1); the flat index encodes both the beam (integer division by V) and the symbol (remainder).")),
    "4.8": (N_("A row is right only if every symbol up to and including the target's first </s> matches; what the "
               "decoder writes after that does not count."),
            N_("Mark the positions after the first end_id with a cumulative sum of (target == end_id) (minus the "
               "position itself); combine with (pred == target) by a logical or, then .all(dim=1).")),
}
