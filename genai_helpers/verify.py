"""Numerical checks that count themselves: each one compares, prints the comparison, and asserts.

    checks = gh.verify.Checklist()
    checks.close("closed form = torch.distributions", ours, library, atol=1e-9)
    checks.holds("ELBO <= log p(x) for 1000 random q", bool((elbo <= logp).all()), "largest gap 0.3")
    gh.save_results("01_math", **checks.counts(), ...)

The count is taken where the check runs, so `checks_passed == checks_total` in a results file
means every counted check computed something and held.
"""
from __future__ import annotations

import math

from .i18n import _


class CheckError(AssertionError):
    """A numerical check of the text did not hold."""


class Checklist:
    """Runs numbered numerical checks; a failed one raises CheckError after printing why."""

    def __init__(self):
        self.passed = 0
        self.total = 0
        self.values: dict[str, float] = {}

    def close(self, what: str, got, want, atol: float = 0.0, rtol: float = 0.0,
              digits: int = 6) -> None:
        """Check |got - want| <= atol + rtol * |want|; print both values."""
        got, want = _number(got, "got"), _number(want, "want")
        if atol < 0 or rtol < 0 or atol + rtol == 0:
            raise ValueError(_("give a tolerance: atol and/or rtol, both >= 0, not both 0"))
        diff = abs(got - want)
        tol = atol + rtol * abs(want)
        ok = math.isfinite(diff) and diff <= tol
        got_s, want_s = f"{got:.{digits}g}", f"{want:.{digits}g}"
        if want == 0:  # an error measured against zero: one number says it all
            detail = (_("{got:.2g} (tolerance {tol:.0e})").format(got=got, tol=tol) if ok else
                      _("{got:.3g} exceeds the tolerance {tol:.3g}").format(got=got, tol=tol))
        elif ok:
            detail = _("{got} vs {want} (|difference| {diff:.1e} <= {tol:.1e})").format(
                got=got_s, want=want_s, diff=diff, tol=tol)
        else:
            detail = _("{got} vs {want}: |difference| {diff:.3g} exceeds {tol:.3g}").format(
                got=got_s, want=want_s, diff=diff, tol=tol)
        self._record(what, ok, detail)
        self.values[what] = got

    def holds(self, what: str, condition, detail: str = "") -> None:
        """Check that `condition` is true; `detail` says what was measured."""
        if hasattr(condition, "all"):
            condition = bool(condition.all())
        if not isinstance(condition, bool):
            raise TypeError(_("condition must be a bool (or a tensor to reduce with .all()), got {type}").format(
                type=type(condition).__name__))
        self._record(what, condition, detail)

    def counts(self) -> dict:
        """{"checks_passed": ..., "checks_total": ...} for the results file."""
        return {"checks_passed": self.passed, "checks_total": self.total}

    def _record(self, what: str, ok: bool, detail: str):
        self.total += 1
        mark = "✔" if ok else "✘"
        if detail:
            print(_("{mark} check {n}: {what}: {detail}").format(mark=mark, n=self.total, what=what, detail=detail))
        else:
            print(_("{mark} check {n}: {what}").format(mark=mark, n=self.total, what=what))
        if not ok:
            raise CheckError(_("check {n} failed: {what}: {detail}").format(n=self.total, what=what, detail=detail)
                             if detail else _("check {n} failed: {what}").format(n=self.total, what=what))
        self.passed += 1


def _number(x, name: str) -> float:
    if hasattr(x, "item"):
        if getattr(x, "numel", lambda: 1)() != 1:
            raise ValueError(_("{name} must be one number, got a tensor of shape {shape}").format(
                name=name, shape=tuple(x.shape)))
        x = x.item()
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TypeError(_("{name} must be a number, got {type}").format(name=name, type=type(x).__name__)) from None
