"""The student version: no solution survives, and each notebook stops at its first exercise."""
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from genai_helpers.__main__ import NOTEBOOKS
from genai_helpers.student import BEGIN, END, clear_solutions, make_student_version

INSTRUCTOR = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def solution_lines(source):
    inside, lines = False, []
    for line in source.split("\n"):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def test_clear_solutions_keeps_the_rest_and_rejects_broken_markers():
    src = ("def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION hint: square it\n    return x * x\n"
           "    ### END SOLUTION\n\ncheck(f)")
    out = clear_solutions(src, "9.1")
    assert "return x * x" not in out and "'''doc'''" in out and out.endswith("check(f)")
    assert "raise NotImplementedError('Exercise 9.1 is not done yet. Hint: square it." in out
    assert "Later cells that use f() need it." in out
    compile(out, "cell", "exec")
    for broken in (f"{BEGIN}\nx = 1", f"x = 1\n{END}", f"{BEGIN}\n{BEGIN}\n{END}"):
        with pytest.raises(ValueError):
            clear_solutions(broken)


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    make_student_version(NOTEBOOKS, out)
    return out


def test_no_solution_line_survives(student_dir):
    total = 0
    for path in INSTRUCTOR:
        teacher = nbformat.read(path, as_version=4)
        student = nbformat.read(student_dir / path.name, as_version=4)
        assert len(teacher.cells) == len(student.cells)
        for t, s in zip(teacher.cells, student.cells):
            if t.cell_type != "code" or BEGIN not in t.source:
                assert s.source == t.source
                continue
            solution = solution_lines(t.source)
            total += len(solution)
            assert BEGIN not in s.source and END not in s.source
            leaked = [line for line in solution if line in {x.strip() for x in s.source.split("\n")}]
            assert not leaked, f"{path.name}: solution lines left in the student version: {leaked}"
            assert "raise NotImplementedError(" in s.source and "Hint:" in s.source
            assert s.outputs == []
    assert total > 0


@pytest.mark.parametrize("name", [p.name for p in INSTRUCTOR
                                  if BEGIN in p.read_text(encoding="utf-8")])
def test_student_notebook_stops_at_its_first_exercise_with_the_hint(student_dir, name):
    nb = nbformat.read(student_dir / name, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "NotImplementedError(" in c.source)
    nb.cells = nb.cells[:first + 2]  # stop early: nothing after the first exercise is needed
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    with pytest.raises(CellExecutionError) as err:
        client.execute()
    failed = [i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert failed == [first], f"{name}: expected to stop at cell {first}, stopped at {failed}"
    (error,) = [o for o in nb.cells[first].outputs if o.output_type == "error"]
    assert error.ename == "CheckFailed"
    assert "not implemented yet" in str(err.value) and "Hint:" in str(err.value)
