"""The course in another language (Chinese: `zh`), built from English that stays the source:
`python -m genai_helpers translations [--lang zh] [--check]`.

For each English notebook (`notebooks/*.ipynb` and `notebooks/demos/*.ipynb`) the command
1. brings its catalog, `locale/<lang>/notebooks/<name>.po`, in step with it, and the package's
   catalog, `genai_helpers/locale/<lang>/LC_MESSAGES/genai_helpers.po`, with the `_("...")`
   messages of the code (`catalogs.update`: new English is missing, changed English out of date);
2. builds `notebooks/<lang>/<name>.ipynb`: the English cells with the same ids; each markdown cell
   from the catalog (without an up-to-date translation, the English under a visible marker), its
   links to headings pointed at the translated headings; the code cells identical to the English
   but one: the first `gh.setup(...)` gets `lang="<lang>"`, which switches the course's messages;
3. prints per notebook what is translated, missing and out of date, and any translation that lost
   code, formulas, link targets or headings; `--check` writes nothing and fails on any of these,
   or when a file on disk is not what the build makes.

Why `gh.setup(lang="zh")` and not a kernel setting: JupyterLab, Voila and nbclient start a
notebook's kernel by its kernelspec name, so a language set in the kernel would need a second
kernel installed on every student's machine, and the notebook would not say which language it
runs in. One visible argument works everywhere; `tests/test_i18n.py` proves it is the only
difference from the English code.

Outputs: a built notebook keeps the outputs it had when its code has not changed (so those of a
run in Chinese stay); otherwise it takes the English notebook's until it is executed
(`python -m genai_helpers execute notebooks/zh/NN_name.ipynb`).
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import nbformat

from . import catalogs
from .i18n import _, catalog_path, normalize, translation
from .links import EXTERNAL, LINK, headings, split_target

SETUP_CALL = re.compile(r"\bgh\.setup\(")
META = "genai_helpers"  # the notebook metadata key that says a notebook is built, and from what


@dataclass(frozen=True)
class Page:
    """One notebook of an edition: its English source, its catalog and the notebook built from them."""
    name: str  # "00_start_here", "demos/01_kl_divergence"
    english: Path
    catalog: Path
    output: Path


@dataclass
class Row:
    """One line of the report."""
    name: str
    status: catalogs.Status
    problems: list = field(default_factory=list)
    stale: list = field(default_factory=list)  # files that differ from what the build makes (--check)

    @property
    def failed(self) -> bool:
        return bool(self.status.missing or self.status.outdated or self.problems or self.stale)


def pages(repo: Path, lang: str) -> list[Page]:
    """The notebooks of the `lang` edition, from the English ones (chapters, then demos)."""
    notebooks = repo / "notebooks"
    english = sorted(notebooks.glob("*.ipynb")) + sorted((notebooks / "demos").glob("*.ipynb"))
    out = []
    for path in english:
        rel = path.relative_to(notebooks)
        catalog = repo / "locale" / lang / "notebooks" / rel.with_suffix(".po")
        out.append(Page(rel.with_suffix("").as_posix(), path, catalog, notebooks / lang / rel))
    return out


def switch_language(source: str, lang: str) -> str | None:
    """`gh.setup(seed=0)` -> `gh.setup(seed=0, lang="zh")` in a cell's source; None without a setup call."""
    found = SETUP_CALL.search(source)
    if found is None:
        return None
    depth, i = 1, found.end()
    while depth:
        if i == len(source):
            raise ValueError(f"unbalanced parentheses after gh.setup( in:\n{source}")
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        i += 1
    args = source[found.end():i - 1]
    if re.search(r"\blang\s*=", args):
        raise ValueError("an English notebook passes lang= to gh.setup; leave it out: English is the default, "
                         "and the build adds the edition's language")
    return f'{source[:i - 1]}{", " if args.strip() else ""}lang="{lang}"{source[i - 1:]}'


def marker(outdated: bool, lang: str) -> str:
    """The line above a cell shown in English because its translation is missing or out of date."""
    if outdated:
        return _("*(The translation of this cell is out of date; the English original follows.)*", lang)
    return _("*(Not translated yet; the English original follows.)*", lang)


def cell_texts(nb, catalog, lang: str) -> tuple[dict, dict]:
    """Markdown cell id -> its text in the edition, and -> its translation (None if not usable)."""
    texts, translated = {}, {}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.strip():
            message = catalog.get(cell.source, cell.id)
            translated[cell.id] = translation(message)
            texts[cell.id] = translated[cell.id] or f"{marker(bool(message and message.fuzzy), lang)}\n\n{cell.source}"
    return texts, translated


def heading_map(nb, translated: dict) -> dict:
    """English heading anchor -> translated heading anchor, cell by cell (headings pair in order)."""
    mapping = {}
    for cell in nb.cells:
        if translated.get(cell.get("id")):
            english, theirs = headings(cell.source), headings(translated[cell.id])
            if len(english) == len(theirs):  # otherwise catalogs.problems reports it
                mapping.update(zip(english, theirs))
    return mapping


def rewrite_links(text: str, page: Page, maps: dict) -> str:
    """Links of a cell, as seen from the built notebook: a link to a notebook of the edition (this
    one included) keeps its path and gets the translated anchor; any other file is re-pointed from
    the edition's folder."""
    def fix(match):
        target = match.group(1)
        if target.startswith(EXTERNAL):
            return match.group(0)
        file, frag = split_target(target)
        where = (page.english.parent / unquote(file)).resolve() if file else page.english.resolve()
        if where in maps:
            new = file + (f"#{maps[where].get(frag, frag)}" if frag else "")
        else:
            new = Path(os.path.relpath(where, page.output.parent)).as_posix() + (f"#{frag}" if frag else "")
        return f"]({new})"

    return LINK.sub(fix, text)


