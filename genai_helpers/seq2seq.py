"""The reference Seq2Seq of chapter 04: a bidirectional GRU encoder and a GRU decoder that reads
either one fixed-length vector (the bottleneck) or all encoder states through additive attention.

    model, hist = gh.seq2seq.reference_translator()       # trained once, then cached in data/
    t = gh.translator.translate(model, "samedi 28 novembre 2026")
    t.iso, t.attention                                    # '2026-11-28', (11, 23) array

Shapes: B batch, T source characters, L target tokens, E = 2 x encoder hidden, A attention size.
Padding is exact: the backward GRU reads each sequence from its own last character, padded
positions get zero attention, and padded targets do not count in the loss.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dates import DateData, Vocab, date_data
from .runtime import evaluating, is_quick, pick, single_thread
from .schedules import LinearDecay
from .train import adam, epochs_for, fit


def reverse_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, width) positions that reverse each row's first lengths[b] items and keep the padding."""
    t = torch.arange(width, device=lengths.device)[None, :]
    rev = lengths[:, None] - 1 - t
    return torch.where(rev >= 0, rev, t)


class Encoder(nn.Module):
    """Characters -> one state per character (B, T, E) and a summary vector (B, E)."""

    def __init__(self, vocab_size: int, emb: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=Vocab.PAD)
        self.fwd = nn.GRU(emb, hidden, batch_first=True)
        self.bwd = nn.GRU(emb, hidden, batch_first=True)

    def forward(self, src, lengths):
        x = self.embed(src)
        rev = reverse_index(lengths, src.size(1))[..., None]
        h_f, _ = self.fwd(x)
        h_b, _ = self.bwd(x.gather(1, rev.expand_as(x)))  # each row read from its last character
        h_b = h_b.gather(1, rev.expand_as(h_b))  # back in reading order
        states = torch.cat([h_f, h_b], -1)
        last = (lengths - 1).clamp(min=0)[:, None, None].expand(-1, 1, h_f.size(-1))
        summary = torch.cat([h_f.gather(1, last)[:, 0], h_b[:, 0]], -1)  # fwd end, bwd end
        return states, summary


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015): score(s, h_j) = v^T tanh(W_q s + W_k h_j), softmax over real positions."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.W_k = nn.Linear(key_dim, attn_dim, bias=False)
        self.W_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def keys(self, states):
        """W_k h_j for every position, computed once per sentence, not once per output step."""
        return self.W_k(states)

    def forward(self, query, keys, values, mask):
        scores = self.v(torch.tanh(keys + self.W_q(query)[:, None])).squeeze(-1)  # (B, T)
        weights = torch.softmax(scores.masked_fill(~mask, -math.inf), -1)
        return (weights[..., None] * values).sum(1), weights  # faster than bmm for short inputs on CPU


@dataclass
class Memory:
    """What the decoder may read about the source: all states, or only the summary."""

    states: torch.Tensor  # (B, T, E)
    keys: torch.Tensor | None  # (B, T, A), None without attention
    mask: torch.Tensor  # (B, T) True at real characters
    summary: torch.Tensor  # (B, E)

    def repeat(self, k: int) -> Memory:
        """Each row k times (for beam search)."""
        def r(x):
            return None if x is None else x.repeat_interleave(k, 0)

        return Memory(r(self.states), r(self.keys), r(self.mask), r(self.summary))


