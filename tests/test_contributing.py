"""CONTRIBUTING.md's "Adding a chapter" steps work: a newcomer's toy chapter (a notebook, its model
module, a checker with hints) in a temporary copy of the package; its student version builds and,
with the references taken, runs top to bottom in a fresh kernel."""
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from genai_helpers.student import BEGIN, END, SKIP, make_student_version, take_references

REPO = Path(__file__).resolve().parent.parent

MODEL = '''"""The toy chapter's model: a line y = a x fitted by the course loop."""
import torch
from torch import nn

from .runtime import pick
from .train import adam, fit


def reference_double(x):
    """The reference solution of exercise 99.1."""
    return 2 * x


def build_toy(device) -> tuple[dict, object]:
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False).to(device)
    opt = adam(model.parameters(), lr=0.1)

    def step(batch):
        x, y = batch
        loss = (model(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    return {"model": model, "opt": opt}, step


def reference_toy():
    state, step = build_toy("cpu")
    x = torch.linspace(-1, 1, 64)[:, None]
    hist = fit(step, (x, 2 * x), state=state, epochs=pick(full=50, quick=20), batch_size=16,
               checkpoint="toy", config={"model": "toy-1"}, plot=False, progress=False)
    return state["model"], hist
'''

CHECKER = '''"""Chapter 99's exercise checker."""
import torch

from .framework import Report, _require_callable, call, compare

HINTS = {"99.1": ("Doubling is one multiplication.", "Multiply the tensor by a Python number.")}


def check_double(fn) -> None:
    """Exercise 99.1: double(x) -> 2 x, same shape."""
    _require_callable(fn, "double", "check_double(double)")
    r = Report("double")
    x = torch.arange(6.0).view(2, 3)
    out, err = call(fn, x.clone())
    if err:
        r.fail("a 2x3 tensor", err)
    else:
        why = compare(out, 2 * x, {"the input came back unchanged": x, "squared, not doubled": x * x},
                      "same shape as the input")
        r.fail("a 2x3 tensor", why) if why else r.ok("a 2x3 tensor")
    return r.finish()
'''


def toy_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import torch\nimport genai_helpers as gh\nenv = gh.setup(seed=0)"),
        nbformat.v4.new_markdown_cell("## Exercise 99.1: double a tensor"),
        nbformat.v4.new_code_cell(f"def double(x):\n    {BEGIN}\n    return x * 2\n    {END}\n\n\n"
                                  f"# double = gh.toy.reference_double  {SKIP}"),
        nbformat.v4.new_code_cell("gh.checks.check_double(double)"),
        nbformat.v4.new_code_cell("model, hist = gh.toy.reference_toy()\n"
                                  "print(f\"a = {model.weight.item():.2f}\")\n"
                                  "assert abs(model.weight.item() - 2) < 0.1"),
    ]
    return nb


@pytest.fixture
def toy_repo(tmp_path):
    """A copy of the package with the toy chapter added the way CONTRIBUTING.md says."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "genai_helpers", repo / "genai_helpers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", repo)
    pkg = repo / "genai_helpers"
    (pkg / "toy.py").write_text(MODEL)  # step 2: the chapter's models
    (pkg / "checks" / "toy.py").write_text(CHECKER)  # step 3: checker and hints ...
    init = pkg / "checks" / "__init__.py"
    init.write_text(init.read_text() + "\nfrom .toy import check_double  # noqa: E402\n"
                    "__all__.append(\"check_double\")\n")  # ... exported ...
    hints = pkg / "hints.py"
    source = hints.read_text()
    assert "_MODULES = (" in source
    hints.write_text(source.replace("_MODULES = (", "from .checks import toy  # noqa: E402\n\n_MODULES = (toy, ", 1))
    (repo / "notebooks").mkdir()
    nbformat.write(toy_notebook(), repo / "notebooks" / "99_toy.ipynb")  # step 1: the notebook
    return repo


def test_a_toy_chapter_follows_the_contributing_steps(toy_repo, tmp_path):
    (student,) = make_student_version(toy_repo / "notebooks", tmp_path / "student")
    nb = nbformat.read(student, as_version=4)
    exercise = nb.cells[2].source
    assert "return x * 2" not in exercise and "NotImplementedError" in exercise
    nb.cells[2].source = take_references(exercise)
    assert "\ndouble = gh.toy.reference_double" in nb.cells[2].source

    env = {**os.environ, "PYTHONPATH": str(toy_repo), "GENAI_QUICK": "1", "GENAI_OFFLINE": "1",
           "GENAI_DATA": str(tmp_path / "data"), "GENAI_CHECKPOINTS": str(tmp_path / "checkpoints"),
           "MPLBACKEND": "Agg"}
    nb.cells.insert(0, nbformat.v4.new_code_cell(  # the kernel imports the copy, not this repository
        f"import sys; sys.path.insert(0, {str(toy_repo)!r})\nimport os; os.environ.update({env!r})"))
    nb.cells.append(nbformat.v4.new_code_cell(
        "assert gh.__file__.startswith(%r)\ngh.hint('99.1')" % str(toy_repo)))
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "a = " in out and "Doubling is one multiplication" in out  # the cell asserted |a - 2| < 0.1
    checked = nb.cells[4].outputs  # the checker's cell: it passed
    assert not any(o.get("output_type") == "error" for o in checked)
