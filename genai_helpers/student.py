"""The student version of the course: every solution region replaced by a stub with a hint.

Solutions sit in code cells between `### BEGIN SOLUTION` and `### END SOLUTION` (nbgrader's
markers). The text after BEGIN SOLUTION on the marker line, `hint: ...`, becomes the stub's
message. Outputs of exercise cells are cleared; everything else (text, figures) is kept.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(")
_EXERCISE = re.compile(r"Exercise\s+(\d+\.\d+)")


def clear_solutions(source: str, exercise: str | None = None) -> str:
    """Replace each solution region of a cell's source by `raise NotImplementedError(hint)`."""
    out, inside, func = [], False, None
    for line in source.split("\n"):
        m = _DEF.match(line)
        if m and not inside:
            func = m.group(1)
        if BEGIN in line:
            if inside:
                raise ValueError(f"nested {BEGIN!r} in a cell:\n{source}")
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            hint = line.split(BEGIN, 1)[1].strip().removeprefix("hint:").strip() or "write your code here"
            who = f"Exercise {exercise}" if exercise else "This exercise"
            needs = f" Later cells that use {func}() need it." if func else ""
            message = f"{who} is not done yet. Hint: {hint}.{needs}"
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError({message!r})")
        elif END in line:
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r} in a cell:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r} in a cell:\n{source}")
    return "\n".join(out)


def student_notebook(nb):
    """A copy of the notebook with solutions cleared and exercise cells' outputs removed."""
    nb = nbformat.from_dict(nb)
    exercise = None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = _EXERCISE.findall(cell.source)
            exercise = found[-1] if found else exercise
        elif cell.cell_type == "code" and BEGIN in cell.source:
            cell.source = clear_solutions(cell.source, exercise)
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
