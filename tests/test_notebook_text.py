"""The text of the chapters stays true to them: every link to a heading resolves, and no measured
number is typed into markdown (a number a chapter prints belongs in a printed sentence, so the
text cannot drift from the run; see CONTRIBUTING.md). The link rule lives in `genai_helpers.links`,
which the Chinese edition also uses (tests/test_i18n.py checks its links)."""
import re
from pathlib import Path

import nbformat
import pytest

from genai_helpers.links import anchor, article_sections, broken_links, github_anchor, link_sections, section_problems

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted((NOTEBOOKS / "demos").glob("*.ipynb"))
# a measured-looking number: three or more significant digits with a decimal point (21.79, 0.968, 15.1)
MEASURED = re.compile(r"(?<![\w.])(\d+\.\d{2,}|[1-9]\d+\.\d+)(?![\w.])")


def markdown(path: Path) -> list:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_link_to_a_heading_resolves(path):
    broken = broken_links(path)
    assert not broken, f"{path.name}: links that lead nowhere: {broken}"


REPO = NOTEBOOKS.parent
PAGES = ALL + sorted((NOTEBOOKS / "zh").glob("*.ipynb")) + [REPO / "README.md", REPO / "README.zh.md"]


def texts(path: Path) -> list:
    return [c.source for c in markdown(path)] if path.suffix == ".ipynb" else [path.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_article_section_is_a_link_to_it(path):
    """"§3.1" is a link to that heading of article/article.zh.md, and the article has that section
    (a student reading "§8.2.4" should find it; the article's §8.2 has no subsections)."""
    sections = article_sections()
    problems = [p for text in texts(path) for p in section_problems(text, sections)]
    assert not problems, f"{path.name}: {problems}"


NUMBERED = re.compile(r"(?<!\[)\b[Ss]ections? \d+(?:\.\d+)*")  # "section 9", not inside a link's text


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_numbered_cross_reference(path):
    """"see section 9" sends a student hunting; a link to the heading (or the article's §) takes them there."""
    found = [m.group(0) for c in markdown(path) for m in NUMBERED.finditer(c.source)]
    assert not found, f"{path.name}: numbered references, link the heading instead: {found}"
    assert NUMBERED.search("see section 1.6 of the book") and not NUMBERED.search("[section 2](#2.-The-VAE)")


def test_the_article_section_rule():
    sections = article_sections()
    assert sections["3.1"] == github_anchor("3.1 变分自编码器（VAEs）") == "31-变分自编码器vaes"
    assert "8.2" in sections and "8.2.4" not in sections and "1" in sections
    linked = link_sections("The article (§2.4, §3.1) and §9.9", "../article/article.zh.md", sections)
    assert linked.startswith("The article ([§2.4](../article/article.zh.md#24-mermaid-流程图), [§3.1](")
    assert section_problems(linked, sections) == ["§9.9: the article has no section 9.9"]
    assert "not a link" in section_problems("see §3.1", sections)[0]
    assert link_sections(linked, "../article/article.zh.md", sections) == linked  # linked ones are kept


def test_the_anchor_rule_matches_jupyterlab():
    assert anchor("3. The evidence lower bound (ELBO)") == "3.-The-evidence-lower-bound-(ELBO)"
    assert anchor("2. The `Encoder` **class**") == "2.-The-Encoder-class"


def typed_numbers(path: Path) -> list:
    """Numbers the chapter prints (in its outputs), that its code does not set, typed into markdown."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    printed = "\n".join(str(o.get("text", "")) + "".join(str(v) for k, v in o.get("data", {}).items()
                                                        if k == "text/plain")
                        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    typed = []
    for cell in markdown(path):
        prose = re.sub(r"\$\$.*?\$\$|\$[^$]*\$|`[^`]*`", "", cell.source, flags=re.S)  # formulas and code
        for number in MEASURED.findall(prose):
            if re.search(rf"(?<![\w.]){re.escape(number)}(?![\w])", printed) and number not in code:
                typed.append(number)
    return typed


@pytest.mark.parametrize("path", [p for p in ALL if p.parent == NOTEBOOKS], ids=lambda p: p.name)
def test_no_measured_number_is_typed_into_markdown(path):
    typed = typed_numbers(path)
    assert not typed, (f"{path.name}: numbers the chapter measures are typed into its markdown: {typed}; "
                       "print them from the results in a code cell instead")


def test_both_checks_catch_what_they_are_for(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## 1. Results\nThe VAE reaches 97.31 nats; see [the setup](#2.-Setup) "
                                              "and [chapter 9](09_none.ipynb). At $T = 0.5$ it is 12.5."),
                nbformat.v4.new_code_cell("T, lr = 0.5, 12.5\nprint(nats, lr)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="97.31 12.5\n")]
    path = tmp_path / "07_toy.ipynb"
    nbformat.write(nb, path)
    assert typed_numbers(path) == ["97.31"]  # 12.5 is set by the code, 0.5 sits in a formula
    assert [b.split(" ")[0] for b in broken_links(path)] == ["#2.-Setup", "09_none.ipynb"]
