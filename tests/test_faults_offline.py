"""Offline: with the network refused, every loader falls back within seconds and says so, and
nothing in the course touches the network when it is imported."""
import socket
import subprocess
import sys
import time

import pytest

from genai_helpers import data

def test_falls_back_fast_with_network_blocked(data_root, no_network, capsys, monkeypatch):
    t = time.perf_counter()
    src = data.mnist_source()  # the network probe: refused at once, so no timeout to wait for
    assert time.perf_counter() - t < 5
    slept = []
    monkeypatch.setattr(time, "sleep", lambda s: slept.append(s))
    m = data.load_mnist(device="cpu")  # reading the sample takes CPU time; it must not wait and retry
    assert sum(slept) < 1, f"loading waited {sum(slept):.1f} s for a network that refused at once"
    assert src.kind == "sample" and "no network" in src.description
    assert m.source == "sample"
    assert "offline MNIST sample" in capsys.readouterr().out


def test_offline_flag_skips_the_network(data_root, monkeypatch):
    monkeypatch.setenv("GENAI_OFFLINE", "1")
    monkeypatch.setattr(data, "_reachable", lambda *a, **k: pytest.fail("probed the network"))
    assert data.mnist_source().kind == "sample"


def test_setup_and_doctor_work_offline(data_root, no_network, capsys, monkeypatch):
    import genai_helpers as gh

    slept = []
    monkeypatch.setattr(time, "sleep", lambda s: slept.append(s))
    t = time.perf_counter()
    env = gh.setup(seed=0)
    assert time.perf_counter() - t < 5  # setup's probe is refused at once
    assert gh.doctor.doctor() in (True, False)  # it imports every package: CPU time, no waiting
    assert sum(slept) < 1, f"setup and doctor waited {sum(slept):.1f} s for a network that refused at once"
    assert "no network" in env.data_source and "no network" in capsys.readouterr().out


def test_a_download_that_fails_falls_back_and_says_why(data_root, monkeypatch, capsys):
    monkeypatch.setattr(data, "_reachable", lambda *a, **k: True)  # the probe passes ...
    monkeypatch.setattr(socket, "create_connection",
                        lambda *a, **k: (_ for _ in ()).throw(ConnectionResetError("reset by the test")))
    monkeypatch.setattr(socket.socket, "connect",
                        lambda *a, **k: (_ for _ in ()).throw(ConnectionResetError("reset by the test")))
    t = time.perf_counter()
    m = data.load_mnist(device="cpu")  # ... but the download breaks
    assert time.perf_counter() - t < 30 and m.source == "sample"
    out = capsys.readouterr().out
    assert "MNIST download failed" in out and "offline sample" in out
    assert not (data_root / "MNIST").exists() and not list(data_root.glob("MNIST.partial*/MNIST"))


def test_nothing_touches_the_network_at_import_time():
    code = """
import pkgutil, importlib, socket
attempts = []
def refuse(*a, **k):
    attempts.append(a)
    raise ConnectionRefusedError("blocked")
socket.create_connection = refuse
socket.getaddrinfo = refuse
socket.socket.connect = refuse
import genai_helpers
for m in pkgutil.iter_modules(genai_helpers.__path__):
    if m.name != "__main__":
        importlib.import_module("genai_helpers." + m.name)
print(len(attempts))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0"
