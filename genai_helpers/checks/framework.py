"""The checker framework: a report of cases, calling student code safely, comparing with
named mistakes."""
from __future__ import annotations

import torch


class CheckFailed(Exception):
    """An exercise is not right yet; Jupyter shows only the message, no traceback."""

    def _render_traceback_(self):
        return str(self).splitlines()


class Report:
    """Collects what passed and what failed for one exercise."""

    def __init__(self, name: str):
        self.name, self.passed, self.failures = name, [], []

    def ok(self, case: str):
        self.passed.append(case)

    def fail(self, case: str, why: str):
        self.failures.append(f"{case}: {why}")

    def finish(self) -> None:
        """Print the verdict; raise CheckFailed if anything failed."""
        total = len(self.passed) + len(self.failures)
        if not self.failures:
            print(f"✅ {self.name}: all {total} checks passed ({'; '.join(self.passed)}).")
            return
        lines = [f"❌ {self.name}: {len(self.failures)} of {total} checks failed."]
        lines += [f"   - {f}" for f in self.failures]
        if self.passed:
            lines.append(f"   passed: {'; '.join(self.passed)}")
        raise CheckFailed("\n".join(lines))


def _require_callable(fn, name: str, example: str):
    if not callable(fn):
        raise CheckFailed(f"❌ {name}: pass your function itself, e.g. {example} "
                          f"(got {type(fn).__name__}: {fn!r:.60}).")


def call(fn, *args):
    """Run the student's function; return (output, None) or (None, message about the error)."""
    try:
        return fn(*args), None
    except NotImplementedError as e:
        hint = f" Hint: {e}" if str(e) else ""
        return None, f"not implemented yet: replace `raise NotImplementedError` with your code.{hint}"
    except Exception as e:  # the student's bug, reported as a sentence
        return None, f"your function raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _as_tensor(out, what: str):
    if isinstance(out, (tuple, list)):
        return None, f"return one tensor ({what}), not a {type(out).__name__} of {len(out)} items"
    if not torch.is_tensor(out):
        return None, f"return a torch tensor ({what}), not {type(out).__name__}"
    return out, None


def compare(out, ref, mistakes: dict, what: str, atol=1e-4, rtol=1e-4) -> str | None:
    """None if `out` matches `ref`; else the probable mistake, found among `mistakes`.

    mistakes: description -> the tensor that mistake would produce.
    """
    out, err = _as_tensor(out, what)
    if err:
        return err
    if out.shape != ref.shape:
        for desc, wrong in mistakes.items():
            if torch.is_tensor(wrong) and wrong.shape == out.shape and torch.allclose(
                    out.detach().float(), wrong.float(), atol=atol, rtol=rtol):
                return f"expected shape {tuple(ref.shape)} but got {tuple(out.shape)}: {desc}"
        if out.dim() == ref.dim() == 2 and out.shape == ref.shape[::-1]:
            return (f"expected shape {tuple(ref.shape)} but got {tuple(out.shape)}: "
                    "the two dimensions are swapped")
        return f"expected shape {tuple(ref.shape)} ({what}) but got {tuple(out.shape)}"
    out = out.detach().float()
    if torch.allclose(out, ref.float(), atol=atol, rtol=rtol):
        return None
    if not torch.isfinite(out).all():
        return "the result contains nan or inf"
    for desc, wrong in mistakes.items():
        if torch.is_tensor(wrong) and wrong.shape == out.shape and torch.allclose(
                out, wrong.float(), atol=atol, rtol=rtol):
            return desc
    err = (out - ref).abs().max().item()
    return f"the values are off (largest difference {err:.3g}); compare your formula with the text"


def _scalar(out):
    """A Python number becomes a 0-dim tensor (exercises that return one number accept both)."""
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return torch.tensor(float(out))
    return out
