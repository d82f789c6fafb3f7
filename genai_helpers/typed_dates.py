"""Dates as people type them: rules that take the liberties people take, applied to Babel's forms.

    tokens = corpus.tokens(day, fmt)                      # Babel's form, field by field
    typed, rules = gh.typed_dates.retype(tokens, "fr_FR", random.Random(0))
    "".join(t.text for t in typed), rules                 # 'Le 1er Nov 2026', ['small_words', ...]

Each rule rewrites a date written field by field (a list of `Token`), never a finished string, so it
knows what it touches: a day, a month name, a separator. The rules, in the order they apply:

- small_words: a word people put in front of a date in their language ("le", "am", "el", "il",
  "dia", "on"; in English "the 28th of November"); in Chinese the colloquial 号 for 日.
- ordinal: the day as an ordinal where the language writes one next to a month name ("28th", "1er",
  "1º"; NFKC reads "º" as "o").
- own_abbreviation: a long month name cut to its shortest prefix of at least three letters that no
  other month of the language starts with ("novembre" -> "nov", "juillet" -> "juil"), with or
  without a dot.
- abbreviation_dot: Babel's abbreviations with the dot removed ("nov." -> "nov") or added
  ("Nov" -> "Nov.").
- leading_zero: a one-digit day or month written with a zero, or a zero dropped ("03.04." <-> "3.4.").
- separator: all the separators of a numeric date replaced by another of / - . ("28-11-2026").
- drop_punctuation: a comma or a dot before a space left out ("Sa 28 Nov" for "Sa., 28 Nov").
- extra_punctuation: a comma after the weekday, or a full stop at the end.
- spacing: spaces around the separators of a numeric date ("28 / 11 / 2026", "28. 11. 2026"), the
  space between a day and its month name left out ("28nov"), spaces between the Chinese parts.
- case: UPPER, Title or Capitalised (the model never sees it: `gh.dates.normalise` lowers the case).

No rule puts two numbers next to each other or changes their order, so a typed string still names
exactly one date (tests/test_typed_dates.py checks it on a large sample). What no rule writes (typing
errors, month-first numbers, a two-digit year in front, spelled-out numbers) the model never sees.
"""
from __future__ import annotations

import functools
import random
from typing import NamedTuple

from babel import Locale

# The words people add in front of a date, per language (the first part of the locale name).
PREFIXES = {"en": ("on ",), "fr": ("le ",), "de": ("am ",), "es": ("el ",), "it": ("il ",), "pt": ("dia ",)}
ORDINAL_DAY_ONE = {"fr": "er", "es": "º", "it": "º", "pt": "º"}  # only the first of the month takes one
SEPARATORS = "/-."  # between the numbers of a numeric date
MIN_PREFIX = 3  # a month cut shorter than three letters would not read as a month
RULES_PER_DATE = (1, 3)  # each typed date takes 1 to 3 of the rules (and maybe a change of case)
CASE_SHARE = 0.5  # share of typed dates whose letter case changes too


class Token(NamedTuple):
    """One field of a written date: kind is lit (text between fields), y, M or d (numbers), Mname or
    Ename (month or weekday names); width is the pattern's (3 = abbreviated name, 4 = full)."""

    kind: str
    text: str
    width: int = 0
    value: int = 0  # the number a y, M or d field stands for


def english_ordinal(day: int) -> str:
    """1st, 2nd, 3rd, 4th ... 11th, 12th, 13th ... 21st."""
    if day % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


@functools.lru_cache(maxsize=None)
def month_prefixes(locale: str) -> dict:
    """Full month name -> its shortest prefix (>= MIN_PREFIX letters) that no other month starts with."""
    names = [n.lower() for n in Locale.parse(locale).months["format"]["wide"].values()]
    out = {}
    for name in names:
        for n in range(MIN_PREFIX, len(name) + 1):
            if not any(other != name and other.startswith(name[:n]) for other in names):
                out[name] = name[:n]
                break
    return out


