"""Chapter 04's date translator as a service: `translate` reads a date written in any of the
model's languages and never raises on a string; `attention_heatmap` draws what it looked at.

    model, _ = gh.seq2seq.reference_translator()
    t = gh.translator.translate(model, "28 nov. 2026")   # t.iso, t.attention, t.message, ...
    gh.translator.attention_heatmap(t)
(the widget around it is `gh.widgets.date_translator`)
"""
from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from babel import Locale
from matplotlib import font_manager as fm
from matplotlib.ft2font import FT2Font

from .confidence import UNSURE
from .dates import Vocab, normalise
from .i18n import _, language
from .plot import cjk_font
from .runtime import evaluating
from .seq2seq import Seq2Seq, beam_search, greedy

EXAMPLES = ("samedi 28 novembre 2026", "Nov 28, 2026", "2026年11月28日星期六", "Mittwoch, 3. März 1999",
            "sáb, 4/7/87", "3 de setembro de 2041", "lunedì 1 gennaio 2001", "28.11.26", "le 1er nov. 1712",
            "the 3rd of March 2250", "2026-11-28", "",
            "28 ноября 2026", "🎂 🎉", "11/28/2026")

# Pinyin for the Chinese characters of the corpus, shown where no CJK font is installed.
PINYIN = {"年": "nián", "月": "yuè", "日": "rì", "星": "xīng", "期": "qī", "周": "zhōu", "一": "yī",
          "二": "èr", "三": "sān", "四": "sì", "五": "wǔ", "六": "liù", "七": "qī", "号": "hào"}


@dataclass
class Translation:
    """What `translate` found: the ISO date (or None) and why not, with the attention matrix."""

    text: object  # the input as given
    iso: str | None = None  # a valid ISO date, or None
    attention: np.ndarray | None = None  # (output tokens incl. </s>, input characters)
    message: str = ""  # empty when all is well; otherwise what is wrong and what to do
    source: str = ""  # the normalised input the model read
    output: str = ""  # what the decoder wrote, valid or not
    probability: float = 0.0  # the model's probability of that output

    def __iter__(self):  # iso, attention = translate(model, text)
        return iter((self.iso, self.attention))

    def __str__(self):
        head = f"{self.text!r:.60} -> {self.iso or _('no date')}"
        return head + (f"  ({self.message})" if self.message else "")


EXAMPLE = "28 novembre 2026"


def _language_names(model) -> str:
    """The languages the model was trained on, named in the language of the course's messages."""
    locales = getattr(model, "locales", None) or []
    names = list(dict.fromkeys(Locale.parse(x).get_language_name(language()) for x in locales))
    if len(names) > 1:
        return _("{names} or {last}").format(names=_(", ").join(names[:-1]), last=names[-1])
    return "".join(names)


