"""The student version: no solution survives (hints included), each notebook stops at its first
unsolved exercise with a pointer to the hints, and with every "take the reference" line taken the
whole chapter runs top to bottom (both seen in one kernel run per chapter)."""
import copy
import functools
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from genai_helpers.__main__ import NOTEBOOKS
from genai_helpers.hints import all_hints, hint
from genai_helpers.i18n import _
from genai_helpers.student import (
    BEGIN, END, SKIP, clear_solutions, make_student_version, student_notebook, take_references)

INSTRUCTOR = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
WITH_EXERCISES = [p.name for p in INSTRUCTOR if BEGIN in p.read_text(encoding="utf-8")]
FRAGMENT = 30  # characters of a solution line (whitespace removed) that count as a leak in a hint


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_lines(source):
    inside, lines = False, []
    for line in source.split("\n"):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


def visible_text(nb) -> str:
    """Everything a student sees in a notebook: sources and the outputs kept."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(str(out.get("text", "")))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def test_clear_solutions_keeps_the_rest_and_rejects_broken_markers():
    src = ("def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x * x\n"
           f"    ### END SOLUTION\n\n# f = g  {SKIP}\ncheck(f)")
    out = clear_solutions(src, "9.1")
    assert "return x * x" not in out and "'''doc'''" in out and out.endswith("check(f)")
    assert "raise NotImplementedError('Exercise 9.1 is not done yet" in out
    assert 'gh.hint("9.1")' in out and "Later cells use f." in out
    compile(out, "cell", "exec")
    assert take_references(out).endswith(f"f = g  {SKIP}\ncheck(f)")
    for broken in (f"{BEGIN}\nx = 1", f"x = 1\n{END}", f"{BEGIN}\n{BEGIN}\n{END}",
                   f"def f():\n    {BEGIN} hint: return 1\n    return 1\n    {END}"):
        with pytest.raises(ValueError):
            clear_solutions(broken)


def test_hints_come_in_levels_and_run_out(capsys):
    exercise, levels = next(iter(all_hints().items()))
    for level in range(1, len(levels) + 1):
        hint(exercise)
        assert f"hint {level} of {len(levels)}" in capsys.readouterr().out
    hint(exercise)
    assert "no more hints" in capsys.readouterr().out
    with pytest.raises(ValueError, match="the exercises with hints are"):
        hint("99.9")


def test_every_hint_has_at_least_two_levels():
    short = {k: v for k, v in all_hints().items() if len(v) < 2}
    assert not short, f"exercises whose hints do not have an idea level and a tools level: {sorted(short)}"


@functools.cache
def student_version(name: str):
    """The student version of one chapter (built per chapter, so one broken chapter names itself)."""
    return student_notebook(nbformat.read(NOTEBOOKS / name, as_version=4))


def test_make_student_version_writes_every_chapter(tmp_path):
    written = make_student_version(NOTEBOOKS, tmp_path)
    assert [p.name for p in written] == [p.name for p in INSTRUCTOR]


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_no_solution_leaks_into_the_student_version_or_the_hints(name):
    teacher = nbformat.read(NOTEBOOKS / name, as_version=4)
    student = student_version(name)
    assert len(teacher.cells) == len(student.cells)
    levels = sum(all_hints().values(), ())
    hints = squeeze("\n".join(levels + tuple(_(level, "zh") for level in levels)))  # the Chinese hints too
    seen = squeeze(visible_text(student))
    leaks, skip_lines = [], 0
    for t, s in zip(teacher.cells, student.cells):
        if t.cell_type != "code" or BEGIN not in t.source:
            assert s.source == t.source
            continue
        assert BEGIN not in s.source and END not in s.source and s.outputs == []
        assert "raise NotImplementedError(" in s.source and "gh.hint(" in s.source
        skip_lines += s.source.count(SKIP)
        for line in solution_lines(t.source):
            flat = squeeze(line)
            if len(flat) >= 15 and (flat in seen or flat in hints):
                leaks.append(line)
            elif any(flat[i:i + FRAGMENT] in hints for i in range(len(flat) - FRAGMENT + 1)):
                leaks.append(f"{line}  (a {FRAGMENT}-character piece of it is in a hint)")
    assert not leaks, f"{name}: solution lines visible in the student version or its hints: {leaks}"
    exercise_cells = sum(BEGIN in c.source for c in teacher.cells if c.cell_type == "code")
    assert skip_lines >= exercise_cells, f"{name}: an exercise cell without a line marked {SKIP!r}"


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_student_version_stops_at_the_first_exercise_then_runs_with_every_reference_taken(name):
    """As a student meets it: the chapter stops at its first unsolved exercise with a pointer to
    the hints; a student who skips every exercise (takes each reference) still gets the whole
    chapter (quick mode). One kernel runs both, cell by cell."""
    nb = nbformat.from_dict(copy.deepcopy(student_version(name)))
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "NotImplementedError(" in c.source)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if index == first:
                with pytest.raises(CellExecutionError) as err:
                    client.execute_cell(cell, index)
                (error,) = [o for o in cell.outputs if o.output_type == "error"]
                assert error.ename == "CheckFailed", f"{name}: cell {first} failed with {error.ename}"
                assert "not implemented yet" in str(err.value) and "gh.hint(" in str(err.value)
            if cell.cell_type == "code":
                cell.source = take_references(cell.source)
            # raises CellExecutionError, naming the cell, if anything else fails
            client.execute_cell(cell, index)