def _numbers_between(tokens, i) -> bool:
    return 0 < i < len(tokens) - 1 and tokens[i - 1].kind in "yMd" and tokens[i + 1].kind in "yMd"


def _day(tokens):
    return next((i for i, t in enumerate(tokens) if t.kind == "d"), None)


# --- the rules: tokens, locale, rng -> new tokens, or None where the rule does not apply -------

def small_words(tokens, locale, rng):
    lang = locale.split("_")[0]
    if lang == "zh":
        if not any(t.kind == "lit" and "日" in t.text for t in tokens):
            return None
        return [t._replace(text=t.text.replace("日", "号")) if t.kind == "lit" else t for t in tokens]
    if lang not in PREFIXES:
        return None
    d = _day(tokens)
    british = (lang == "en" and d == 0 and len(tokens) > 2 and tokens[1].text == " "
               and tokens[2].kind == "Mname")  # the date starts with the day, then the month's name
    if british and rng.random() < 0.5:  # "the 28th of November 2026"
        out = list(tokens)
        out[d] = out[d]._replace(text=out[d].text.lstrip("0") + english_ordinal(out[d].value))
        out[d + 1] = Token("lit", " of ")
        return [Token("lit", "the ")] + out
    return [Token("lit", rng.choice(PREFIXES[lang]))] + list(tokens)


def ordinal(tokens, locale, rng):
    lang = locale.split("_")[0]
    d = _day(tokens)
    if d is None or not any(t.kind == "Mname" for t in tokens) or not tokens[d].text.isdigit():
        return None
    day = tokens[d].value
    suffix = english_ordinal(day) if lang == "en" else ORDINAL_DAY_ONE.get(lang) if day == 1 else None
    if suffix is None:
        return None
    return tokens[:d] + [tokens[d]._replace(text=tokens[d].text.lstrip("0") + suffix)] + tokens[d + 1:]


def own_abbreviation(tokens, locale, rng):
    lang = locale.split("_")[0]
    if lang == "zh":
        return None
    cut = month_prefixes(locale)
    out, changed = [], False
    for t in tokens:
        short = cut.get(t.text.lower()) if t.kind == "Mname" and t.width >= 4 else None
        if short and short != t.text.lower():
            t, changed = t._replace(text=short + ("." if rng.random() < 0.5 else ""), width=3), True
        out.append(t)
    return out if changed else None


def abbreviation_dot(tokens, locale, rng):
    lang = locale.split("_")[0]
    names = [i for i, t in enumerate(tokens) if t.kind in ("Mname", "Ename") and t.width == 3 and lang != "zh"]
    if not names:
        return None
    i = rng.choice(names)
    text = tokens[i].text
    if text.endswith("."):
        text = text[:-1]
    elif i + 1 < len(tokens) and tokens[i + 1].text.startswith("."):
        return None
    else:
        text += "."
    return tokens[:i] + [tokens[i]._replace(text=text)] + tokens[i + 1:]


def leading_zero(tokens, locale, rng):
    spots = [i for i, t in enumerate(tokens) if t.kind in "Md" and t.text.isdigit() and t.value < 10]
    if not spots:
        return None
    i = rng.choice(spots)
    t = tokens[i]
    return tokens[:i] + [t._replace(text=t.text[1:] if t.text.startswith("0") else "0" + t.text)] + tokens[i + 1:]


def separator(tokens, locale, rng):
    seps = [i for i, t in enumerate(tokens) if t.kind == "lit" and t.text in SEPARATORS and _numbers_between(tokens, i)]
    if len(seps) < 2:
        return None
    new = rng.choice([s for s in SEPARATORS if s != tokens[seps[0]].text])
    return [t._replace(text=new) if i in seps else t for i, t in enumerate(tokens)]


