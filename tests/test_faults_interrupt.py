"""Ctrl-C (a Jupyter interrupt): the model and the history are kept, and fit continues."""

import os
import signal
import threading

import pytest

import genai_helpers as gh

def test_keyboard_interrupt_keeps_model_and_history_and_continues(regression, run, task):
    model, opt, step = task()
    data = regression()
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return step(batch)

    hist = gh.fit(flaky, data, state={"model": model, "opt": opt}, epochs=3, batch_size=32,
                  plot=False, progress=False)
    assert "interrupted" in hist.stopped and hist.step == 12 and hist.epoch == 1 and hist.batch == 4
    hist = gh.fit(flaky, data, state={"model": model, "opt": opt}, epochs=3, batch_size=32,
                  history=hist, plot=False, progress=False)
    assert hist.stopped is None and hist.step == 24 and len(hist.losses["loss"]) == 24
    # the same numbers as a run that was never interrupted
    _, _, ref = run(3)
    assert hist.losses["loss"] == pytest.approx(ref.losses["loss"], abs=1e-6)


def test_a_real_sigint_stops_at_a_step_boundary_and_fit_continues(regression, run, task):
    """What Jupyter's interrupt button does: SIGINT to the kernel while a step is running."""
    model, opt, step = task()
    data = regression()
    calls = {"n": 0}
    handler = signal.getsignal(signal.SIGINT)  # default_int_handler; SIG_IGN in a background job

    def slow(batch):
        calls["n"] += 1
        if calls["n"] == 10:  # in the middle of the 10th step
            threading.Timer(0.0, os.kill, (os.getpid(), signal.SIGINT)).start()
            threading.Event().wait(0.2)
        return step(batch)

    hist = gh.fit(slow, data, state={"model": model, "opt": opt}, epochs=3, batch_size=32, plot=False,
                  progress=False)
    assert "interrupted" in hist.stopped and hist.step == 10  # the 10th step was finished, not torn
    assert signal.getsignal(signal.SIGINT) is handler  # the handler is given back
    hist = gh.fit(step, data, state={"model": model, "opt": opt}, epochs=3, batch_size=32, history=hist,
                  plot=False, progress=False)
    _, _, ref = run(3)
    assert hist.stopped is None and hist.losses["loss"] == pytest.approx(ref.losses["loss"], abs=1e-6)