@torch.no_grad()
def translate(model: Seq2Seq, text, beam: int = 1) -> Translation:
    """Read a date written in any of the model's languages; return a Translation (iso, attention, ...).

    Never raises on a string: empty, too long, unknown characters (emoji, another alphabet), a
    language the model does not know, or an answer that is not a real date all come back as
    `message`, with `iso` None when there is no valid date. A valid date whose probability is below
    `gh.confidence.UNSURE` keeps its `iso` and comes with a warning: check it.
    """
    if not isinstance(model, Seq2Seq):
        raise TypeError(_("translate(model, text) needs a trained gh.seq2seq.Seq2Seq, e.g. "
                          "model, _ = gh.seq2seq.reference_translator()"))
    if not isinstance(text, str):
        return Translation(text, message=_("give the date as a string, e.g. {example!r} (got {type})").format(
            example=EXAMPLE, type=type(text).__name__))
    src = normalise(text)
    if not src:
        return Translation(text, message=_("type a date, e.g. {example!r}, 'Nov 28, 2026' or '2026年11月28日'").format(
            example=EXAMPLE))
    limit = model.max_src_len or 40
    if len(src) > limit:
        return Translation(text, source=src[:limit], message=_(
            "{n} characters is longer than anything the model was trained on (at most {limit}): type one "
            "date").format(n=len(src), limit=limit))
    unknown = model.src_vocab.unknown(src)
    notes = []
    visible = [c for c in src if not c.isspace()]
    n_unknown = sum(c in unknown for c in visible)
    if unknown:
        shown = " ".join(repr(c) for c in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        notes.append(_("not in the model's alphabet, read as <unk>: {chars}").format(chars=shown))
    if n_unknown * 2 >= len(visible):
        langs = _language_names(model)
        return Translation(text, source=src, message=_("; ").join(notes + [
            _("this does not look like a date in {languages}").format(languages=langs) if langs
            else _("this does not look like a date")]))
    dev = next(model.parameters()).device
    ids, lengths = model.src_vocab.encode([src])
    ids, lengths = ids.to(dev), lengths.to(dev)
    with evaluating(model):
        if beam > 1:
            toks, scores, attn = beam_search(model, ids, lengths, k=beam)
            toks, score = toks[:, 0], scores[:, 0]
        else:
            toks, score, attn = greedy(model, ids, lengths)
    out = model.tgt_vocab.decode(toks[0])
    n_out = int((toks[0] != Vocab.PAD).sum())
    att = attn[0, :n_out].float().cpu().numpy() if attn is not None else None
    prob = math.exp(float(score[0]))
    iso = None
    try:
        if len(out) == 10:
            iso = dt.date.fromisoformat(out).isoformat()
    except ValueError:
        pass
    if iso is None:
        notes.append(_("the model wrote {output!r}, which is not a date: is this one date in {languages}?").format(
            output=out, languages=_language_names(model) or _("a language the model knows")))
    elif prob < UNSURE:
        notes.append(_("the model is unsure: probability {probability:.2f} for this answer, check it").format(
            probability=prob))
    return Translation(text, iso, att, _("; ").join(notes), src, out, prob)


# --- drawing a translation --------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _drawable() -> frozenset:
    """Code points that matplotlib's default font (and a CJK font, if any) can draw."""
    points = set()
    for family in ("DejaVu Sans", cjk_font()):
        if family:
            points.update(FT2Font(fm.findfont(fm.FontProperties(family=family))).get_charmap())
    return frozenset(points)


def char_label(c: str, space: str = "␣") -> str:
    """A label for one character: pinyin for Chinese without a CJK font, U+XXXX for what the
    fonts cannot draw (emoji), '␣' for a space."""
    if c == " ":
        return space
    if c == "$":
        return r"\$"  # not the start of a formula
    if ord(c) in _drawable():
        return c
    return PINYIN.get(c, f"U+{ord(c):04X}")


def printable(text: str) -> str:
    """`text` with every character the fonts cannot draw replaced by its label."""
    return "".join(c if c == " " or (c != "$" and ord(c) in _drawable()) else
                   char_label(c) if c == "$" else f" {char_label(c)} " for c in text)


def attention_heatmap(t: Translation, ax=None, title: str | None = None, fontsize: int = 9):
    """Rows: the characters the decoder wrote (and </s>); columns: the input characters."""
    if t.attention is None:
        raise ValueError(_("this translation has no attention matrix: the model reads one fixed vector "
                           "(attention=False), or the input was refused: {why}").format(why=t.message or ""))
    att = t.attention
    rows = list(t.output)[:att.shape[0]]
    rows += ["</s>"] * (att.shape[0] - len(rows))
    cols = [char_label(c) for c in t.source[:att.shape[1]]]
    if ax is None:
        __, ax = plt.subplots(figsize=(0.24 * len(cols) + 1.2, 0.24 * len(rows) + 0.9), dpi=90)
    ax.imshow(att, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    family = ["DejaVu Sans", cjk_font()] if cjk_font() else None
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, fontsize=fontsize, family=family,
                       rotation=90 if any(len(c) > 1 for c in cols) else 0)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=fontsize)
    ax.tick_params(length=0)
    ax.set_title(printable(title if title is not None else f"{t.source} → {t.output}"),
                 fontsize=fontsize + 1, family=family)
    return ax
