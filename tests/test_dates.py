"""The date corpus: Babel's formats reproduced exactly, one ISO date per string, a split by date."""
import datetime as dt
from collections import defaultdict

import numpy as np
import pytest
import torch
from babel import dates as babel_dates

from genai_helpers.dates import FIRST, NUMERIC_PATTERNS, WINDOW, DateCorpus, Vocab, normalise


@pytest.fixture(scope="module")
def corpus():
    return DateCorpus()


def test_locales_and_kinds(corpus):
    assert len(corpus.locales) >= 6
    assert {"en", "fr", "de", "es", "zh"} <= {loc.split("_")[0] for loc in corpus.locales}
    kinds = {f.kind for f in corpus.formats}
    assert kinds == {"numeric", "abbreviated", "long", "weekday"}
    for loc in corpus.locales:
        mine = [f for f in corpus.formats if f.locale == loc]
        assert len(mine) >= 4 and len({f.kind for f in mine}) >= 2, loc


def test_month_first_numeric_formats_are_left_out(corpus):
    assert "M/d/yy" in [f.pattern for f in corpus.dropped]
    for f in corpus.formats:
        numbers = [p[0] for p in f.parts if isinstance(p, tuple) and p[0] in "yMLd"]
        numeric_month = [p for p in f.parts if isinstance(p, tuple) and p[0] in "ML" and p[1] <= 2]
        assert not (numeric_month and numbers[0] in "ML"), str(f)


def test_our_formatter_writes_what_babel_writes(corpus):
    rng = np.random.default_rng(0)
    for day in rng.integers(0, corpus.n_days, 60).tolist():
        date = FIRST + dt.timedelta(day)
        for f in corpus.formats:
            assert corpus.write(day, f, normalised=False) == babel_dates.format_date(
                date, f.pattern, locale=f.locale), (str(f), date)


def clashing_days(corpus) -> np.ndarray:
    """The days most likely to clash: years that end alike in every century (26, 68, 69: the window's
    edges), so that a string that could name two dates meets both in a sample."""
    years = np.array([int(iso[:4]) for iso in corpus.iso])
    return np.flatnonzero(np.isin(years % 100, (26, 68, 69)))


def test_every_string_has_exactly_one_date(corpus):
    """A large sample over all locales and formats, on days whose years end alike: no string is
    written for two dates."""
    pairs = corpus.sample(150_000, clashing_days(corpus), seed=1)
    meaning = defaultdict(set)
    for s, t in zip(pairs.src, pairs.tgt):
        meaning[s].add(t)
    clashes = {s: d for s, d in meaning.items() if len(d) > 1}
    assert not clashes, list(clashes.items())[:5]
    for s, t in zip(pairs.src[:2000], pairs.tgt[:2000]):
        assert dt.date.fromisoformat(t)  # a real date
    assert len(meaning) > 60_000  # the sample is varied, not a few strings repeated


def test_years_and_the_two_digit_window(corpus):
    pairs = corpus.sample(20_000, np.arange(corpus.n_days), seed=2)
    years = np.array([int(t[:4]) for t in pairs.tgt])
    assert years.min() < 1610 and years.max() > 2390  # four-digit years from 1600 to 2399
    two = np.array([corpus.formats[f].two_digit_year for f in pairs.fmt])
    assert two.any() and (years[two] >= WINDOW[0].year).all() and (years[two] <= WINDOW[1].year).all()
    early = corpus.sample(500, np.arange(100), seed=3)  # 1600 only: no two-digit year can be written
    assert not any(corpus.formats[f].two_digit_year for f in early.fmt)


def test_numeric_forms_of_every_locale(corpus):
    for loc in corpus.locales:
        patterns = {f.pattern for f in corpus.formats if f.locale == loc}
        assert set(NUMERIC_PATTERNS) <= patterns, loc
    iso = next(i for i, f in enumerate(corpus.formats) if f.pattern == "y-MM-dd")
    day = (dt.date(1712, 3, 4) - FIRST).days
    assert corpus.write(day, iso) == "1712-03-04"
    assert corpus.write(day, next(i for i, f in enumerate(corpus.formats) if f.pattern == "d.M.y")) == "4.3.1712"


def test_two_digit_years_follow_strptime(corpus):
    de_short = next(i for i, f in enumerate(corpus.formats) if f.locale == "de_DE" and f.pattern == "dd.MM.yy")
    for date in (WINDOW[0], dt.date(1999, 12, 31), dt.date(2000, 1, 1), WINDOW[1]):
        text = corpus.write((date - FIRST).days, de_short)
        assert dt.datetime.strptime(text, "%d.%m.%y").date() == date
    with pytest.raises(ValueError, match="100 years"):
        DateCorpus(window=(dt.date(1950, 1, 1), dt.date(2060, 1, 1)))
    with pytest.raises(ValueError, match="must lie within"):
        DateCorpus(first=dt.date(1990, 1, 1))


def test_split_is_by_date(corpus):
    split = corpus.split()
    sets = {k: set(v.tolist()) for k, v in split.items()}
    assert not sets["train"] & sets["test"] and not sets["train"] & sets["valid"]
    assert not sets["valid"] & sets["test"]
    assert sum(len(s) for s in sets.values()) == corpus.n_days
    train, test = corpus.sample(20_000, split["train"], 0), corpus.sample(5_000, split["test"], 1)
    assert not set(train.tgt) & set(test.tgt)
    assert not set(train.src) & set(test.src)


def test_sampling_is_seeded_and_covers_all_locales(corpus):
    a, b = corpus.sample(500, np.arange(100), seed=3), corpus.sample(500, np.arange(100), seed=3)
    assert a.src == b.src and a.tgt == b.tgt
    assert corpus.sample(500, np.arange(100), seed=4).src != a.src
    assert set(corpus.locale_of(a.fmt)) == set(corpus.locales)


def test_lists_of_dates(corpus):
    p = corpus.sample_lists(200, np.arange(corpus.n_days), max_dates=3, seed=0)
    assert set(p.count.tolist()) == {1, 2, 3}
    for s, t, k in zip(p.src, p.tgt, p.count):
        assert len(t.split(" ")) == k and s.count("; ") >= k - 1


def test_normalise():
    assert normalise("  28\u00a0Nov.\u202f2026 ") == "28 nov. 2026"
    assert normalise("２０２６年１１月２８日") == "2026年11月28日"


def test_vocab_encodes_decodes_and_marks_unknown_characters(corpus):
    v = Vocab(corpus.characters())
    texts = ["samedi 28 novembre 2026", "2026年11月28日", "28 😀 ж"]
    ids, lengths = v.encode(texts)
    assert ids.shape == (3, len(texts[0])) and lengths.tolist() == [len(t) for t in texts]
    assert v.decode(ids[0]) == texts[0] and v.decode(ids[1]) == texts[1]
    assert v.decode(ids[2]) == "28 ? ?" and (ids[2] == Vocab.UNK).sum() == 2
    assert v.unknown(texts[2]) == ["😀", "ж"]
    assert ids[1, len(texts[1]):].eq(Vocab.PAD).all()
    tgt, n = Vocab("0123456789-").encode(["2026-11-28"], end=True)
    assert tgt[0, -1] == Vocab.END and n.tolist() == [11]
    weird, _ = v.encode(["\x00a\ud800", ""])
    assert weird.shape[0] == 2
    empty, n = v.encode([])
    assert empty.shape[0] == 0 and n.numel() == 0
    assert isinstance(ids, torch.Tensor) and ids.dtype == torch.long
