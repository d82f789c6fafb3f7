"""The student version of the course: every solution region replaced by a stub.

Solutions sit in code cells between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's
markers), inside a `def` or `class` body, so that the cell only defines things and the stub
raises when the chapter calls it. The marker line is bare: hints are not in the notebook but
asked for with `gh.hint("2.1")` (see `hints.py`), so that seeing one is a choice.

Each exercise cell also holds one commented line marked `# ⏭ take the reference`: removing its
leading `# ` replaces the student's piece by the reference, so the rest of the chapter still runs.
`take_references` does that for every exercise (the tests run such a version top to bottom).
Outputs of exercise cells are cleared; everything else (text, figures) is kept.

The student version of an edition in another language (`notebooks/zh/`, built by
`python -m genai_helpers translations`) is made the same way: its exercise headings say
"练习 2.1", and its stubs speak its language (the built notebook's metadata names it).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from .i18n import ENGLISH, _
from .translations import META

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
SKIP = "# ⏭ take the reference"
_DEF = re.compile(r"^\s*(?:def|class)\s+(\w+)\s*[(:]")
_EXERCISE = re.compile(r"(?:Exercise\s+|练习\s*)(\d+\.\d+)")  # "Exercise 2.1", and the Chinese edition's "练习 2.1"
_SKIP_LINE = re.compile(r"^(\s*)# (.+" + re.escape(SKIP) + r")\s*$")


def clear_solutions(source: str, exercise: str | None = None, lang: str | None = None) -> str:
    """Replace each solution region of a cell's source by `raise NotImplementedError(message)`."""
    out, inside, name, top = [], False, None, None
    for line in source.split("\n"):
        m = _DEF.match(line)
        if m and not inside:
            if not line[0].isspace():
                top = m.group(1)  # a class or function at the cell's top level: what later cells use
            name = top if line[0].isspace() and top else m.group(1)
        if BEGIN in line:
            if inside:
                raise ValueError(f"nested {BEGIN!r} in a cell:\n{source}")
            if line.strip() != BEGIN:
                raise ValueError(f"the marker line must be bare {BEGIN!r} (hints go in the checker "
                                 f"module's HINTS, asked for with gh.hint): {line.strip()!r}")
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError({stub_message(exercise, name, lang)!r})")
        elif END in line:
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r} in a cell:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r} in a cell:\n{source}")
    return "\n".join(out)


def stub_message(exercise: str | None, name: str | None, lang: str | None = None) -> str:
    """What an unsolved exercise says when the chapter calls it, in `lang` (default: the current
    language; the student version of an edition passes the edition's)."""
    who = _("Exercise {exercise}", lang).format(exercise=exercise) if exercise else _("This exercise", lang)
    needs = _(" Later cells use {name}.", lang).format(name=name) if name else ""
    ask = f'gh.hint("{exercise}")' if exercise else "gh.hint(...)"
    return _("{who} is not done yet: write your code in place of this line.{needs} Hint: {ask} gives a hint, one "
             "level at a time; to go on without it, remove the '# ' in front of the line marked ⏭ (it takes the "
             "reference).", lang).format(who=who, needs=needs, ask=ask)


def take_references(source: str) -> str:
    """Uncomment every `# ... # ⏭ take the reference` line: the chapter then uses the references."""
    lines = []
    for line in source.split("\n"):
        m = _SKIP_LINE.match(line)
        lines.append(f"{m.group(1)}{m.group(2)}" if m else line)
    return "\n".join(lines)


def student_notebook(nb, lang: str | None = None):
    """A copy of the notebook with solutions cleared and exercise cells' outputs removed; the stubs
    speak `lang`, by default the language of the edition the notebook was built for (else English)."""
    nb = nbformat.from_dict(nb)
    lang = lang or nb.metadata.get(META, {}).get("language") or ENGLISH
    exercise = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = _EXERCISE.findall(cell.source)
            exercise = found[-1] if found else exercise
        elif cell.cell_type == "code" and BEGIN in cell.source:
            cell.source = clear_solutions(cell.source, exercise, lang)
            cell.outputs = []
            cell.execution_count = None
    return nb


def make_student_version(src: Path, out: Path) -> list[Path]:
    """Write the student version of every notebook in `src` into `out`; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(Path(src).glob("[0-9][0-9]_*.ipynb")):
        nb = student_notebook(nbformat.read(path, as_version=4))
        target = out / path.name
        nbformat.write(nb, target)
        written.append(target)
    return written