def drop_punctuation(tokens, locale, rng):
    spots = [i for i, t in enumerate(tokens) if t.kind == "lit" and (", " in t.text or ". " in t.text)]
    if not spots:
        return None
    i = rng.choice(spots)
    text = tokens[i].text
    mark = ", " if ", " in text else ". "
    return tokens[:i] + [tokens[i]._replace(text=text.replace(mark, " ", 1))] + tokens[i + 1:]


def extra_punctuation(tokens, locale, rng):
    options = []
    w = next((i for i, t in enumerate(tokens) if t.kind == "Ename"), None)
    if w is not None and w + 1 < len(tokens) and tokens[w + 1].text == " ":
        options.append(tokens[:w + 1] + [Token("lit", ", ")] + tokens[w + 2:])  # "samedi, 28 ..."
    if not tokens[-1].text.endswith("."):
        options.append(list(tokens) + [Token("lit", ".")])
    return rng.choice(options) if options else None


def spacing(tokens, locale, rng):
    lang = locale.split("_")[0]
    options = []
    seps = [i for i, t in enumerate(tokens) if t.kind == "lit" and t.text in SEPARATORS and _numbers_between(tokens, i)]
    if seps:
        spaced = {"/": " / ", "-": " - ", ".": ". "}
        options.append([t._replace(text=spaced[t.text]) if i in seps else t for i, t in enumerate(tokens)])
    d = _day(tokens)
    if d is not None and d + 2 < len(tokens) and tokens[d + 1].text == " " and tokens[d + 2].kind == "Mname":
        options.append(tokens[:d + 1] + tokens[d + 2:])  # "28nov"
    if lang == "zh" and any(t.kind == "lit" and t.text[:1] in "年月日号" for t in tokens):
        options.append([t._replace(text=f" {t.text} ") if t.kind == "lit" and t.text[:1] in "年月日号" else t
                        for t in tokens])
    return rng.choice(options) if options else None


def case(tokens, locale, rng):
    how = rng.randrange(3)
    out = [t._replace(text=t.text.upper() if how == 0 else t.text.title()) for t in tokens]
    if how == 2:  # only the first letter
        first = next((i for i, t in enumerate(tokens) if any(c.isalpha() for c in t.text)), None)
        out = list(tokens)
        if first is not None:
            out[first] = out[first]._replace(text=out[first].text[:1].upper() + out[first].text[1:])
    return out


RULES = {"small_words": small_words, "ordinal": ordinal, "own_abbreviation": own_abbreviation,
         "abbreviation_dot": abbreviation_dot, "leading_zero": leading_zero, "separator": separator,
         "drop_punctuation": drop_punctuation, "extra_punctuation": extra_punctuation, "spacing": spacing}


_PROBE = random.Random(0)  # whether a rule applies does not depend on the draws it makes


def retype(tokens: list, locale: str, rng: random.Random) -> tuple[list, list]:
    """Babel's form -> a typed form: 1 to 3 of the RULES that apply to it, drawn uniformly and applied
    in RULES's order, and maybe a change of case. Returns the new tokens and the rules' names."""
    usable = [name for name, rule in RULES.items() if rule(tokens, locale, _PROBE) is not None]
    chosen = set(rng.sample(usable, min(len(usable), rng.randint(*RULES_PER_DATE))))
    applied = []
    for name in RULES:
        if name in chosen:
            new = RULES[name](tokens, locale, rng)
            if new is not None:  # an earlier rule can take away what this one needed
                tokens, applied = new, applied + [name]
    if rng.random() < CASE_SHARE:
        tokens, applied = case(tokens, locale, rng), applied + ["case"]
    return tokens, applied


def characters() -> str:
    """The characters the rules can add (before normalisation)."""
    words = "".join(PREFIXES[k][0] for k in PREFIXES) + "".join(ORDINAL_DAY_ONE.values())
    return "".join(sorted(set(words + "the of stndrh" + SEPARATORS + ",. 号")))
