"""The date corpus of chapter 04: dates written by people, in several languages, and their ISO form.

    corpus = gh.dates.DateCorpus()                 # 8 locales, Babel's (CLDR) names and patterns
    split = corpus.split()                         # day numbers for train / valid / test, by date
    pairs = corpus.sample(10_000, split["train"], seed=0)
    pairs.src[0], pairs.tgt[0]                     # 'samedi 28 novembre 2026', '2026-11-28'
    typed = corpus.sample(1_000, split["test"], seed=1, typed=1.0)   # as people type them

Every string is written from a locale's own date patterns (short, medium, long, full and a few
skeletons) with its real month and weekday names, or from the numeric forms people type in every
locale (NUMERIC_PATTERNS: ISO yyyy-mm-dd, yyyy/m/d, d.m.yyyy, with and without leading zeros), then
normalised (NFKC, lower case, single spaces) so that a typed "28 Nov 2026" and Babel's "28 nov. 2026"
use the same characters. `typed` > 0 passes that share of the dates through the rules of
`gh.typed_dates` (ordinals, abbreviations, small words, punctuation and spacing).

One string, one date: month-first numeric patterns (en_US "M/d/yy") are left out, because
"3/4/26" is 4 March in New York and 3 April everywhere else in the corpus. Four-digit years span
1600-2399 (the Gregorian calendar, also before a country adopted it); a pattern with a two-digit
year writes only the dates of the 100-year window 1969-2068, read with the rule of Python's
strptime (69-99 -> 19xx, 00-68 -> 20xx), because outside one window "26" names several years.
"""
from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import torch
from babel import Locale
from babel import dates as babel_dates

from . import typed_dates
from .i18n import _
from .session import device as default_device
from .typed_dates import Token

LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "it_IT", "pt_BR", "zh_CN")
STYLES = ("short", "medium", "long", "full")  # the locale's four standard date formats
SKELETONS = ("yMd", "yMMMd", "yMMMEd", "yMEd")  # and four more, each in the locale's own order
# The numeric forms people type whatever their language: ISO first, then year-first with slashes and
# day-first with dots, each with and without leading zeros.
NUMERIC_PATTERNS = ("y-MM-dd", "y-M-d", "y/MM/dd", "y/M/d", "dd.MM.y", "d.M.y")
NUMERIC_SHARE = 0.25  # share of the dates written in one of NUMERIC_PATTERNS (the rest: the locale's own)
FIRST, LAST = dt.date(1600, 1, 1), dt.date(2399, 12, 31)  # four-digit years
WINDOW = (dt.date(1969, 1, 1), dt.date(2068, 12, 31))  # the only dates written with a two-digit year
ISO_CHARS = "0123456789-"  # the target alphabet
LIST_SEP = "; "  # between the dates of one input, in the longer-input variant


