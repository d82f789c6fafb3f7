"""The text of the chapters stays true to them: every link to a heading resolves, and no measured
number is typed into markdown (a number a chapter prints belongs in a printed sentence, so the
text cannot drift from the run; see CONTRIBUTING.md). The link rule lives in `genai_helpers.links`,
which the Chinese edition also uses (tests/test_i18n.py checks its links)."""
import re
from pathlib import Path

import nbformat
import pytest

from genai_helpers.links import anchor, broken_links

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
