"""The language of the course's messages, and `_()`, which translates one.

English is the source and the default. The Chinese notebooks call `gh.setup(lang="zh")`; anywhere
else (a terminal, a script, your own notebook) `GENAI_LANG=zh` does the same. A message is written
in English in the code, wrapped in `_()`:

    from .i18n import _
    raise DataError(_("{path} is truncated: delete it and run again").format(path=path))

`python -m genai_helpers translations` extracts every `_("...")` into the package catalog,
`genai_helpers/locale/<lang>/LC_MESSAGES/genai_helpers.po` (a gettext catalog read with Babel, so
it ships with the package), where translators fill in the `msgstr`. A message without a
translation, or whose translation is marked fuzzy (its English changed since), comes out in
English: a student never sees a stale or empty text. Format the result (`.format(...)`), not the
argument, so that the English text is what the catalog is looked up by. A message that sits in a
constant is marked with `N_("...")` and translated where it is shown, `_(CONSTANT)`. Notebook code
can use `gh._("...")` too: the command extracts those from the English notebooks' code cells into
the same catalog, so that the code stays the same in every edition.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

ENGLISH = "en"
LANGUAGES = ("en", "zh")  # English (the source) and the editions with catalogs
ENV = "GENAI_LANG"
LOCALE = Path(__file__).resolve().parent / "locale"
DOMAIN = "genai_helpers"

_chosen: str | None = None  # set by `set_language` (gh.setup(lang=...)); None: GENAI_LANG decides


def _(message: str, lang: str | None = None) -> str:
    """`message` in `lang` (default: the current language), or the English when there is no
    usable translation (none yet, or fuzzy: out of date)."""
    lang = lang or language()
    if lang == ENGLISH:
        return message
    return translation(_catalog(lang).get(message)) or message


def translation(entry: Message | None) -> str | None:
    """The usable translation of a catalog entry: None when it is missing or out of date (fuzzy:
    its English changed since), so that the English is shown instead of a stale or empty text."""
    if entry is None or entry.fuzzy or not entry.string:
        return None
    return entry.string


def _parse(code: str) -> str | None:
    """'zh', 'zh_CN', 'zh-Hans', 'zh_CN.UTF-8' -> 'zh'; None for a language the course lacks."""
    lang = code.strip().replace("-", "_").split(".")[0].split("_")[0].lower()
    return lang if lang in LANGUAGES else None


def N_(message: str) -> str:
    """Mark a message kept in a constant (a table of hints, say) for the catalog without
    translating it now: the code calls `_(constant)` where it shows it, in the language of then."""
    return message


def normalize(code: str) -> str:
    """`_parse`, with a message that says what to do for a language the course lacks."""
    lang = _parse(str(code))
    if lang is None:
        raise ValueError(_("unknown language {code!r}: the course speaks {choices}; "
                           "use one of them, or leave it out for English").format(
            code=code, choices=", ".join(LANGUAGES)))
    return lang


def language() -> str:
    """The language of messages now: `gh.setup(lang=...)`'s, else GENAI_LANG's, else English.

    An unknown GENAI_LANG (a shell's `fr_FR`, say) means English rather than an error, so that
    importing the course never fails because of the environment."""
    if _chosen is not None:
        return _chosen
    return _parse(os.environ.get(ENV) or ENGLISH) or ENGLISH


def set_language(lang: str | None) -> str:
    """Choose the language of messages for this process (None: back to GENAI_LANG / English)."""
    global _chosen
    _chosen = None if lang is None else normalize(lang)
    return language()


def catalog_path(lang: str, locale: Path | None = None) -> Path:
    """Where the package catalog of `lang` lives (by default in the package, so that it ships)."""
    return (locale or LOCALE) / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def _catalog(lang: str) -> Catalog:
    """The package catalog of `lang`, read once (an empty one when there is none)."""
    path = catalog_path(lang)
    if not path.exists():
        return Catalog(locale=lang)
    with path.open("rb") as f:
        return read_po(f, locale=lang)