class Seq2Seq(nn.Module):
    """Encoder + GRU decoder; attention=False gives the fixed-length bottleneck of Cho et al. (2014)."""

    def __init__(self, src_vocab: Vocab, tgt_vocab: Vocab, attention: bool = True, emb: int = 32,
                 hidden: int = 128, dec_hidden: int = 128, attn_dim: int = 64, tgt_emb: int = 16):
        super().__init__()
        self.src_vocab, self.tgt_vocab, self.attention = src_vocab, tgt_vocab, attention
        self.max_src_len = None  # the longest training input, set by the trainer
        self.locales = ()  # the languages it was trained on, set by the trainer
        enc = 2 * hidden
        self.encoder = Encoder(len(src_vocab), emb, hidden)
        self.init = nn.Linear(enc, dec_hidden)
        self.embed = nn.Embedding(len(tgt_vocab), tgt_emb)
        self.attn = AdditiveAttention(dec_hidden, enc, attn_dim) if attention else None
        self.cell = nn.GRUCell(tgt_emb + enc, dec_hidden)
        self.out = nn.Linear(dec_hidden + enc + tgt_emb, len(tgt_vocab))
        banned = torch.zeros(len(tgt_vocab), dtype=torch.bool)
        banned[[Vocab.PAD, Vocab.START, Vocab.UNK]] = True
        self.register_buffer("banned", banned, persistent=False)

    def encode(self, src, lengths) -> Memory:
        states, summary = self.encoder(src, lengths)
        mask = torch.arange(src.size(1), device=src.device)[None, :] < lengths[:, None]
        return Memory(states, self.attn.keys(states) if self.attn is not None else None, mask, summary)

    def start(self, memory: Memory):
        return torch.tanh(self.init(memory.summary))

    def step(self, y_prev, h, memory: Memory):
        """One decoder step: (context from the previous state) -> new state -> logits (B, V)."""
        e = self.embed(y_prev)
        if self.attn is not None:
            ctx, w = self.attn(h, memory.keys, memory.states, memory.mask)
        else:
            ctx, w = memory.summary, None
        h = self.cell(torch.cat([e, ctx], -1), h)
        return self.out(torch.cat([h, ctx, e], -1)), h, w

    def forward(self, src, lengths, tgt_in):
        """Teacher forcing: logits (B, L, V) and attention weights (B, L, T) (None without)."""
        memory = self.encode(src, lengths)
        h = self.start(memory)
        emb = self.embed(tgt_in)
        hs, ctxs, ws = [], [], []
        for t in range(tgt_in.size(1)):
            if self.attn is not None:
                ctx, w = self.attn(h, memory.keys, memory.states, memory.mask)
                ws.append(w)
            else:
                ctx = memory.summary
            h = self.cell(torch.cat([emb[:, t], ctx], -1), h)
            hs.append(h)
            ctxs.append(ctx)
        logits = self.out(torch.cat([torch.stack(hs, 1), torch.stack(ctxs, 1), emb], -1))
        return logits, (torch.stack(ws, 1) if ws else None)

    def log_probs(self, logits):
        """Log-probabilities of the next token; <pad>, <s> and <unk> are never produced."""
        return torch.log_softmax(logits.float().masked_fill(self.banned, -math.inf), -1)


def teacher_inputs(tgt):
    """Decoder inputs for targets (B, L): <s> followed by the targets shifted right."""
    start = torch.full_like(tgt[:, :1], Vocab.START)
    return torch.cat([start, tgt[:, :-1]], 1)


def masked_loss(logits, tgt):
    """Cross-entropy per real target token (padding excluded), averaged over those tokens."""
    return F.cross_entropy(logits.flatten(0, 1).float(), tgt.flatten(), ignore_index=Vocab.PAD)


@torch.no_grad()
def greedy(model: Seq2Seq, src, lengths, max_len: int = 11):
    """Most likely token at each step: tokens (B, L), log-probability (B,), attention (B, L, T)."""
    memory = model.encode(src, lengths)
    h = model.start(memory)
    y = torch.full((src.size(0),), Vocab.START, dtype=torch.long, device=src.device)
    done = torch.zeros_like(y, dtype=torch.bool)
    score = torch.zeros(src.size(0), device=src.device)
    toks, ws = [], []
    for _ in range(max_len):
        logits, h, w = model.step(y, h, memory)
        logp = model.log_probs(logits)
        best, y = logp.max(-1)
        y = y.masked_fill(done, Vocab.PAD)
        score = score + best.masked_fill(done, 0.0)
        toks.append(y)
        if w is not None:
            ws.append(w)
        done = done | (y == Vocab.END)
        if bool(done.all()):
            break
    return torch.stack(toks, 1), score, (torch.stack(ws, 1) if ws else None)


def beam_step(scores, logp, k: int):
    """Keep the k best one-token extensions of k beams.

    scores (B, k): log-probability of each beam so far; logp (B, k, V): next-token log-probs.
    Returns the new scores (B, k) (best first), the beam each came from and the token added.
    """
    total = scores[..., None] + logp  # (B, k, V)
    best, idx = total.flatten(1).topk(k, dim=1)
    V = logp.size(-1)
    return best, idx // V, idx % V


