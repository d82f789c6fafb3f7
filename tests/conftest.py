"""Fixtures shared by the unit tests (the repository's conftest.py sets quick mode and the
checkpoint folder for all of pytest)."""
import socket

import pytest
import torch
from torch import nn

import genai_helpers as gh
from genai_helpers import data
from genai_helpers import seq2seq as S
from genai_helpers.dates import DateCorpus, Vocab


# --- helpers shared by several test modules (fixtures, so no test module imports another) -------

def _regression(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    return x, y


def _mse_step(model, opt):
    """The step of the regression tasks: one optimiser step on the mean squared error."""
    def step(batch):
        x, y = batch
        loss = (model(x).squeeze(1) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    return step


def _task(seed=0, lr=0.05):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = gh.adam(model.parameters(), lr=lr)
    return model, opt, _mse_step(model, opt)


def _sgd_task(lr, seed=0):
    torch.manual_seed(seed)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return model, opt, _mse_step(model, opt)


def _run(epochs, **kw):
    model, opt, step = _task()
    hist = gh.fit(step, _regression(), state={"model": model, "opt": opt}, epochs=epochs,
                  batch_size=32, plot=False, progress=False, **kw)
    return model, opt, hist


@pytest.fixture
def regression():
    """regression(n=256, seed=0) -> (x (n, 4), y (n,)): a small linear regression data set."""
    return _regression


@pytest.fixture
def task():
    """task(seed=0, lr=0.05) -> (model, opt, step): a small MLP and its step for `gh.fit`."""
    return _task


@pytest.fixture
def sgd_task():
    """sgd_task(lr, seed=0) -> (model, opt, step): a linear model under plain SGD, whose steps
    overshoot more and more on `regression` when lr is above 2 / the largest curvature (about 1)."""
    return _sgd_task


@pytest.fixture
def run():
    """run(epochs, **fit_kwargs) -> (model, opt, history): `task` fitted on `regression`."""
    return _run


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A fresh, empty data folder (GENAI_DATA) with the MNIST cache cleared."""
    monkeypatch.setenv("GENAI_DATA", str(tmp_path))
    monkeypatch.delenv("GENAI_OFFLINE", raising=False)
    data._CACHE.clear()
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection and DNS lookup is refused."""
    def refuse(*a, **k):
        raise ConnectionRefusedError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _write_idx(path, magic, count, item, fill=0):
    header = magic.to_bytes(4, "big") + count.to_bytes(4, "big")
    header += (28).to_bytes(4, "big") * 2 if magic == 2051 else b""
    path.write_bytes(header + bytes([fill]) * (count * item))


def _fake_full_mnist(root):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, (magic, count, item) in data.MNIST_FILES.items():
        _write_idx(raw / name, magic, count, item)
    return raw


@pytest.fixture
def fake_full_mnist():
    """fake_full_mnist(root) -> the raw folder: four IDX files of full MNIST's sizes (all zeros)."""
    return _fake_full_mnist


@pytest.fixture(scope="module")
def untrained():
    """An untrained small Seq2Seq with the date corpus's vocabularies (translate's input checks)."""
    corpus = DateCorpus()
    torch.manual_seed(0)
    m = S.Seq2Seq(Vocab(corpus.characters()), Vocab("0123456789- "), hidden=16, dec_hidden=16)
    m.max_src_len, m.locales = 40, corpus.locales
    return m.eval()


def _verdict(checker, fn) -> str:
    """What a checker says about fn: its message, or "passed"."""
    try:
        checker(fn)
    except gh.checks.CheckFailed as e:
        return str(e)
    return "passed"


@pytest.fixture
def verdict():
    """verdict(checker, fn) -> the checker's message about fn, or "passed"."""
    return _verdict
