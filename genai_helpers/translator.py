"""Chapter 04's date translator: attention heatmaps and the widget (type a date, see ISO + attention).

    demo = gh.translator.date_translator(model)   # a gh.widgets.Demo; demo.update("3/4/26")
    gh.translator.attention_heatmap(gh.seq2seq.translate(model, "28 nov. 2026"))
"""
from __future__ import annotations

import functools
import html

import ipywidgets as W
import matplotlib.pyplot as plt

from .seq2seq import Translation, translate
from .widgets import Demo, Stopwatch, figure_png

EXAMPLES = ("samedi 28 novembre 2026", "Nov 28, 2026", "2026年11月28日星期六", "Mittwoch, 3. März 1999",
            "sáb, 4/7/87", "3 de setembro de 2041", "lunedì 1 gennaio 2001", "28.11.26", "",
            "28 ноября 2026", "🎂 🎉", "11/28/2026")

# Pinyin for the Chinese characters of the corpus, shown where no CJK font is installed.
PINYIN = {"年": "nián", "月": "yuè", "日": "rì", "星": "xīng", "期": "qī", "周": "zhōu", "一": "yī",
          "二": "èr", "三": "sān", "四": "sì", "五": "wǔ", "六": "liù", "七": "qī"}


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of a font with Chinese characters (the one the mplfonts package ships, or one
    installed on the system), or None."""
    from importlib.util import find_spec
    from pathlib import Path

    from matplotlib import font_manager as fm

    spec = find_spec("mplfonts")
    if spec and spec.origin:  # its font is registered for this process only, nothing is installed
        path = Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
        if path.exists():
            fm.fontManager.addfont(str(path))

    for name in ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
                 "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC",
                 "Heiti SC", "Arial Unicode MS", "AR PL UMing CN"):
        try:
            fm.findfont(fm.FontProperties(family=name), fallback_to_default=False)
            return name
        except ValueError:
            continue
    return None


@functools.lru_cache(maxsize=1)
def _drawable() -> frozenset:
    """Code points that matplotlib's default font (and a CJK font, if any) can draw."""
    from matplotlib import font_manager as fm
    from matplotlib.ft2font import FT2Font

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
        raise ValueError("this translation has no attention matrix: the model reads one fixed vector "
                         "(attention=False), or the input was refused: " + (t.message or ""))
    att = t.attention
    rows = list(t.output)[:att.shape[0]]
    rows += ["</s>"] * (att.shape[0] - len(rows))
    cols = [char_label(c) for c in t.source[:att.shape[1]]]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.24 * len(cols) + 1.2, 0.24 * len(rows) + 0.9), dpi=90)
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


def heatmap_png(t: Translation) -> bytes:
    fig, ax = plt.subplots(figsize=(0.24 * len(t.source) + 1.2, 0.24 * t.attention.shape[0] + 0.9), dpi=80)
    attention_heatmap(t, ax=ax)
    return figure_png(fig)


def _result_html(t: Translation) -> str:
    if t.iso:
        head = (f"<span style='font-size:1.6em;font-family:monospace'>{t.iso}</span>"
                f" &nbsp; probability {t.probability:.3f}")
    else:
        head = "<span style='font-size:1.3em'>no date</span>"
    box = (f"<div style='background:#fff3cd;border-left:4px solid #e0a800;padding:4px 8px;margin-top:4px'>"
           f"⚠️ {html.escape(t.message)}</div>" if t.message else "")
    return f"<div>{head}{box}</div>"


def date_translator(model, examples=EXAMPLES, beam: int = 1) -> Demo:
    """Type a date in any of the model's languages: its ISO form, the model's probability and the
    attention heatmap follow. Bad input (empty, too long, emoji, another alphabet) is a message.

    The returned Demo has `update(text)` (returns the Translation; what a keystroke does),
    `text`, `result`, `image`, and `last` (the latest Translation).
    """
    text = W.Text(value=examples[0] if examples else "", placeholder="type a date, e.g. 28 nov. 2026",
                  description="date:", continuous_update=True, layout=W.Layout(width="420px"))
    menu = W.Dropdown(options=[("examples ...", None)] + [(repr(e) if not e.strip() else e, e) for e in examples],
                      layout=W.Layout(width="260px"))
    result = W.HTML()
    image = W.Image(format="png")
    watch = Stopwatch()
    demo = Demo([W.HBox([text, menu]), result, image], snapshot=lambda: _snapshot(demo), stopwatch=watch)

    @watch
    def update(value=None) -> Translation:
        try:
            t = translate(model, text.value if value is None else value, beam=beam)
            png = heatmap_png(t) if t.attention is not None else None
        except Exception as e:  # noqa: BLE001 (never a traceback in the widget)
            t = Translation(text.value if value is None else value,
                            message=f"internal error ({type(e).__name__}: {e}); please report it "
                                    "with the text you typed")
            png = None
        result.value = _result_html(t)
        image.layout.display = None if png else "none"
        if png:
            image.value = png
        demo.last = t
        return t

    def picked(change):
        if change["new"] is not None:
            text.value = change["new"]
            update()  # also when the text was already this example

    text.observe(lambda change: update(), "value")
    menu.observe(picked, "value")
    demo.update, demo.text, demo.result, demo.image, demo.menu = update, text, result, image, menu
    update()
    return demo


def _snapshot(demo) -> bytes:
    t = demo.last
    if t.attention is None:
        fig, ax = plt.subplots(figsize=(6, 0.8), dpi=80)
        ax.text(0, 0.5, printable(f"{t.text!r:.50} → {t.iso or 'no date'}   {t.message[:80]}"),
                fontsize=9, va="center")
        ax.set_axis_off()
        return figure_png(fig)
    fig, ax = plt.subplots(figsize=(0.24 * len(t.source) + 1.2, 0.24 * t.attention.shape[0] + 0.9), dpi=80)
    attention_heatmap(t, ax=ax, title=f"{t.source} → {t.iso or t.output}   (p = {t.probability:.3f})")
    return figure_png(fig)
