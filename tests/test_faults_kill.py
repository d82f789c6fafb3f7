"""SIGKILL at random moments, during checkpoint writes too: training resumes from the last
complete checkpoint, no checkpoint is ever unreadable, and the result equals an uninterrupted run."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai_helpers.checkpoint import read_checkpoint

WORKER = Path(__file__).with_name("fault_worker.py")


def start(ckpt, result, *extra):
    for marker in (f"{ckpt}.running", f"{ckpt}.writing"):
        Path(marker).unlink(missing_ok=True)
    env = {**os.environ, "GENAI_QUICK": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(WORKER), str(ckpt), str(result), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path, proc, timeout=60):
    t = time.monotonic()
    while not Path(path).exists():
        if proc.poll() is not None or time.monotonic() - t > timeout:
            return False
        time.sleep(0.005)
    return True


def assert_readable(ckpt):
    if ckpt.exists():
        payload = read_checkpoint(ckpt)  # raises if truncated or garbled
        assert payload["history"]["step"] % 3 == 0 or payload["history"]["step"] == 48


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    proc = start(d / "ref.pt", d / "ref.json")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return json.loads((d / "ref.json").read_text())


def test_killed_runs_resume_to_the_same_result(tmp_path, reference):
    rng = random.Random(1234)
    ckpt, result = tmp_path / "run.pt", tmp_path / "run.json"
    kills, steps = [], []
    for attempt in range(7):  # six kills, then a run left to finish
        during_write = attempt % 2 == 1
        proc = start(ckpt, result, "slow" if during_write else "fast")
        marker = f"{ckpt}.writing" if during_write else f"{ckpt}.running"
        if attempt < 6 and wait_for(marker, proc):
            time.sleep(rng.uniform(0, 0.15 if during_write else 0.3))
            if proc.poll() is None:
                writing = Path(f"{ckpt}.writing").exists()
                proc.send_signal(signal.SIGKILL)
                kills.append("write" if writing else "step")
        out, _ = proc.communicate(timeout=120)
        assert_readable(ckpt)
        if ckpt.exists():
            steps.append(read_checkpoint(ckpt)["history"]["step"])
        if result.exists():
            break
    assert result.exists(), f"the run never completed: {out}"
    assert steps == sorted(steps), f"a resumed run went backwards: {steps}"
    assert "write" in kills and "step" in kills, kills
    got = json.loads(result.read_text())
    assert got["step"] == reference["step"] == 48
    assert got["losses"] == pytest.approx(reference["losses"], abs=1e-6)
    assert not list(tmp_path.glob(".run.pt.*.tmp"))  # partial writes were cleaned up
