"""The checker framework: a report of cases, calling student code safely, comparing with
named mistakes."""
from __future__ import annotations

import torch

from ..i18n import _


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
        self.failures.append(_("{case}: {why}").format(case=case, why=why))

    def finish(self) -> None:
        """Print the verdict; raise CheckFailed if anything failed."""
        total = len(self.passed) + len(self.failures)
        # TRANSLATORS: what separates the names of the checks that passed
        passed = _("; ").join(self.passed)
        if not self.failures:
            print(_("✅ {name}: all {total} checks passed ({passed}).").format(
                name=self.name, total=total, passed=passed))
            return
        lines = [_("❌ {name}: {n_failures} of {total} checks failed.").format(
            name=self.name, n_failures=len(self.failures), total=total)]
        lines += [f"   - {f}" for f in self.failures]
        if self.passed:
            lines.append(_("   passed: {passed}").format(passed=passed))
        raise CheckFailed("\n".join(lines))


def _require_callable(fn, name: str, example: str):
    if not callable(fn):
        raise CheckFailed(_("❌ {name}: pass your function itself, e.g. {example} (got {type}: {fn!r:.60}).").format(
            name=name, example=example, type=type(fn).__name__, fn=fn))


def call(fn, *args):
    """Run the student's function; return (output, None) or (None, message about the error)."""
    try:
        return fn(*args), None
    except NotImplementedError as e:
        hint = _(" Hint: {hint}").format(hint=e) if str(e) else ""
        return None, _("not implemented yet: replace `raise NotImplementedError` with your code.{hint}").format(
            hint=hint)
    except Exception as e:  # the student's bug, reported as a sentence
        return None, _("your function raised {type}: {message}").format(
            type=type(e).__name__, message=str(e).splitlines()[0] if str(e) else "")


def _as_tensor(out, what: str):
    if isinstance(out, (tuple, list)):
        return None, _("return one tensor ({what}), not a {type} of {n_out} items").format(
            what=what, type=type(out).__name__, n_out=len(out))
    if not torch.is_tensor(out):
        return None, _("return a torch tensor ({what}), not {type}").format(what=what, type=type(out).__name__)
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
                return _("expected shape {ref_shape} but got {out_shape}: {desc}").format(
                    ref_shape=tuple(ref.shape), out_shape=tuple(out.shape), desc=desc)
        if out.dim() == ref.dim() == 2 and out.shape == ref.shape[::-1]:
            return (_("expected shape {ref_shape} but got {out_shape}: the two dimensions are swapped").format(
                ref_shape=tuple(ref.shape), out_shape=tuple(out.shape)))
        return _("expected shape {ref_shape} ({what}) but got {out_shape}").format(
            ref_shape=tuple(ref.shape), what=what, out_shape=tuple(out.shape))
    out = out.detach().float()
    if torch.allclose(out, ref.float(), atol=atol, rtol=rtol):
        return None
    if not torch.isfinite(out).all():
        return _("the result contains nan or inf")
    for desc, wrong in mistakes.items():
        if torch.is_tensor(wrong) and wrong.shape == out.shape and torch.allclose(
                out, wrong.float(), atol=atol, rtol=rtol):
            return desc
    err = (out - ref).abs().max().item()
    return _("the values are off (largest difference {err:.3g}); compare your formula with the text").format(err=err)


def _scalar(out):
    """A Python number becomes a 0-dim tensor (exercises that return one number accept both)."""
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return torch.tensor(float(out))
    return out
