"""The package's shape, read from its source with `ast` (nothing is imported or run): short
functions, no import cycle between modules, each model built in one place."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "genai_helpers"
MAX_LINES = 80


def modules() -> dict:
    """Dotted module name -> parsed source, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return out


def test_no_function_is_longer_than_80_lines():
    long = [f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, tree in modules().values() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, "split these functions: " + ", ".join(long)


def _binds_underscore(fn) -> bool:
    """Whether a function makes `_` a local name (an argument, *_, a target or a loop variable)."""
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    names += [n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    return "_" in names


def test_no_function_hides_the_translation_function():
    """In a module that imports `_` (gettext), a function that binds `_` (e.g. `def update(*_)`)
    would call its own throwaway variable instead of translating."""
    hiding = [f"{path.name}:{node.lineno} {node.name}" for path, tree in modules().values()
              if any(isinstance(n, ast.ImportFrom) and any(a.name == "_" for a in n.names) for n in tree.body)
              for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              and _binds_underscore(node)]
    assert not hiding, "rename the `_` in these functions (it hides gettext's _): " + ", ".join(hiding)


def test_fit_reads_top_to_bottom():
    _, tree = modules()["genai_helpers.train"]
    fit = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "fit")
    assert fit.end_lineno - fit.lineno + 1 < 60
    assert not [n for n in ast.walk(fit) if isinstance(n, ast.FunctionDef) and n is not fit], "no inner functions"


def _module_level_imports(name: str, path: Path, tree: ast.Module, known: set) -> set:
    """Package modules that `name` imports when it is imported (imports inside functions excluded)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]  # where `from .` starts
    found = set()
    for node in tree.body:  # module level only, plus `if`/`try` blocks at module level
        for sub in ([node] + [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
                    if isinstance(node, (ast.If, ast.Try)) else [node]):
            if isinstance(sub, ast.ImportFrom):
                base = package.split(".")
                base = base[:len(base) - (sub.level - 1)] if sub.level else []
                target = ".".join(base + ([sub.module] if sub.module else []))
                candidates = [target] + [f"{target}.{a.name}" for a in sub.names]
            elif isinstance(sub, ast.Import):
                candidates = [a.name for a in sub.names]
            else:
                continue
            found |= {c for c in candidates if c in known and c != name}
    return found


def import_graph() -> dict:
    mods = modules()
    known = set(mods)
    return {name: _module_level_imports(name, path, tree, known) for name, (path, tree) in mods.items()}


def test_the_import_graph_is_read_right():
    graph = import_graph()
    assert "genai_helpers.runtime" in graph["genai_helpers.data"]
    assert "genai_helpers.checkpoint" in graph["genai_helpers.train"]
    assert "genai_helpers.train" in graph["genai_helpers"]


def test_no_import_cycle_between_modules():
    graph = {k: v - {"genai_helpers"} for k, v in import_graph().items() if k != "genai_helpers"}
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(cycles)


@pytest.mark.parametrize("model, pattern", [
    ("VAE", r"\bVAE\(latent_dim"),
    ("ConditionalVAE", r"\bConditionalVAE\(latent_dim"),
    ("DCGAN", r"\bDCGANGenerator\(32"),
    ("MLP GAN", r"\bMLPGenerator\(64, \(256, 512\)"),
    ("Seq2Seq", r"\bSeq2Seq\(data\.src_vocab"),
    ("MNIST classifier", r"\bMnistClassifier\(\)\.to"),
])
def test_each_course_model_is_built_in_one_place(model, pattern):
    places = [f"{path.name}:{i}" for path, _ in modules().values() if "checks" not in path.parts
              for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(pattern, line)]
    assert len(places) == 1, f"{model} is built in {places}"
