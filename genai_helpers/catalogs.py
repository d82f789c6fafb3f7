"""The translation catalogs, kept in step with the English: gettext `.po` files read and written
by Babel (`babel.messages`), so that any PO editor (Poedit, Lokalize, an IDE plug-in) or a text
editor can fill them.

- A notebook's catalog holds one entry per markdown cell: `msgctxt` is the cell's id, `msgid` its
  English source (the whole cell), `msgstr` the translation.
- The package's catalog holds one entry per `_("...")` or `N_("...")` in the code, extracted as
  `pybabel extract` does (and in the notebooks' code cells, where it is `gh._("...")`).

`update` brings a catalog in step with its English (the template): a new English text gets an
empty entry (missing); a changed one keeps its translation, marked fuzzy, with the English it was
translated from kept as the previous msgid (`#| msgid`: out of date); a removed one becomes
obsolete (`#~`, kept so that its translation can be reused; untranslated ones are dropped).
In a notebook a cell is followed by its id, so a changed cell is always "out of date" and a new
one always "missing" (Babel's fuzzy matching pairs texts by similarity across all entries, which
would hand a new cell the translation of a similar old one). In the package the English text is
the key, and Babel's fuzzy matching does what `pybabel update` does.
"""
from __future__ import annotations

import ast
import difflib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract, extract_from_dir
from babel.messages.pofile import read_po, write_po

from .i18n import translation
from .links import HEADING_LEVEL, LINK

# What a translation keeps exactly as the English has it: fenced code, formulas, inline code.
KEPT = re.compile(r"```.*?```|\$\$.*?\$\$|\$[^$\n]+\$|`[^`\n]+`", re.S)
MARKERS = ("📖", "✅", "🔬", "✏️", "⏭", "⚠", "❌")  # the course's boxes and signs
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\(\w+\)[sdrf]|%[sdrf]")  # what .format / % fills in
KEYWORDS = {"_": None, "N_": None}  # what marks a message in code: _("...") and N_("...") (see i18n)
NO_CHECK = "no-markup-check"  # a translator's flag (`#, no-markup-check`) for a deliberate change
HEADER = """\
{language} translation of {project}; English is the source.
How to translate: fill in the msgstr under each msgid (see locale/{lang}/GLOSSARY.md for the terms).
An entry marked "#, fuzzy" is out of date: its English changed since it was translated, and the
"#|" lines show the English it was translated from. Update the msgstr, then delete the "#, fuzzy"
line and the "#|" lines. Keep code, formulas, link targets and the markers (📖 ✅ 🔬 ✏️ ⏭) as they are.
Then run `python -m genai_helpers translations` (it builds the notebooks and reports what is left)."""


@dataclass
class Status:
    """Where a catalog stands: labels of its translated, missing and out-of-date entries."""
    translated: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    outdated: list = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.translated) + len(self.missing) + len(self.outdated)


def label(message: Message) -> str:
    """How the report names an entry: the cell id and the English's first line."""
    first = message.id.strip().splitlines()[0][:70]
    return f"cell {message.context}: {first}" if message.context else first


def status(catalog: Catalog) -> Status:
    found = Status()
    for message in catalog:
        if message.id:
            kind = found.outdated if message.fuzzy else found.translated if message.string else found.missing
            kind.append(label(message))
    return found


def new_catalog(lang: str, project: str) -> Catalog:
    return Catalog(locale=lang, project=project, fuzzy=False, copyright_holder="the course's authors",
                   last_translator="the course's translators", language_team=f"{lang} <none>")


# Babel writes a fuzzy entry's previous msgid (`#| msgid "" "line 1\n" "line 2"`, one comment line
# when nothing wraps it) but its reader does not parse `#|` lines: it keeps them as translator
# comments starting with "|". `read_catalog` turns that comment back into the previous msgid (its
# quoted pieces are PO string literals, whose escapes are Python's), so a second update sees what
# the first one wrote.
PREVIOUS = "| msgid "
NO_WRAP = 10 ** 9  # write_po's width: no line of a msgid, msgstr or comment is wrapped


def _previous_from_comments(message: Message) -> None:
    kept = []
    for comment in message.user_comments:
        if comment.startswith(PREVIOUS) and not message.previous_id:
            try:
                message.previous_id = [ast.literal_eval(comment[len(PREVIOUS):])]
            except (SyntaxError, ValueError):
                pass  # wrapped by another writer: the `#.` lines still show what changed
        elif not comment.startswith("|"):
            kept.append(comment)
    message.user_comments = kept


def read_catalog(path: Path, lang: str, project: str) -> Catalog:
    """The catalog at `path` (previous msgids of fuzzy entries included), or a new empty one."""
    if not path.exists():
        return new_catalog(lang, project)
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang)
    for message in catalog:
        _previous_from_comments(message)
    return catalog


def notebook_template(nb, where: str) -> Catalog:
    """The English of a notebook as a template: one entry per non-empty markdown cell, keyed by id."""
    template = Catalog(fuzzy=False)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            if not cell.get("id"):
                raise ValueError(f"{where}: a markdown cell has no id; open and save the notebook with "
                                 "nbformat >= 5.1 (nbformat.validator.normalize) to give every cell one")
            template.add(cell.source, context=cell.id)
    return template


