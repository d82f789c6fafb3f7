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


# --- the translator's answers and its doubt -----------------------------------------------------

NUMERIC_STEPS = 300  # enough for numeric dates: a few seconds on a CPU


@pytest.fixture(scope="module")
def numeric_translator():
    """A small translator trained in seconds (no cache) on German numeric dates and the numeric
    forms typed everywhere (ISO, y/M/d, d.M.y): years 1600-2399, and two-digit years."""
    corpus = dates.DateCorpus(locales=("de_DE",))
    corpus.formats = [f for f in corpus.formats if f.kind == "numeric"]
    data = dates.date_data(NUMERIC_STEPS * 64, n_test=1000, device=torch.device("cpu"), corpus=corpus)
    model, _ = S.train_seq2seq(data, steps=NUMERIC_STEPS, batch_size=64, lr=1e-2, plot=False,
                               size={"hidden": 32, "dec_hidden": 64})
    return model


def test_any_year_iso_input_and_two_digit_years_translate(numeric_translator):
    cases = {"4.3.1712": "1712-03-04", "1712-03-04": "1712-03-04", "2391/12/7": "2391-12-07",
             "03.04.87": "1987-04-03", "28.11.26": "2026-11-28", "1969-7-20": "1969-07-20"}
    for text, iso in cases.items():
        t = translator.translate(numeric_translator, text)
        assert t.iso == iso and not t.message, t


def test_wrong_answers_on_unseen_forms_carry_the_warning(numeric_translator):
    """Forms this model never saw: month first with a day over 12 (no such month), a year after
    2399 (century digits it never wrote). Where its answer is wrong, it must say so."""
    unseen = {"11/28/2026": "2026-11-28", "12/31/1999": "1999-12-31", "5/13/2001": "2001-05-13",
              "31.12.2500": "2500-12-31"}
    answers = {text: translator.translate(numeric_translator, text) for text in unseen}
    wrong = [t for text, t in answers.items() if t.iso != unseen[text]]
    assert wrong, "no month is 28: these forms should trip the model up"
    for t in wrong:
        assert t.iso is None or "unsure" in t.message, t


class Scripted(S.Seq2Seq):
    """A Seq2Seq whose decoder writes `answer`, giving each of its symbols probability `p`: a model
    whose outputs the test controls."""

    def __init__(self, src_vocab, tgt_vocab, answer: str, p: float):
        super().__init__(src_vocab, tgt_vocab, emb=4, hidden=3, dec_hidden=4, attn_dim=3, tgt_emb=2)
        ids = tgt_vocab.encode([answer], end=True)[0][0]
        others = len(tgt_vocab) - len(Vocab.SPECIALS)  # what decoding may write (digits, '-', ' ', </s>), but one
        self.table = torch.full((len(ids), len(tgt_vocab)), math.log((1 - p) / others))
        self.table[torch.arange(len(ids)), ids] = math.log(p)
        self.max_src_len, self.locales = 40, ("fr_FR",)

    def start(self, memory):
        return torch.zeros(memory.mask.size(0), 1)  # the state counts the steps

    def step(self, y_prev, h, memory):
        t = h[:, 0].long().clamp(max=len(self.table) - 1)
        return self.table[t], h + 1, memory.mask.float() / memory.mask.sum(1, keepdim=True)


def test_the_warning_follows_the_probability(untrained):
    from genai_helpers.confidence import UNSURE

    vocabs = untrained.src_vocab, untrained.tgt_vocab
    sure = translator.translate(Scripted(*vocabs, "2026-11-28", 0.9999), "28 novembre 2026")
    assert sure.iso == "2026-11-28" and sure.message == "" and sure.probability == pytest.approx(0.9999 ** 11, rel=1e-3)
    doubtful = translator.translate(Scripted(*vocabs, "2026-11-29", 0.99), "28 novembre 2026")
    assert doubtful.probability == pytest.approx(0.99 ** 11, rel=1e-3) and doubtful.probability < UNSURE
    assert doubtful.iso == "2026-11-29" and "unsure" in doubtful.message and "check" in doubtful.message
    invalid = translator.translate(Scripted(*vocabs, "2026-02-31", 0.9999), "31 février 2026")
    assert invalid.iso is None and "not a date" in invalid.message  # sure of itself, and still no date
