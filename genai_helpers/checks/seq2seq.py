"""Chapter 04's exercises: attention scores, the masked loss, a beam-search step, exact match."""
from __future__ import annotations

import math

import torch

from .framework import Report, call, compare, _require_callable


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