def normalise(text: str) -> str:
    """NFKC (full-width digits, non-breaking spaces), lower case, one space between words."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


@dataclass(frozen=True)
class Format:
    """One way to write a date in one locale: a Babel pattern compiled to a list of parts."""

    locale: str
    pattern: str
    kind: str  # numeric | abbreviated | long | weekday
    parts: tuple  # constant strings and field codes such as ("d", 2)
    origin: str = "cldr"  # cldr: the locale's own pattern; typed: one of NUMERIC_PATTERNS

    def __str__(self):
        return f"{self.locale} {self.pattern!r}"

    @property
    def two_digit_year(self) -> bool:
        return ("y", 2) in self.parts


def _compile(locale: str, pattern: str, origin: str = "cldr") -> Format:
    parts = []
    for kind, value in babel_dates.tokenize_pattern(pattern):
        if kind == "chars" or value[0] in "yMLdEc":
            parts.append(value)
        else:
            raise ValueError(_("{locale} pattern {pattern!r}: field {field} is not a date field").format(
                locale=locale, pattern=pattern, field=value))
    fields = {p[0]: p[1] for p in parts if isinstance(p, tuple)}
    m = fields.get("M", fields.get("L", 0))
    kind = ("weekday" if "E" in fields or "c" in fields else
            "long" if m >= 4 else "abbreviated" if m == 3 else "numeric")
    return Format(locale, pattern, kind, tuple(parts), origin)


def _month_first(fmt: Format) -> bool:
    """A numeric month is the first number ("M/d/y"): the reading that clashes with "d/M/y"."""
    numbers = [p for p in fmt.parts if isinstance(p, tuple) and p[0] in "yMLd"]
    return numbers[0][0] in "ML" and numbers[0][1] <= 2


def locale_formats(locale: str) -> tuple[list[Format], list[Format]]:
    """The formats used for one locale (its own, then the NUMERIC_PATTERNS it does not have), and
    those left out (month-first numeric ones)."""
    loc = Locale.parse(locale)
    patterns = [(loc.date_formats[s].pattern, "cldr") for s in STYLES]
    patterns += [(loc.datetime_skeletons[s].pattern, "cldr") for s in SKELETONS if s in loc.datetime_skeletons]
    patterns += [(p, "typed") for p in NUMERIC_PATTERNS]
    used, dropped, seen = [], [], set()
    for p, origin in patterns:
        if p in seen:
            continue
        seen.add(p)
        f = _compile(locale, p, origin)
        (dropped if _month_first(f) else used).append(f)
    return used, dropped


@dataclass
class Pairs:
    """Sampled (source, target) pairs with where each came from."""

    src: list
    tgt: list
    day: np.ndarray  # day number (0 = FIRST); for lists of dates, the first one's
    fmt: np.ndarray  # index into DateCorpus.formats (of the first date, for lists)
    count: np.ndarray | None = None  # dates per example, for lists of dates
    rules: list | None = None  # per example, the typing rules applied (empty: Babel's form)

    def __len__(self):
        return len(self.src)


@dataclass
class DateCorpus:
    """All dates from `first` to `last`, in every format of every locale (formats with a two-digit
    year: only the dates of `window`)."""

    locales: tuple = LOCALES
    first: dt.date = FIRST
    last: dt.date = LAST
    window: tuple = WINDOW
    formats: list = field(init=False)
    dropped: list = field(init=False)

    def __post_init__(self):
        self.locales = tuple(self.locales)
        if not self.locales:
            raise ValueError(_("give at least one locale, e.g. DateCorpus(('en_US', 'fr_FR'))"))
        lo, hi = self.window
        if hi.year - lo.year >= 100:
            raise ValueError(_("two-digit years are only unambiguous within 100 years: the window {first} to {last} "
                               "is too long").format(first=lo, last=hi))
        if not self.first <= lo <= hi <= self.last:
            raise ValueError(_("the two-digit-year window {first} to {last} must lie within {start} to {end}").format(
                first=lo, last=hi, start=self.first, end=self.last))
        self.formats, self.dropped = [], []
        for loc in self.locales:
            used, dropped = locale_formats(loc)
            self.formats += used
            self.dropped += dropped
        self.n_days = (self.last - self.first).days + 1
        days = [self.first + dt.timedelta(i) for i in range(self.n_days)]
        self.iso = [d.isoformat() for d in days]
        self.window_days = np.arange((lo - self.first).days, (hi - self.first).days + 1)
        # Per-day field strings shared by all locales, and per-locale names.
        self._num = {"y": [str(d.year) for d in days], "yy": [f"{d.year % 100:02d}" for d in days],
                     "M": [str(d.month) for d in days], "M0": [f"{d.month:02d}" for d in days],
                     "d": [str(d.day) for d in days], "d0": [f"{d.day:02d}" for d in days]}
        # plain lists: indexing them one day at a time is many times faster than numpy's
        self._month, self._day = [d.month for d in days], [d.day for d in days]
        self._year, self._weekday = [d.year for d in days], [d.weekday() for d in days]  # 0 = Monday, as Babel
        self._names = {loc: self._locale_names(loc) for loc in self.locales}

    @staticmethod
    def _locale_names(locale: str) -> dict:
        loc = Locale.parse(locale)
        names = {}
        for ctx, letter in (("format", "M"), ("stand-alone", "L")):
            names[(letter, 3)] = [""] + [loc.months[ctx]["abbreviated"][m] for m in range(1, 13)]
            names[(letter, 4)] = [""] + [loc.months[ctx]["wide"][m] for m in range(1, 13)]
        for ctx, letter in (("format", "E"), ("stand-alone", "c")):
            abbr = [loc.days[ctx]["abbreviated"][w] for w in range(7)]
            for n in (1, 2, 3):
                names[(letter, n)] = abbr
            names[(letter, 4)] = [loc.days[ctx]["wide"][w] for w in range(7)]
        return names

    def _format(self, fmt) -> Format:
        return self.formats[fmt] if isinstance(fmt, (int, np.integer)) else fmt

    def tokens(self, day: int, fmt: int | Format) -> list:
        """Date number `day` in format `fmt`, field by field (`gh.typed_dates.Token`), not normalised."""
        f = self._format(fmt)
        names, num = self._names[f.locale], self._num
        out = []
        for p in f.parts:
            if isinstance(p, str):
                out.append(Token("lit", p))
            elif p[0] in "ML" and p[1] >= 3:
                out.append(Token("Mname", names[p][self._month[day]], min(p[1], 4)))
            elif p[0] in "Ec":
                out.append(Token("Ename", names[p][self._weekday[day]], min(max(p[1], 3), 4)))
            elif p[0] == "y":
                out.append(Token("y", num["yy" if p[1] == 2 else "y"][day], p[1], self._year[day]))
            elif p[0] == "d":  # one digit or two
                out.append(Token("d", num["d" if p[1] == 1 else "d0"][day], p[1], self._day[day]))
            else:  # M or L, in digits
                out.append(Token("M", num["M" if p[1] == 1 else "M0"][day], p[1], self._month[day]))
        return out

    def write(self, day: int, fmt: int | Format, normalised: bool = True) -> str:
        """Date number `day` written in format `fmt` (an index into self.formats, or a Format)."""
        text = "".join(t.text for t in self.tokens(day, fmt))
        return normalise(text) if normalised else text

    def _pick_formats(self, rng, n: int, two_digit: bool = True) -> np.ndarray:
        """n format indices: a locale uniformly, then its own formats or (NUMERIC_SHARE) the typed
        numeric ones, uniformly within the group; two_digit=False leaves out two-digit years."""
        def group(loc, origin):
            ok = [i for i, f in enumerate(self.formats) if f.locale == loc and (two_digit or not f.two_digit_year)]
            return [i for i in ok if self.formats[i].origin == origin] or ok

        groups = [[group(loc, "cldr"), group(loc, "typed")] for loc in self.locales]
        loc = rng.integers(0, len(self.locales), n)
        numeric = (rng.random(n) < NUMERIC_SHARE).astype(int)
        pick = rng.random(n)
        return np.array([groups[j][g][int(u * len(groups[j][g]))] for j, g, u in zip(loc, numeric, pick)],
                        dtype=np.int64)

    def sample(self, n: int, days, seed: int = 0, typed: float = 0.0) -> Pairs:
        """n pairs: a locale uniformly, one of its formats, then a date drawn from `days` (from those
        inside the window for a two-digit year; none such when no day is in the window). typed: the
        share of pairs retyped by the rules of `gh.typed_dates` (0: Babel's forms; 1: all typed)."""
        rng = np.random.default_rng(seed)
        days = np.asarray(days)
        if not len(days):
            raise ValueError(_("no days to draw dates from: give day numbers, e.g. corpus.split()['test']"))
        short = days[(days >= self.window_days[0]) & (days <= self.window_days[-1])]  # the window's days
        fmt = self._pick_formats(rng, n, two_digit=len(short) > 0)
        two = np.array([f.two_digit_year for f in self.formats], dtype=bool)[fmt]
        day = days[rng.integers(0, len(days), n)]
        if len(short):
            day = np.where(two, short[rng.integers(0, len(short), n)], day)
        retype = rng.random(n) < typed
        typist = random.Random(seed)  # the typing rules' draws (Python's generator: fast one at a time)
        src, rules = [], []
        for d, f, r in zip(day.tolist(), fmt.tolist(), retype.tolist()):
            tokens, applied = self.tokens(d, f), []
            if r:
                tokens, applied = typed_dates.retype(tokens, self.formats[f].locale, typist)
            src.append(normalise("".join(t.text for t in tokens)))
            rules.append(applied)
        return Pairs(src, [self.iso[d] for d in day.tolist()], day, fmt, rules=rules)

    def sample_lists(self, n: int, days, max_dates: int, seed: int = 0, sep: str = LIST_SEP,
                     typed: float = 0.0) -> Pairs:
        """n lists of 1..max_dates dates (as many of each length), joined by `sep`; the target is
        their ISO forms joined by spaces: the longer-input variant of the task."""
        rng = np.random.default_rng(seed)
        count = rng.integers(1, max_dates + 1, n)
        flat = self.sample(int(count.sum()), days, seed=seed + 1, typed=typed)
        ends = np.cumsum(count)
        starts = ends - count
        src = [sep.join(flat.src[a:b]) for a, b in zip(starts, ends)]
        tgt = [" ".join(flat.tgt[a:b]) for a, b in zip(starts, ends)]
        return Pairs(src, tgt, flat.day[starts], flat.fmt[starts], count)

    def split(self, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> dict:
        """Day numbers for train / valid / test: a date (in every format) belongs to one part only."""
        order = np.random.default_rng(seed).permutation(self.n_days)
        cut = np.cumsum(np.round(np.asarray(fractions) / sum(fractions) * self.n_days).astype(int))
        return {"train": np.sort(order[:cut[0]]), "valid": np.sort(order[cut[0]:cut[1]]),
                "test": np.sort(order[cut[1]:])}

    def characters(self) -> str:
        """Every character the corpus writes: each format on 400 consecutive days (all months and
        weekdays), all digits and what the typing rules add, sorted; the space first."""
        chars = set("0123456789") | set(normalise(typed_dates.characters()))
        for i in range(len(self.formats)):
            for day in range(min(400, self.n_days)):
                chars.update(self.write(day, i))
        chars.discard(" ")
        return " " + "".join(sorted(chars))

    def locale_of(self, fmt) -> np.ndarray:
        """Locale names of format indices."""
        return np.array([self.formats[i].locale for i in np.asarray(fmt).tolist()])

    def kind_of(self, fmt) -> np.ndarray:
        return np.array([self.formats[i].kind for i in np.asarray(fmt).tolist()])


class Vocab:
    """Characters <-> ids, with <pad>=0, <s>=1, </s>=2, <unk>=3."""

    PAD, START, END, UNK = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars):
            raise ValueError(_("the characters of a vocabulary must be distinct"))
        self.chars = chars
        self.itos = list(self.SPECIALS) + list(chars)
        self.stoi = {c: i for i, c in enumerate(self.itos) if i >= len(self.SPECIALS)}
        cps = np.array([ord(c) for c in chars], dtype=np.int64)
        self._order = np.argsort(cps)
        self._cps = cps[self._order]

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"Vocab({len(self)} symbols: 4 specials + {self.chars!r})"

    def unknown(self, text: str) -> list:
        """The characters of `text` that are not in the vocabulary (each once, in order)."""
        return list(dict.fromkeys(c for c in text if c not in self.stoi))

    def encode(self, texts, max_len: int | None = None, end: bool = False):
        """Strings -> (ids (N, T) int64 padded with <pad>, lengths (N,)); unknown chars -> <unk>.

        end=True appends </s> (targets). Texts longer than max_len are cut.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not len(texts):
            return torch.zeros(0, max_len or 1, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        lens = np.array([len(t) for t in texts], dtype=np.int64) + int(end)
        width = int(lens.max()) if max_len is None else max_len
        width = max(width, 1)
        # A fixed-width unicode array is a matrix of code points, zero-padded: fast to map.
        cp = np.array(list(texts), dtype=f"<U{width}").view(np.uint32).reshape(len(texts), -1)
        cp = cp[:, :width].astype(np.int64)
        pos = np.clip(np.searchsorted(self._cps, cp), 0, len(self._cps) - 1)
        ids = np.where(self._cps[pos] == cp, self._order[pos] + len(self.SPECIALS), self.UNK)
        lens = np.minimum(lens, width)
        ids[np.arange(width)[None, :] >= lens[:, None] - int(end)] = self.PAD
        if end:
            rows = np.arange(len(texts))
            ids[rows, lens - 1] = self.END
        return torch.from_numpy(ids), torch.from_numpy(lens)

    def decode(self, ids) -> str:
        """One sequence of ids -> string, stopping at </s>; <unk> shows as '?'."""
        out = []
        for i in (ids.tolist() if torch.is_tensor(ids) else ids):
            if i == self.END:
                break
            if i in (self.PAD, self.START):
                continue
            out.append("?" if i == self.UNK else self.itos[i])
        return "".join(out)

    def labels(self, ids) -> list:
        """Printable labels of ids, specials included (for heatmaps)."""
        return [self.itos[i] if 0 <= i < len(self.itos) else "?" for i in
                (ids.tolist() if torch.is_tensor(ids) else ids)]


# --- encoded data sets: the corpus's pairs as tensors on the device ----------------------------

@dataclass
class DateData:
    """Encoded train / valid / test pairs of a corpus, on the device."""

    corpus: DateCorpus
    src_vocab: Vocab
    tgt_vocab: Vocab
    pairs: dict  # name -> dates.Pairs
    tensors: dict  # name -> (src (N, T), lengths (N,), tgt (N, L))
    typed: float = 0.0  # share of the training pairs retyped by gh.typed_dates

    def __getitem__(self, name):
        return self.tensors[name]

    def recipe(self) -> dict:
        """What the training pairs are made of (for a checkpoint's config: change it, retrain)."""
        c = self.corpus
        return {"locales": list(c.locales), "years": [c.first.isoformat(), c.last.isoformat()],
                "two_digit_years": [d.isoformat() for d in c.window], "numeric": list(NUMERIC_PATTERNS),
                "numeric_share": NUMERIC_SHARE, "typed": self.typed, "rules": list(typed_dates.RULES)}


def date_data(n_train: int, n_test: int = 10_000, seed: int = 0, device=None, max_dates: int = 1,
              corpus: DateCorpus | None = None, typed: float = 0.0, n_typed: int | None = None) -> DateData:
    """Sample pairs from dates split by date (test dates never appear in training) and encode them.

    typed: the share of training pairs retyped by `gh.typed_dates`'s rules; with typed > 0 the data
    also has "valid_typed" and "test_typed" (n_typed pairs each, default n_test), all retyped, from
    the validation and test dates.
    max_dates > 1 gives the longer-input variant: lists of 1..max_dates dates per example.
    """
    corpus = corpus or DateCorpus()
    split = corpus.split(seed=seed)
    lists = max_dates > 1
    # ';' and ' ' are there in both variants, so that a model can move from one to the other
    src_vocab, tgt_vocab = Vocab(corpus.characters() + LIST_SEP.strip()), Vocab(ISO_CHARS + " ")
    n_valid = max(1000, n_test // 5)
    sizes = {"train": (n_train, typed), "valid": (n_valid, 0.0), "test": (n_test, 0.0)}
    if typed > 0:
        sizes.update(valid_typed=(n_typed or n_test, 1.0), test_typed=(n_typed or n_test, 1.0))
    pairs, tensors = {}, {}
    dev = device or default_device()
    for i, (name, (n, share)) in enumerate(sizes.items()):
        days = split[name.split("_")[0]]
        p = (corpus.sample_lists(n, days, max_dates, seed=seed * 100 + i, typed=share) if lists else
             corpus.sample(n, days, seed=seed * 100 + i, typed=share))
        src, lengths = src_vocab.encode(p.src)
        tgt, __ = tgt_vocab.encode(p.tgt, end=True)
        pairs[name] = p
        tensors[name] = (src.to(dev), lengths.to(dev), tgt.to(dev))
    return DateData(corpus, src_vocab, tgt_vocab, pairs, tensors, typed)
