"""The student version: no solution survives (hints included), each unsolved exercise stops the
chapter with a pointer to the hints, and with every "take the reference" line taken the chapter runs
top to bottom (chapter 01 in a kernel to its end; in every chapter its exercise cells in order, each
stub rebound to a reference that fits and passes the cell's checker)."""
import ast
import copy
import functools
import inspect
import math
import operator
import re

import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import genai_helpers as gh
from genai_helpers.__main__ import NOTEBOOKS
from genai_helpers.hints import all_hints, hint
from genai_helpers.i18n import _
from genai_helpers.student import (
    BEGIN, END, SKIP, clear_solutions, make_student_version, student_notebook, take_references)

INSTRUCTOR = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
WITH_EXERCISES = [p.name for p in INSTRUCTOR if BEGIN in p.read_text(encoding="utf-8")]
STUB = "raise NotImplementedError("  # what the student version puts in place of a solution
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


def first_exercise(name: str) -> int:
    return next(i for i, c in enumerate(student_version(name).cells) if c.cell_type == "code" and STUB in c.source)


def run_student_version(name: str):
    """Run the student version of a chapter in one kernel, cell by cell, as a student meets it: the
    first unsolved exercise must stop the chapter with a pointer to the hints; then each reference is
    taken (the ⏭ line uncommented) and the run goes on to the end."""
    nb = nbformat.from_dict(copy.deepcopy(student_version(name)))
    first = first_exercise(name)
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


# One chapter runs in a kernel to its end with every reference taken: the end-to-end proof that taking
# each ⏭ line gives a chapter that runs (chapter 01: five exercises, ten seconds). Running every chapter
# so, a second time after nbval, cost the suite four minutes; for every chapter the test below runs the
# exercise cells alone, which is what differs from the cells nbval runs.
RUN_TO_THE_END = "01_math.ipynb"


def test_a_student_who_takes_every_reference_gets_the_whole_chapter():
    """Chapter 01 as a student who skips every exercise meets it: it stops at the first, then runs to the end."""
    run_student_version(RUN_TO_THE_END)


def top_level_stubs(tree: ast.Module) -> dict[str, ast.AST]:
    """The functions and classes defined at a cell's top level whose bodies raise the stub."""
    return {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
            and any(isinstance(n, ast.Raise) and "NotImplementedError" in ast.unparse(n) for n in ast.walk(node))}


def taken_references(tree: ast.Module) -> dict[str, str]:
    """name -> the dotted path it is bound to by a top-level `name = gh.module.attr` line."""
    return {a.targets[0].id: ast.unparse(a.value) for a in tree.body
            if isinstance(a, ast.Assign) and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name)
            and isinstance(a.value, ast.Attribute) and ast.unparse(a.value).startswith("gh.")}


def resolve(dotted: str):
    """`gh.vae_parts.ReferenceEncoder` -> the object (AttributeError if there is none)."""
    return operator.attrgetter(dotted.removeprefix("gh."))(gh)


def parameters(fn: ast.FunctionDef) -> list[str]:
    return [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]


def misfit(stub: ast.AST, reference) -> str | None:
    """What a later cell could meet that the reference does not offer, or None: the student's parameters
    (a function's, a class's __init__'s) are the reference's, in order (extra ones with defaults), and a
    class's methods exist on the reference."""
    if isinstance(stub, ast.ClassDef):
        if not inspect.isclass(reference):
            return f"{stub.name} is a class, the reference {reference!r} is not"
        methods = {f.name: f for f in stub.body if isinstance(f, ast.FunctionDef)}
        missing = [m for m in methods if not hasattr(reference, m)]
        if missing:
            return f"the reference has no {missing}"
        if "__init__" not in methods:
            return None
        wanted, target = parameters(methods["__init__"])[1:], reference  # its signature: __init__'s, less self
    else:
        wanted, target = parameters(stub), reference
    given = [p for p in inspect.signature(target).parameters.values()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if [p.name for p in given[:len(wanted)]] != wanted:
        return f"the student writes ({', '.join(wanted)}), the reference takes ({', '.join(p.name for p in given)})"
    extra = [p.name for p in given[len(wanted):] if p.default is p.empty]
    return f"the reference also needs {extra}, which the chapter does not pass" if extra else None


def stubs_without_a_fitting_reference(source: str, taken: str) -> list[str]:
    """In one exercise cell: each function or class the student version stubs must be rebound by its
    ⏭ line to a reference that exists and takes the same arguments; what is wrong, in words."""
    stubs, references = top_level_stubs(ast.parse(source)), taken_references(ast.parse(taken))
    if not stubs:
        return ["an exercise cell with no stubbed function or class"]
    problems = []
    for stub_name, stub in stubs.items():
        if stub_name not in references:
            problems.append(f"no ⏭ line rebinds {stub_name}, so later cells call its stub")
            continue
        try:
            reference = resolve(references[stub_name])
        except AttributeError as e:
            problems.append(f"{references[stub_name]} does not exist ({e})")
            continue
        if why := misfit(stub, reference):
            problems.append(f"{stub_name} = {references[stub_name]}: {why}")
    return problems


# what an exercise cell may use from the chapter's setup cell when its definitions run
SETUP = {"gh": gh, "torch": torch, "nn": torch.nn, "F": torch.nn.functional, "math": math, "np": np}


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_each_exercise_stops_with_a_pointer_then_its_reference_fits(name):
    """The chapter's exercise cells in order, in one namespace, as a student who skips each one meets them
    (the cells between are nbval's, unchanged in the student version): each stub stops its cell with the
    checker's "not implemented yet" and a pointer to gh.hint; its ⏭ line taken, each stubbed function or
    class is rebound to a reference that exists and takes the same arguments, and the cell's own checker
    passes. The chapter run to its end with every reference taken is chapter 01's test above."""
    names, problems = dict(SETUP), []
    for index, cell in enumerate(student_version(name).cells):
        if cell.cell_type != "code" or STUB not in cell.source:
            continue
        taken = take_references(cell.source)
        problems += [f"cell {index}: {p}" for p in stubs_without_a_fitting_reference(cell.source, taken)]
        for source, expect_stop in ((cell.source, True), (taken, False)):
            try:
                exec(compile(source, f"{name} cell {index}", "exec"), names)
                stopped = None
            except gh.checks.CheckFailed as e:
                stopped = str(e)
            if expect_stop and not (stopped and "not implemented yet" in stopped and "gh.hint(" in stopped):
                problems.append(f"cell {index}: the unsolved exercise does not stop with a pointer to the hints "
                                f"({stopped or 'it ran through'})")
            if not expect_stop and stopped:
                problems.append(f"cell {index}: its checker rejects the reference taken: {stopped}")
    assert not problems, f"{name}: " + "; ".join(problems)
