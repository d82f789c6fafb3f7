"""Chapter 04's build exercises: the reference pieces behind each "take the reference" line, and
the model a student's attention decoder plugs into.

    model = gh.seq2seq_build.BuiltSeq2Seq(src_vocab, tgt_vocab, AttentionDecoder)
    model.step(y_prev, h, memory)       # your decoder's forward: (logits, new state, weights)

`BuiltSeq2Seq` is the reference encoder (`gh.seq2seq.Encoder`) with the decoder you write; it has
the methods `gh.seq2seq.greedy`, `predict`, `exact_match_rate` and `beam_search` use (encode, start,
step, log_probs), so every decoding function of the chapter works with it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .dates import Vocab
from .seq2seq import AdditiveAttention, Encoder, Memory, greedy
from .seq2seq import exact_match as _exact_match
from .seq2seq import masked_loss as _masked_loss


class ReferenceDecoder(nn.Module):
    """One decoder step with additive attention, as in `gh.seq2seq.Seq2Seq.step`.

    keys(states) -> W_k h_j (B, T, A), computed once per input;
    forward(y_prev (B,), h (B, H), memory) -> logits (B, V), new state (B, H), weights (B, T).
    """

    def __init__(self, vocab_size: int, enc_dim: int, hidden: int = 128, attn_dim: int = 64, emb: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb)
        self.attn = AdditiveAttention(hidden, enc_dim, attn_dim)
        self.cell = nn.GRUCell(emb + enc_dim, hidden)
        self.out = nn.Linear(hidden + enc_dim + emb, vocab_size)

    def keys(self, states):
        return self.attn.keys(states)

    def forward(self, y_prev, h, memory: Memory):
        e = self.embed(y_prev)
        ctx, w = self.attn(h, memory.keys, memory.states, memory.mask)
        h = self.cell(torch.cat([e, ctx], -1), h)
        return self.out(torch.cat([h, ctx, e], -1)), h, w


class BuiltSeq2Seq(nn.Module):
    """The reference bidirectional-GRU encoder with a decoder class of your own.

    decoder: a class called as decoder(vocab_size, enc_dim, hidden) whose instances have
    keys(states) and forward(y_prev, h, memory) -> (logits, h, weights), like ReferenceDecoder.
    """

    def __init__(self, src_vocab: Vocab, tgt_vocab: Vocab, decoder=ReferenceDecoder, emb: int = 32,
                 hidden: int = 64, dec_hidden: int = 128):
        super().__init__()
        self.src_vocab, self.tgt_vocab, self.attention = src_vocab, tgt_vocab, True
        self.max_src_len, self.locales = None, ()
        self.encoder = Encoder(len(src_vocab), emb, hidden)
        self.init = nn.Linear(2 * hidden, dec_hidden)
        self.decoder = decoder(len(tgt_vocab), 2 * hidden, dec_hidden)
        banned = torch.zeros(len(tgt_vocab), dtype=torch.bool)
        banned[[Vocab.PAD, Vocab.START, Vocab.UNK]] = True
        self.register_buffer("banned", banned, persistent=False)

    def encode(self, src, lengths) -> Memory:
        if src.device.type == "cpu":  # cut the batch to its longest input: less time on padding
            src = src[:, :int(lengths.max())]
        states, summary = self.encoder(src, lengths)
        mask = torch.arange(src.size(1), device=src.device)[None, :] < lengths[:, None]
        return Memory(states, self.decoder.keys(states), mask, summary)

    def start(self, memory: Memory):
        return torch.tanh(self.init(memory.summary))

    def step(self, y_prev, h, memory: Memory):
        return self.decoder(y_prev, h, memory)

    def forward(self, src, lengths, tgt_in):
        """Teacher forcing, one step at a time: logits (B, L, V) and attention weights (B, L, T)."""
        memory = self.encode(src, lengths)
        h = self.start(memory)
        logits, weights = [], []
        for t in range(tgt_in.size(1)):
            out, h, w = self.step(tgt_in[:, t], h, memory)
            logits.append(out)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    def log_probs(self, logits):
        return torch.log_softmax(logits.float().masked_fill(self.banned, -math.inf), -1)


# --- the references behind the chapter's "take the reference" lines --------------------------------

def additive_scores(query, keys, W_q, v):
    """Exercise 4.1: e[b, j] = v · tanh(W_q query[b] + keys[b, j]), shape (B, T)."""
    return torch.tanh(keys + F.linear(query, W_q)[:, None]) @ v


def attend(scores, mask, values):
    """Exercise 4.2: masked softmax over the characters, then the weighted sum: (context, weights)."""
    w = torch.softmax(scores.masked_fill(~mask, -math.inf), -1)
    return torch.einsum("bt,bte->be", w, values), w


def masked_loss(logits, targets, pad_id):
    """Exercise 4.4: mean cross-entropy over the target symbols that are not padding."""
    if pad_id == Vocab.PAD:
        return _masked_loss(logits, targets)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=pad_id)


def make_step(model, opt):
    """Exercise 4.5: the teacher-forced training step for gh.fit (gh.seq2seq.seq2seq_step)."""
    from .seq2seq import seq2seq_step

    return seq2seq_step(model, opt)


@torch.no_grad()
def greedy_decode(model, src, lengths, max_len: int = 11):
    """Exercise 4.6: greedy decoding in eval mode: token ids (B, L), padding after </s>."""
    model.eval()
    return greedy(model, src, lengths, max_len)[0]


def exact_match(pred, target, end_id):
    """Exercise 4.8: per row, is pred equal to target up to and including target's first end_id?"""
    if end_id == Vocab.END:
        return _exact_match(pred, target)
    is_end = (target == end_id).long()
    return ((pred == target) | (is_end.cumsum(1) - is_end > 0)).all(1)


@torch.no_grad()
def decode_all(decode, model, src, lengths, batch: int = 2000, max_len: int = 11):
    """Run a greedy decoder `decode(model, src, lengths, max_len)` over many inputs in batches of
    similar length; token ids (N, max_len), padded."""
    order = torch.argsort(lengths)
    out = torch.full((src.size(0), max_len), Vocab.PAD, dtype=torch.long, device=src.device)
    for i in range(0, src.size(0), batch):
        idx = order[i:i + batch]
        n = lengths[idx]
        toks = decode(model, src[idx, :int(n.max())], n, max_len)
        out[idx, :toks.size(1)] = toks[:, :max_len]
    return out