def _code(nb) -> list:
    return [(c.get("id"), c.source) for c in nb.cells if c.cell_type == "code"]


def build_notebook(english, previous, texts: dict, lang: str, name: str):
    """The edition's notebook: English cells, markdown from `texts`, the language switched in the
    first setup call; outputs (and widget state) of `previous` when its code is the same."""
    nb = copy.deepcopy(english)
    switched = False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.get("id") in texts:
            cell.source = texts[cell.id]
        elif cell.cell_type == "code" and not switched:
            new = switch_language(cell.source, lang)
            if new is not None:
                cell.source, switched = new, True
    if not switched:
        raise ValueError(f"{name} never calls gh.setup(...): the {lang} edition switches language there; "
                         "add `env = gh.setup(seed=0)` before the first cell that prints")
    if previous is not None and _code(previous) == _code(nb):
        before = {c.get("id"): c for c in previous.cells if c.cell_type == "code"}
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = before[cell.id].outputs, before[cell.id].execution_count
                cell.metadata = before[cell.id].metadata
        nb.metadata = copy.deepcopy(previous.metadata)
    nb.metadata[META] = {"language": lang, "source": f"notebooks/{name}.ipynb",
                         "built by": "python -m genai_helpers translations (edit the English and the catalog)"}
    return nb


def _put(path: Path, data: bytes, write: bool, repo: Path) -> list:
    """Write `data` to `path` if it differs; in check mode, name the file instead."""
    if path.exists() and path.read_bytes() == data:
        return []
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return []
    return [f"{path.relative_to(repo).as_posix()} is not up to date"]


def sync_package(repo: Path, lang: str, write: bool) -> Row:
    """The package's catalog in step with the `_("...")` messages of the code (the package's, and
    the English notebooks' code cells')."""
    path = catalog_path(lang, repo / "genai_helpers" / "locale")
    catalog = catalogs.read_catalog(path, lang, "genai_helpers")
    notebooks = {f"notebooks/{page.name}.ipynb": nbformat.read(page.english, as_version=4)
                 for page in pages(repo, lang)}
    catalogs.update(catalog, catalogs.package_template(repo / "genai_helpers", notebooks), by_cell=False)
    found = [p for m in catalog if m.id for p in catalogs.problems(m, package=True)]
    stale = _put(path, catalogs.po_bytes(catalog, lang), write, repo)
    return Row("genai_helpers (messages)", catalogs.status(catalog), found, stale)


def sync(repo: Path, lang: str = "zh", write: bool = True) -> list[Row]:
    """Update the catalogs, build the edition's notebooks and say where each stands."""
    lang = normalize(lang)
    rows = [sync_package(repo, lang, write)]
    found = []
    for page in pages(repo, lang):
        english = nbformat.read(page.english, as_version=4)
        catalog = catalogs.read_catalog(page.catalog, lang, "genai_helpers notebooks")
        catalogs.update(catalog, catalogs.notebook_template(english, page.name), by_cell=True)
        texts, translated = cell_texts(english, catalog, lang)
        found.append((page, english, catalog, texts, translated))
    maps = {page.english.resolve(): heading_map(english, translated) for page, english, _c, _t, translated in found}
    for page, english, catalog, texts, _translated in found:
        texts = {cell_id: rewrite_links(text, page, maps) for cell_id, text in texts.items()}
        previous = nbformat.read(page.output, as_version=4) if page.output.exists() else None
        nb = build_notebook(english, previous, texts, lang, page.name)
        stale = _put(page.catalog, catalogs.po_bytes(catalog, lang), write, repo)
        stale += _put(page.output, nbformat.writes(nb).encode() + b"\n", write, repo)
        rows.append(Row(page.name, catalogs.status(catalog), [p for m in catalog if m.id for p in catalogs.problems(m)],
                        stale))
    return rows


def report(rows: list, lang: str) -> str:
    """The table the command prints, with the entries that need work listed under their notebook."""
    title = f"the {lang} edition"
    lines = [f"{title:34s} {'translated':>12s} {'missing':>8s} {'out of date':>12s} {'problems':>9s}"]
    for row in rows:
        s = row.status
        lines.append(f"{row.name:34s} {len(s.translated):>6d} / {s.total:<4d} {len(s.missing):>8d} "
                     f"{len(s.outdated):>12d} {len(row.problems):>9d}")
        lines += [f"    out of date: {what}" for what in s.outdated]
        lines += [f"    problem: {what}" for what in row.problems] + [f"    {what}" for what in row.stale]
    done, total = sum(len(r.status.translated) for r in rows), sum(r.status.total for r in rows)
    lines.append(f"{'total':34s} {done:>6d} / {total:<4d} ({100 * done / max(total, 1):.0f}% translated)")
    return "\n".join(lines)


def run(repo: Path, lang: str = "zh", check: bool = False) -> int:
    """The command: update and build (or, with `check`, only look), print the report; with `check`,
    exit code 1 when anything is missing, out of date, broken or not rebuilt."""
    rows = sync(repo, lang, write=not check)
    print(report(rows, lang))
    failed = [row.name for row in rows if row.failed]
    if check and failed:
        print(f"not in step with the English: {', '.join(failed)}. Translate the missing and out-of-date entries "
              f"in locale/{lang}/ (see CONTRIBUTING.md, 'Adding a language') and run "
              "python -m genai_helpers translations")
        return 1
    return 0
