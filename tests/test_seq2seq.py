"""The Seq2Seq: exact padding, beam search against exhaustive search, translate never raises."""
import itertools
import math

import pytest
import torch

from genai_helpers import dates, translator
from genai_helpers import seq2seq as S
from genai_helpers.dates import Vocab


def tiny(attention=True, seed=0, scale=3.0):
    torch.manual_seed(seed)
    m = S.Seq2Seq(Vocab("xyz"), Vocab("ab"), attention=attention, emb=4, hidden=3, dec_hidden=5,
                  attn_dim=3, tgt_emb=2)
    with torch.no_grad():
        m.out.weight.mul_(scale)  # peaked next-token distributions: search matters
    return m.eval()


def sequence_logprob(model, src, lengths, seq):
    """log p(seq | src) by teacher forcing, with decoding's rules (<pad>, <s>, <unk> banned)."""
    tgt = torch.tensor([seq])
    logits, _ = model(src, lengths, S.teacher_inputs(tgt))
    return model.log_probs(logits).gather(2, tgt[..., None]).sum().item()


def exhaustive(model, src, lengths, max_len):
    allowed = [Vocab.END] + list(range(len(Vocab.SPECIALS), len(model.tgt_vocab)))
    best = (-math.inf, None)
    for n in range(1, max_len + 1):
        for seq in itertools.product(allowed, repeat=n):
            if Vocab.END in seq[:-1] or (n < max_len and seq[-1] != Vocab.END):
                continue
            best = max(best, (sequence_logprob(model, src, lengths, list(seq)), list(seq)))
    return best


def strip(row):
    row = row.tolist()
    return row[:row.index(Vocab.END) + 1] if Vocab.END in row else row


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_finds_the_exhaustive_optimum(attention, seed):
    model = tiny(attention, seed)
    src, lengths = model.src_vocab.encode(["xyzzy", "zx"])
    max_len = 4
    toks, scores, _ = S.beam_search(model, src, lengths, k=3 ** max_len, max_len=max_len)
    greedy_toks, greedy_score, _ = S.greedy(model, src, lengths, max_len)
    for b in range(2):
        s, n = src[b:b + 1, :int(lengths[b])], lengths[b:b + 1]
        best_score, best_seq = exhaustive(model, s, n, max_len)
        assert strip(toks[b, 0]) == best_seq
        assert scores[b, 0].item() == pytest.approx(best_score, abs=1e-5)
        for k in (1, 2, 3):
            tk, sc, _ = S.beam_search(model, s, n, k=k, max_len=max_len)
            assert sc[0, 0].item() <= best_score + 1e-5
            # the reported score is the sequence's log-probability
            assert sc[0, 0].item() == pytest.approx(sequence_logprob(model, s, n, strip(tk[0, 0])), abs=1e-5)
            if k == 1:
                assert strip(tk[0, 0]) == strip(greedy_toks[b])
                assert sc[0, 0].item() == pytest.approx(greedy_score[b].item(), abs=1e-5)


def test_padding_changes_nothing():
    model = tiny(True, 0)
    src, lengths = model.src_vocab.encode(["xyzzyx", "zy"])
    wide = torch.nn.functional.pad(src, (0, 5), value=Vocab.PAD)
    (s1, h1), (s2, h2) = model.encoder(src, lengths), model.encoder(wide, lengths)
    assert torch.allclose(h1, h2, atol=1e-6)
    assert torch.allclose(s1[1, :2], s2[1, :2], atol=1e-6)
    alone_states, alone_summary = model.encoder(src[1:, :2], lengths[1:])
    assert torch.allclose(alone_summary, h1[1:], atol=1e-6)
    assert torch.allclose(alone_states, s1[1:, :2], atol=1e-6)
    tgt, _ = model.tgt_vocab.encode(["abba", "a"], end=True)
    la, wa = model(src, lengths, S.teacher_inputs(tgt)), model(wide, lengths, S.teacher_inputs(tgt))
    assert torch.allclose(la[0], wa[0], atol=1e-5)
    assert wa[1][1, :, 2:].abs().max() == 0  # no attention on padding
    assert torch.allclose(wa[1].sum(-1), torch.ones(2, tgt.size(1)), atol=1e-6)


def test_masked_loss_ignores_padding():
    model = tiny(True, 0)
    src, lengths = model.src_vocab.encode(["xyzzyx", "zy"])
    tgt, _ = model.tgt_vocab.encode(["abba", "a"], end=True)
    logits, _ = model(src, lengths, S.teacher_inputs(tgt))
    loss = S.masked_loss(logits, tgt)
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")
    assert loss.item() == pytest.approx(torch.cat([per_token[0, :5], per_token[1, :2]]).mean().item())


def test_exact_match():
    E, P = Vocab.END, Vocab.PAD
    tgt = torch.tensor([[5, 6, E, P]] * 4)
    pred = torch.tensor([[5, 6, E, P], [5, 6, E, 7], [5, 6, 6, E], [5, E, P, P]])
    assert S.exact_match(pred, tgt).tolist() == [True, True, False, False]
    assert S.exact_match(pred[:, :3], tgt).tolist() == [True, True, False, False]


def test_training_learns_and_the_checkpoint_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_CHECKPOINTS", str(tmp_path))
    data = dates.date_data(2560, n_test=500, device=torch.device("cpu"))
    before = S.exact_match_rate(S.Seq2Seq(data.src_vocab, data.tgt_vocab, hidden=32, dec_hidden=64), data["valid"])
    model, hist = S.train_seq2seq(data, steps=40, batch_size=64, size={"hidden": 32, "dec_hidden": 64},
                                  name="tiny", plot=False)
    assert hist.losses["loss"][-1] < hist.losses["loss"][0] - 0.5
    assert before == 0.0
    again, hist2 = S.train_seq2seq(data, steps=40, batch_size=64, size={"hidden": 32, "dec_hidden": 64},
                                   name="tiny", plot=False)
    assert hist2.step == hist.step and all(torch.equal(a, b) for a, b in
                                           zip(model.state_dict().values(), again.state_dict().values()))
    t = translator.translate(again, data.pairs["test"].src[0])
    assert t.attention is not None and t.attention.shape[1] == len(t.source)


def test_translate_messages(untrained):
    cases = {"": "type a date", "   ": "type a date", "x" * 500: "500 characters",
             "🎂🎉": "does not look like a date", "28 ноября 2026": "does not look like a date",
             None: "as a string", 12: "as a string"}
    for text, words in cases.items():
        t = translator.translate(untrained, text)
        assert words in t.message and t.iso is None, (text, t)
    t = translator.translate(untrained, "28 novembre 2026 😀")
    assert "'😀'" in t.message and t.attention.shape[1] == len("28 novembre 2026 😀")
    iso, attention = translator.translate(untrained, "28 novembre 2026")
    assert attention is not None and (iso is None or len(iso) == 10)
    with pytest.raises(TypeError, match="reference_translator"):
        translator.translate("not a model", "28 novembre 2026")
