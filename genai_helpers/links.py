"""Markdown links and heading anchors, read the way JupyterLab resolves them.

One place for the rule, because two things need it: `tests/test_notebook_text.py` checks that
every link to a heading resolves, and the Chinese edition (`translations`) rewrites links to
headings whose text, and so whose anchor, changed language.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import nbformat

LINK = re.compile(r"\]\(([^)\s]*?(?:\([^)\s]*\)[^)\s]*?)*)\)")  # ](target), parentheses inside allowed
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
HEADING_LEVEL = re.compile(r"^(#{1,6})\s+\S", re.M)
EXTERNAL = ("http://", "https://", "mailto:")


def anchor(heading: str) -> str:
    """The id JupyterLab gives a heading: its text as shown (no markdown marks), spaces as '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"[`*_]", "", text)
    return text.strip().replace(" ", "-")


def headings(markdown: str) -> list[str]:
    """The anchors of the headings in one markdown text, in order."""
    return [anchor(h) for h in HEADING.findall(markdown)]


def anchors(path: Path) -> set:
    """Every heading anchor of a notebook."""
    nb = nbformat.read(path, as_version=4)
    return {a for c in nb.cells if c.cell_type == "markdown" for a in headings(c.source)}


def split_target(target: str) -> tuple[str, str]:
    """'02_vae.ipynb#2.-The-VAE' -> ('02_vae.ipynb', '2.-The-VAE'); fragments come back unquoted."""
    file, _, frag = target.partition("#")
    return file, unquote(frag)


def broken_links(path: Path) -> list:
    """Links in the notebook's markdown to a file or heading that does not exist."""
    broken, known = [], {}  # notebook -> its anchors, read once however many links point into it
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        for target in LINK.findall(cell.source):
            if target.startswith(EXTERNAL):
                continue
            file, frag = split_target(target)
            where = (path.parent / unquote(file)).resolve() if file else path
            if not where.exists():
                broken.append(f"{target} (no file {file})")
            elif frag and where.suffix == ".ipynb":
                if where not in known:
                    known[where] = anchors(where)
                if frag not in known[where]:
                    broken.append(f"{target} (no heading '{frag}' in {where.name})")
    return broken


# The article the course follows, in the repository, and references to its sections ("§3.1").
ARTICLE = Path(__file__).resolve().parent.parent / "article" / "article.zh.md"
SECTION = re.compile(r"(\[)?§(\d+(?:\.\d+)*)(\]\([^)\s]*\))?")  # a link's "[" and "](...)" if linked
SECTION_HEADING = re.compile(r"^#{2,4}\s+((\d+(?:\.\d+)*)\.?\s.*?)\s*$")


def github_anchor(heading: str) -> str:
    """The id GitHub (and most markdown viewers of a .md file) gives a heading: lower case, every
    character that is not a letter, digit, space, '-' or '_' dropped, spaces as '-'."""
    kept = "".join(ch for ch in heading.lower()
                   if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def article_sections(article: Path = ARTICLE) -> dict:
    """Section number -> anchor of its heading in the article ("3.1" -> "31-变分自编码器vaes").
    Headings inside fenced code (the article's Python comments) are not headings."""
    sections, fenced = {}, False
    for line in article.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := SECTION_HEADING.match(line)):
            sections[m.group(2)] = github_anchor(m.group(1))
    return sections


def link_sections(text: str, article_link: str, sections: dict) -> str:
    """Every bare "§3.1" of a markdown text as a link to that section of the article
    (`article_link` is the article's path as seen from the text's file); linked ones are kept."""
    def link(m):
        if m.group(1) or m.group(3) or m.group(2) not in sections:
            return m.group(0)
        return f"[§{m.group(2)}]({article_link}#{sections[m.group(2)]})"

    return SECTION.sub(link, text)


def section_problems(text: str, sections: dict) -> list:
    """What is wrong with the text's references to article sections: one that is not a link to the
    article's heading of that number, or a number the article does not have."""
    problems = []
    for m in SECTION.finditer(text):
        number, target = m.group(2), (m.group(3) or "")[2:-1]
        if number not in sections:
            problems.append(f"§{number}: the article has no section {number}")
        elif not (m.group(1) and target.endswith(f"article/article.zh.md#{sections[number]}")):
            problems.append(f"§{number}: not a link to the article's heading "
                            f"(write [§{number}](.../article/article.zh.md#{sections[number]}))")
    return problems