@torch.no_grad()
def beam_search(model: Seq2Seq, src, lengths, k: int = 4, max_len: int = 11):
    """Beam search for all B inputs at once (B x k hypotheses in one batch).

    Returns tokens (B, k, L) and scores (B, k), best first, and the attention of the best
    hypothesis (B, L, T) (None without attention). A finished hypothesis (</s> written) keeps its
    score and is padded; scores are summed log-probabilities.
    """
    B, dev = src.size(0), src.device
    memory = model.encode(src, lengths).repeat(k)
    h = model.start(memory)
    V = len(model.tgt_vocab)
    scores = torch.full((B, k), -math.inf, device=dev)
    scores[:, 0] = 0.0  # one live beam at the start: the others would be copies of it
    y = torch.full((B * k,), Vocab.START, dtype=torch.long, device=dev)
    finished = torch.zeros(B, k, dtype=torch.bool, device=dev)
    only_pad = torch.full((V,), -math.inf, device=dev)
    only_pad[Vocab.PAD] = 0.0
    toks = torch.zeros(B, k, 0, dtype=torch.long, device=dev)
    attn = None
    rows = torch.arange(B, device=dev)[:, None] * k
    for _ in range(max_len):
        logits, h, w = model.step(y, h, memory)
        logp = model.log_probs(logits).view(B, k, V)
        logp = torch.where(finished[..., None], only_pad, logp)
        scores, parent, tok = beam_step(scores, logp, k)
        src_rows = (rows + parent).flatten()
        h = h[src_rows]
        toks = torch.cat([toks.gather(1, parent[..., None].expand(-1, -1, toks.size(2))), tok[..., None]], 2)
        if w is not None:
            w = w.view(B, k, 1, -1)
            attn = w if attn is None else torch.cat([attn, w], 2)
            attn = attn.gather(1, parent[..., None, None].expand(-1, -1, *attn.shape[2:]))
        finished = finished.gather(1, parent) | (tok == Vocab.END) | (scores == -math.inf)
        y = tok.flatten()
        if bool(finished.all()):
            break
    return toks, scores, (attn[:, 0] if attn is not None else None)


def exact_match(pred, tgt) -> torch.Tensor:
    """Per-row: is the prediction equal to the target up to and including the first </s>?"""
    L = max(pred.size(1), tgt.size(1))
    pred = F.pad(pred, (0, L - pred.size(1)), value=Vocab.PAD)
    tgt = F.pad(tgt, (0, L - tgt.size(1)), value=Vocab.PAD)
    after_end = (tgt == Vocab.END).long().cumsum(1) - (tgt == Vocab.END).long() > 0
    return ((pred == tgt) | after_end).all(1)


@torch.no_grad()
def predict(model: Seq2Seq, src, lengths, beam: int = 1, batch: int = 2000, max_len: int = 11,
            with_score: bool = False):
    """Greedy (beam=1) or beam-search token predictions (N, L) for many inputs, in batches.

    with_score=True also returns each prediction's log-probability (N,) (the score of `greedy` or
    of the best beam), the model's confidence in its answer.
    """
    order = torch.argsort(lengths)  # similar lengths together: less padding
    out = torch.empty(src.size(0), max_len, dtype=torch.long, device=src.device)
    score = torch.empty(src.size(0), device=src.device)
    for i in range(0, src.size(0), batch):
        idx = order[i:i + batch]
        n = lengths[idx]
        s = src[idx, :int(n.max())]
        if beam == 1:
            toks, score[idx], _ = greedy(model, s, n, max_len)
        else:
            toks, scores, _ = beam_search(model, s, n, beam, max_len)
            toks, score[idx] = toks[:, 0], scores[:, 0]
        out[idx] = F.pad(toks, (0, max_len - toks.size(1)), value=Vocab.PAD)
    return (out, score) if with_score else out


