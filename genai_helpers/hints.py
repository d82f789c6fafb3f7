"""Levelled hints for the exercises, asked for by the student: `gh.hint("2.1")`.

A hint is a choice, not a spoiler. Each call gives the next level for that exercise:
level 1 points at the idea (which formula, which section above), level 2 at the tools (which
functions, which shapes). No hint contains solution code; `tests/test_student.py` fails when a
solution line, or a long fragment of one, appears in a hint.

The hints of each chapter live next to its checkers, as `HINTS = {"2.1": ("idea", "tools")}` in
`genai_helpers/checks/<chapter>.py`; this module gathers them and remembers, per kernel, how far
each exercise has gone. Hints are written in English (marked `N_()` for the catalog) and shown
in the language of the course (`_()` when printed).
"""
from __future__ import annotations

from .checks import applications, evaluation, gans, mathematics, seq2seq, vae, warmup
from .i18n import _

_MODULES = (warmup, mathematics, vae, gans, seq2seq, applications, evaluation)
_given: dict[str, int] = {}


def all_hints() -> dict[str, tuple[str, ...]]:
    """Every exercise's hints, by exercise number ("2.1"), gathered from the checker modules."""
    found: dict[str, tuple[str, ...]] = {}
    for module in _MODULES:
        for exercise, levels in getattr(module, "HINTS", {}).items():
            if exercise in found:
                raise ValueError(_("exercise {exercise} has hints in two checker modules").format(exercise=exercise))
            found[exercise] = tuple(levels)
    return found


def hint(exercise: str, level: int | None = None) -> None:
    """Print the next hint for `exercise` (or the hint of that `level`, counted from 1)."""
    hints = all_hints()
    exercise = str(exercise)
    if exercise not in hints:
        known = ", ".join(sorted(hints, key=lambda k: tuple(int(p) for p in k.split("."))))
        raise ValueError(_("no exercise {exercise!r} has hints; the exercises with hints are: {known}. Write the "
                           'number as a string, e.g. gh.hint("2.1").').format(exercise=exercise, known=known))
    levels = hints[exercise]
    if level is None:
        level = _given.get(exercise, 0) + 1
    if not 1 <= level <= len(levels) + 1:
        raise ValueError(_("exercise {exercise} has hint levels 1 to {n_levels}, not {level}").format(
            exercise=exercise, n_levels=len(levels), level=level))
    _given[exercise] = min(level, len(levels) + 1)
    if level > len(levels):
        print(_("💡 Exercise {exercise}: no more hints (you have seen all {n_levels}). Read the checker's verdict "
                "again, it names the probable mistake; or go on without the exercise by removing the '# ' in front of "
                "the line marked ⏭ in the exercise cell.").format(exercise=exercise, n_levels=len(levels)))
        return
    if level < len(levels):
        more = _(' Run gh.hint("{exercise}") again for the next level.').format(exercise=exercise)
    else:
        more = _(" That was the last level.")
    print(_("💡 Exercise {exercise}, hint {level} of {n_levels}: {hint}{more}").format(
        exercise=exercise, level=level, n_levels=len(levels), hint=_(levels[level - 1]), more=more))


__all__ = ["all_hints", "hint"]
