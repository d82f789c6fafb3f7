"""Markdown links and heading anchors, read the way JupyterLab resolves them.

One place for the rule, because two things need it: `tests/test_notebook_text.py` checks that
every link to a heading resolves, and the Chinese edition (`translations`) rewrites links to
headings whose text, and so whose anchor, changed language.
"""
from __future__ import annotations

import re
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
    broken = []
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
            elif frag and where.suffix == ".ipynb" and frag not in anchors(where):
                broken.append(f"{target} (no heading '{frag}' in {where.name})")
    return broken
