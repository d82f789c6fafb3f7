"""Every exercise checker answers bad input, unfinished work and crashes with a message, never a
traceback: one parametrised test over all the `gh.checks.check_*` functions (each chapter's
tests/test_checks_NN.py then tests only what its checkers know about their exercise)."""
import re

import pytest

from genai_helpers import checks

CHECKERS = sorted(name for name in dir(checks) if name.startswith("check_") and callable(getattr(checks, name)))


def test_the_checkers_are_found():
    assert len(CHECKERS) >= 20 and "check_kl" in CHECKERS


@pytest.mark.parametrize("name", CHECKERS)
def test_bad_input_gets_a_message(name, verdict):
    checker = getattr(checks, name)

    def stub(*args):
        raise NotImplementedError("a one-line hint")

    v = verdict(checker, stub)
    assert "not implemented yet" in v and "a one-line hint" in v
    assert "raised ZeroDivisionError" in verdict(checker, lambda *a: 1 / 0)
    for bad in (None, 3, "my_function"):
        assert re.search("pass your (function|class) itself", verdict(checker, bad))
    for wrong in (None, "text"):  # a function that returns junk gets a verdict, not a traceback
        assert "❌" in verdict(checker, lambda *a, wrong=wrong: wrong)
