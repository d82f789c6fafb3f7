"""Levelled hints for the exercises, asked for by the student: `gh.hint("2.1")`.

A hint is a choice, not a spoiler. Each call gives the next level for that exercise:
level 1 points at the idea (which formula, which section above), level 2 at the tools (which
functions, which shapes). No hint contains solution code; `tests/test_student.py` fails when a
solution line, or a long fragment of one, appears in a hint.

The hints of each chapter live next to its checkers, as `HINTS = {"2.1": ("idea", "tools")}` in
`genai_helpers/checks/<chapter>.py`; this module gathers them and remembers, per kernel, how far
each exercise has gone.
"""
from __future__ import annotations

from .checks import applications, evaluation, gans, mathematics, seq2seq, vae, warmup

_MODULES = (warmup, mathematics, vae, gans, seq2seq, applications, evaluation)
_given: dict[str, int] = {}


def all_hints() -> dict[str, tuple[str, ...]]:
    """Every exercise's hints, by exercise number ("2.1"), gathered from the checker modules."""
    found: dict[str, tuple[str, ...]] = {}
    for module in _MODULES:
        for exercise, levels in getattr(module, "HINTS", {}).items():
            if exercise in found:
                raise ValueError(f"exercise {exercise} has hints in two checker modules")
            found[exercise] = tuple(levels)
    return found


def hint(exercise: str, level: int | None = None) -> None:
    """Print the next hint for `exercise` (or the hint of that `level`, counted from 1)."""
    hints = all_hints()
    exercise = str(exercise)
    if exercise not in hints:
        known = ", ".join(sorted(hints, key=lambda k: tuple(int(p) for p in k.split("."))))
        raise ValueError(f"no exercise {exercise!r} has hints; the exercises with hints are: {known}. "
                         'Write the number as a string, e.g. gh.hint("2.1").')
    levels = hints[exercise]
    if level is None:
        level = _given.get(exercise, 0) + 1
    if not 1 <= level <= len(levels) + 1:
        raise ValueError(f"exercise {exercise} has hint levels 1 to {len(levels)}, not {level}")
    _given[exercise] = min(level, len(levels) + 1)
    if level > len(levels):
        print(f"💡 Exercise {exercise}: no more hints (you have seen all {len(levels)}). Read the checker's "
              "verdict again, it names the probable mistake; or go on without the exercise by removing "
              "the '# ' in front of the line marked ⏭ in the exercise cell.")
        return
    more = (f' Run gh.hint("{exercise}") again for the next level.' if level < len(levels)
            else " That was the last level.")
    print(f"💡 Exercise {exercise}, hint {level} of {len(levels)}: {levels[level - 1]}{more}")


__all__ = ["all_hints", "hint"]
