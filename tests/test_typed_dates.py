"""Dates as people type them: each rule does what its line in gh.typed_dates says, a typed string
still names one date, and the typed test pairs come from the test dates only."""
import datetime as dt
import random
from collections import Counter, defaultdict

import numpy as np
import pytest

from genai_helpers import typed_dates as T
from genai_helpers.dates import FIRST, DateCorpus, date_data, normalise


@pytest.fixture(scope="module")
def corpus():
    return DateCorpus()


def tokens(corpus, date, locale, pattern):
    fmt = next(f for f in corpus.formats if f.locale == locale and f.pattern == pattern)
    return corpus.tokens((date - FIRST).days, fmt)


def outputs(rule, toks, locale, seeds=20) -> set:
    """Everything a rule writes for these tokens over a few seeds (normalised), None if it never applies."""
    out = set()
    for seed in range(seeds):
        new = T.RULES[rule](toks, locale, random.Random(seed))
        out.add(None if new is None else normalise("".join(t.text for t in new)))
    return out


def test_english_ordinals():
    assert [f"{d}{T.english_ordinal(d)}" for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_month_prefixes_are_unique_and_at_least_three_letters():
    fr = T.month_prefixes("fr_FR")
    assert fr["novembre"] == "nov" and fr["juillet"] == "juil" and fr["juin"] == "juin" and fr["mars"] == "mar"
    for loc in ("en_US", "de_DE", "es_ES", "it_IT", "pt_BR"):
        cut = T.month_prefixes(loc)
        assert len(set(cut.values())) == 12 and all(len(p) >= T.MIN_PREFIX for p in cut.values()), loc
        for name, prefix in cut.items():
            assert [n for n in cut if n.startswith(prefix)] == [name], (loc, prefix)


def test_each_rule_writes_what_people_type(corpus):
    nov1 = dt.date(2026, 11, 1)
    assert "the 1st of november 2026" in outputs("small_words", tokens(corpus, nov1, "en_GB", "d MMMM y"), "en_GB")
    assert outputs("small_words", tokens(corpus, nov1, "fr_FR", "d MMMM y"), "fr_FR") == {"le 1 novembre 2026"}
    assert outputs("small_words", tokens(corpus, nov1, "zh_CN", "y年M月d日"), "zh_CN") == {"2026年11月1号"}
    assert outputs("ordinal", tokens(corpus, nov1, "fr_FR", "d MMMM y"), "fr_FR") == {"1er novembre 2026"}
    assert outputs("ordinal", tokens(corpus, nov1, "pt_BR", "d 'de' MMMM 'de' y"), "pt_BR") == {
        "1o de novembro de 2026"}  # "1º": NFKC reads the ordinal indicator as "o"
    assert outputs("ordinal", tokens(corpus, dt.date(2026, 11, 2), "fr_FR", "d MMMM y"), "fr_FR") == {None}
    assert outputs("ordinal", tokens(corpus, nov1, "de_DE", "dd.MM.y"), "de_DE") == {None}  # no month name
    assert outputs("own_abbreviation", tokens(corpus, nov1, "fr_FR", "d MMMM y"), "fr_FR") == {
        "1 nov 2026", "1 nov. 2026"}
    assert outputs("abbreviation_dot", tokens(corpus, nov1, "fr_FR", "d MMM y"), "fr_FR") == {"1 nov 2026"}
    assert outputs("abbreviation_dot", tokens(corpus, nov1, "en_US", "MMM d, y"), "en_US") == {"nov. 1, 2026"}
    assert outputs("leading_zero", tokens(corpus, nov1, "de_DE", "dd.MM.y"), "de_DE") == {"1.11.2026"}
    assert outputs("separator", tokens(corpus, nov1, "de_DE", "dd.MM.y"), "de_DE") == {"01/11/2026", "01-11-2026"}
    assert outputs("separator", tokens(corpus, nov1, "fr_FR", "d MMMM y"), "fr_FR") == {None}
    assert outputs("drop_punctuation", tokens(corpus, nov1, "en_US", "MMMM d, y"), "en_US") == {"november 1 2026"}
    assert outputs("extra_punctuation", tokens(corpus, nov1, "fr_FR", "EEEE d MMMM y"), "fr_FR") == {
        "dimanche, 1 novembre 2026", "dimanche 1 novembre 2026."}
    assert outputs("spacing", tokens(corpus, nov1, "fr_FR", "d MMMM y"), "fr_FR") == {"1novembre 2026"}
    assert outputs("spacing", tokens(corpus, nov1, "de_DE", "dd.MM.y"), "de_DE") == {"01. 11. 2026"}


def test_retyping_applies_rules_and_case(corpus):
    toks = tokens(corpus, dt.date(2026, 11, 28), "en_US", "EEEE, MMMM d, y")
    seen = Counter()
    for seed in range(300):
        new, applied = T.retype(toks, "en_US", random.Random(seed))
        assert applied and all(a in T.RULES or a == "case" for a in applied)
        assert T.RULES_PER_DATE[0] <= len([a for a in applied if a != "case"]) <= T.RULES_PER_DATE[1]
        seen.update(applied)
    assert set(seen) == {"small_words", "ordinal", "own_abbreviation", "drop_punctuation", "extra_punctuation",
                         "case"}, seen  # day 28: no leading zero to add or drop
    assert seen["case"] / 300 == pytest.approx(T.CASE_SHARE, abs=0.1)


def test_every_typed_string_still_names_one_date(corpus):
    years = np.array([int(iso[:4]) for iso in corpus.iso])
    days = np.flatnonzero(np.isin(years % 100, (26, 68, 69)))  # years that end alike in every century
    pairs = corpus.sample(60_000, days, seed=5, typed=1.0)
    meaning = defaultdict(set)
    for s, t in zip(pairs.src, pairs.tgt):
        meaning[s].add(t)
    clashes = {s: d for s, d in meaning.items() if len(d) > 1}
    assert not clashes, list(clashes.items())[:5]
    assert all(pairs.rules) and set(r for rules in pairs.rules for r in rules) == set(T.RULES) | {"case"}
    assert set("".join(pairs.src)) <= set(corpus.characters())


def test_typed_sets_are_split_by_date():
    data = date_data(2000, n_test=1000, typed=0.5)
    split = data.corpus.split()
    assert set(data.pairs["test_typed"].day.tolist()) <= set(split["test"].tolist())
    assert set(data.pairs["valid_typed"].day.tolist()) <= set(split["valid"].tolist())
    assert not set(data.pairs["test_typed"].tgt) & set(data.pairs["train"].tgt)
    share = np.mean([bool(r) for r in data.pairs["train"].rules])
    assert share == pytest.approx(0.5, abs=0.05) and all(data.pairs["test_typed"].rules)
    assert not any(data.pairs["test"].rules)
    assert date_data(500, n_test=1000).tensors.keys() == {"train", "valid", "test"}