def package_template(package: Path, notebooks: dict | None = None) -> Catalog:
    """Every `_("...")` and `N_("...")` of the package's code, as `pybabel extract -k _ -k N_` finds
    them, and of the code cells of `notebooks` ({name: notebook}), where `gh._("...")` counts."""
    template = Catalog(fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            package, method_map=[("**.py", "python")], keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        template.add(message, locations=[(f"{package.name}/{filename}", lineno)], auto_comments=comments,
                     context=context)
    for name, nb in (notebooks or {}).items():
        for cell in nb.cells:
            if cell.cell_type == "code" and "_(" in cell.source:
                found = extract("python", io.BytesIO(cell.source.encode()), keywords=KEYWORDS,
                                comment_tags=("TRANSLATORS:",), strip_comment_tags=True)
                for lineno, message, comments, context in found:
                    template.add(message, locations=[(name, None)], auto_comments=comments, context=context)
    return template


def _key(message: Message):
    return (message.id, message.context) if message.context is not None else message.id


def _follow_cells(catalog: Catalog, template: Catalog) -> None:
    """Move each entry whose cell's English changed to the new English, fuzzy, with the English it
    was translated from as previous msgid (back to exact when the English returns to that text)."""
    english = {m.context: m.id for m in template if m.id}
    for message in [m for m in catalog if m.id and m.context in english and english[m.context] != m.id]:
        catalog.delete(message.id, message.context)
        new = english[message.context]
        if not message.string:
            continue  # nothing to keep: the update adds the new English as missing
        was = message.previous_id[0] if message.fuzzy and message.previous_id else message.id
        flags = set(message.flags) - {"fuzzy"} | ({"fuzzy"} if new != was else set())
        catalog.add(new, message.string, context=message.context, flags=flags,
                    previous_id=[was] if new != was else (), user_comments=message.user_comments)
    for message in template:  # a cell that comes back (a deletion undone) gets its translation back
        if message.id and _key(message) in catalog.obsolete and catalog.get(message.id, message.context) is None:
            back = catalog.obsolete.pop(_key(message))
            catalog[back.id] = back


def changes(old: str, new: str) -> list[str]:
    """The lines of the English that changed since the translation, as `#.` comments for the
    translator ('-' the English translated from, '+' the English now)."""
    diff = [f"{line[0]} {line[1:]}" for line in difflib.unified_diff(old.splitlines(), new.splitlines(),
                                                                      lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]
    return ["the English changed since this was translated:"] + diff


def update(catalog: Catalog, template: Catalog, by_cell: bool) -> None:
    """Bring `catalog` in step with `template` (see the module's docstring)."""
    if by_cell:
        _follow_cells(catalog, template)
    previous = {_key(m): list(m.previous_id) for m in catalog if m.id and m.fuzzy and m.previous_id}
    catalog.update(template, no_fuzzy_matching=by_cell, update_creation_date=False)
    for message in catalog:  # Babel's exact merge forgets the previous msgid of a fuzzy entry
        if message.id and message.fuzzy and not message.previous_id and _key(message) in previous:
            message.previous_id = previous[_key(message)]
        if message.id and message.fuzzy and message.previous_id:
            message.auto_comments = changes(message.previous_id[0], message.id)
    for key in [k for k, m in catalog.obsolete.items() if not m.string]:
        del catalog.obsolete[key]


def problems(message: Message, package: bool = False) -> list[str]:
    """What a translation lost of its English: code, formulas, link targets, headings, markers;
    for a package message also its placeholders ({name}, %s), which .format / % must find."""
    english, text = message.id, translation(message)
    if text is None or NO_CHECK in message.flags:
        return []
    found = []
    lost = Counter(KEPT.findall(english)) - Counter(KEPT.findall(text))
    if lost:
        found.append("lost code or formulas: " + ", ".join(lost))
    lost = Counter(LINK.findall(english)) - Counter(LINK.findall(text))
    if lost:
        found.append("lost link targets (keep them in English; the build translates anchors): " + ", ".join(lost))
    levels = ([len(h) for h in HEADING_LEVEL.findall(english)], [len(h) for h in HEADING_LEVEL.findall(text)])
    if levels[0] != levels[1]:
        found.append(f"headings differ (levels {levels[0]} in English, {levels[1]} translated)")
    lost = [m for m in MARKERS if text.count(m) < english.count(m)]
    if lost:
        found.append("lost markers: " + " ".join(lost))
    if package and Counter(PLACEHOLDER.findall(english)) != Counter(PLACEHOLDER.findall(text)):
        found.append("placeholders differ: " + " ".join(PLACEHOLDER.findall(english)))
    return [f"{label(message)}: {p}" for p in found]


def po_bytes(catalog: Catalog, lang: str) -> bytes:
    """The catalog as a .po file: one line per line of text (no re-wrapping, so a msgid reads like
    the markdown it is), entries in the English's order, previous msgids of fuzzy entries kept."""
    catalog.header_comment = "\n".join(
        "# " + line for line in HEADER.format(language=Locale.parse(lang).english_name, project=catalog.project,
                                              lang=lang).splitlines())
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=NO_WRAP, sort_output=False, include_previous=True, include_lineno=False)
    return buffer.getvalue()