def exact_match_rate(model: Seq2Seq, data: tuple, beam: int = 1) -> float:
    """Share of (src, lengths, tgt) rows translated exactly (see `exact_match`)."""
    src, lengths, tgt = data
    with evaluating(model):
        return exact_match(predict(model, src, lengths, beam, max_len=tgt.size(1)), tgt).float().mean().item()


def length_buckets(lengths, batch_size: int, seed: int = 0) -> torch.Tensor:
    """An order of the examples in which each run of batch_size has similar lengths, the runs
    shuffled: batches taken in this order waste little time on padding."""
    g = torch.Generator().manual_seed(seed)
    n = len(lengths)
    jitter = torch.rand(n, generator=g)
    order = torch.argsort(lengths.cpu().double() + jitter)
    blocks = order[:n - n % batch_size].view(-1, batch_size)
    blocks = blocks[torch.randperm(len(blocks), generator=g)]
    return torch.cat([blocks.flatten(), order[n - n % batch_size:]]).to(lengths.device)


def seq2seq_step(model: Seq2Seq, opt, trim: bool = True, decoder=None, before=None):
    """The step function for `gh.fit`: teacher-forced masked cross-entropy, gradient norm clipped to 1.

    trim: cut the batch to its longest input first (free on a CPU; a host sync on a GPU).
    decoder: function(model, src, lengths, tgt_in) -> logits instead of the model's own forward.
    before: called first in every step (e.g. a learning-rate schedule).
    """
    def step(batch):
        s, n, y = batch
        if before is not None:
            before()
        if trim:
            s = s[:, :int(n.max())]
        tgt_in = teacher_inputs(y)
        logits = decoder(model, s, n, tgt_in) if decoder is not None else model(s, n, tgt_in)[0]
        loss = masked_loss(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss": loss}

    return step


def build_seq2seq(data: DateData, attention: bool = True, size: dict | None = None, lr: float = 3e-3,
                  total_steps: int | None = None, seed: int = 0, init: Seq2Seq | None = None,
                  fast: bool = True, decoder=None) -> tuple[dict, object]:
    """Chapter 04's translator as the chapter trains it: (state for `gh.fit`, step).

    size: Encoder/decoder sizes (default: the class's); total_steps: the training length, over
    whose last 40% the learning rate falls linearly to zero (None: constant); init: a trained
    model to start from (same vocabularies and sizes). fast=False: plain `torch.optim.Adam`, no
    trimming of padded batches; decoder: see `seq2seq_step` (the textbook loop of `bench`).
    """
    torch.manual_seed(seed)
    src, lengths, _ = data["train"]
    model = Seq2Seq(data.src_vocab, data.tgt_vocab, attention=attention, **(size or {})).to(src.device)
    if init is not None:
        model.load_state_dict(init.state_dict())
    model.max_src_len = int(lengths.max())
    model.locales = tuple(data.corpus.locales)
    opt = adam(model.parameters(), lr=lr) if fast else torch.optim.Adam(model.parameters(), lr=lr)
    schedule = LinearDecay([opt], total_steps, 0.4) if total_steps else None
    trim = fast and src.device.type == "cpu"  # reading the batch's longest length is free on a CPU only
    return {"model": model, "opt": opt}, seq2seq_step(model, opt, trim=trim, decoder=decoder, before=schedule)


def train_seq2seq(data: DateData, *, attention: bool = True, steps: int = 3000, batch_size: int = 128,
                  lr: float = 3e-3, size: dict | None = None, name: str | None = None, seed: int = 0,
                  plot: bool = True, init: Seq2Seq | None = None):
    """Train a Seq2Seq on data["train"] with the course loop; evaluates exact match on data["valid"].

    The learning rate is constant, then falls linearly to zero over the last 40% of the steps.
    """
    order = length_buckets(data["train"][1], batch_size, seed)
    train = tuple(t[order] for t in data["train"])
    epochs = epochs_for(steps, len(train[0]), batch_size)
    state, step = build_seq2seq(data, attention, size, lr, epochs * (len(train[0]) // batch_size), seed, init)
    model = state["model"]
    valid = tuple(t[:2000] for t in data["valid"])
    fingerprint = None if init is None else round(sum(p.double().sum().item() for p in init.parameters()), 6)
    config = {"attention": attention, "steps": steps, "lr": lr, "size": dict(size or {}), "src": data.src_vocab.chars,
              "data": data.recipe(), "model": "seq2seq-gru-1", "init": fingerprint,
              "schedule": "LinearDecay"}  # the schedule moved one step (2026-12): older caches retrain
    # On a CPU, one thread: two threads that wait for each other at every small operation are many
    # times slower as soon as another program keeps a core busy (10-20x on a shared 2-core machine).
    with single_thread() if train[0].device.type == "cpu" else contextlib.nullcontext():
        hist = fit(step, train, state=state, epochs=epochs, batch_size=batch_size, shuffle=False,
                   eval_fn=lambda: {"valid_exact_match": exact_match_rate(model, valid)},
                   checkpoint=name, config=config, seed=seed, desc=name or "seq2seq", plot=plot)
    model.eval()
    return model, hist


# --- the chapter's reference models and the public translation function --------------------------

# typed: the share of training pairs retyped by gh.typed_dates's rules (the rest: Babel's forms);
# n_typed: the size of the typed validation and test sets, larger than the clean ones because their
# few errors are what the warning is measured on.
REFERENCE = {"size": {"hidden": 64}, "steps": {"full": 1200, "quick": 150},
             "batch_size": {"full": 128, "quick": 64}, "typed": 0.5, "n_typed": {"full": 30_000, "quick": 2000}}


@functools.lru_cache(maxsize=4)
def _reference_data(quick: bool) -> DateData:
    steps, bs = REFERENCE["steps"], REFERENCE["batch_size"]
    n = steps["quick"] * bs["quick"] if quick else steps["full"] * bs["full"]
    n_typed = REFERENCE["n_typed"]["quick" if quick else "full"]
    return date_data(n, n_test=2000 if quick else 10_000, typed=REFERENCE["typed"], n_typed=n_typed)


def reference_data() -> DateData:
    """The chapter's date pairs, split by date, the same on every call: "train" (Babel's forms and
    typed ones), "valid" and "test" (Babel's forms), "valid_typed" and "test_typed" (typed)."""
    return _reference_data(is_quick())


_MODELS: dict = {}


def reference_translator(attention: bool = True, plot: bool = True):
    """Chapter 04's trained date translator (with attention, or the bottleneck model): (model, history).

    Trained once with the course loop and cached in data/checkpoints (a rerun loads it in
    seconds); later chapters use it as a small translation service with `translate`.
    """
    key = (attention, is_quick())
    if key not in _MODELS:
        name = "seq2seq_dates_" + ("attention" if attention else "bottleneck")
        _MODELS[key] = train_seq2seq(
            reference_data(), attention=attention, size=REFERENCE["size"],
            steps=pick(**REFERENCE["steps"]), batch_size=pick(**REFERENCE["batch_size"]), name=name,
            plot=plot)
    return _MODELS[key]


# --- the longer-input variant: lists of dates ----------------------------------------------------

LISTS = {"max_dates": 3, "steps": {"full": 300, "quick": 40}, "batch_size": {"full": 64, "quick": 32}}


@functools.lru_cache(maxsize=4)
def _list_data(quick: bool) -> DateData:
    steps, bs = LISTS["steps"], LISTS["batch_size"]
    n = steps["quick"] * bs["quick"] if quick else steps["full"] * bs["full"]
    return date_data(n, n_test=600 if quick else 3000, max_dates=LISTS["max_dates"])


def list_data() -> DateData:
    """Lists of 1 to 3 dates ("28 nov 2026; 3/4/87") -> their ISO forms, split by date."""
    return _list_data(is_quick())


def list_translator(attention: bool = True, plot: bool = True):
    """The reference model (with or without attention) trained further on lists of dates."""
    key = ("lists", attention, is_quick())
    if key not in _MODELS:
        start, _ = reference_translator(attention, plot=False)
        name = "seq2seq_date_lists_" + ("attention" if attention else "bottleneck")
        _MODELS[key] = train_seq2seq(
            list_data(), attention=attention, size=REFERENCE["size"], steps=pick(**LISTS["steps"]),
            batch_size=pick(**LISTS["batch_size"]), name=name, plot=plot, init=start)
    return _MODELS[key]
