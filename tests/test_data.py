import socket

import pytest
import torch

from genai_helpers import data


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_DATA", str(tmp_path))
    monkeypatch.delenv("GENAI_OFFLINE", raising=False)
    data._CACHE.clear()
    return tmp_path


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise ConnectionRefusedError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_sample_split_is_fixed_balanced_and_disjoint(data_root, monkeypatch):
    monkeypatch.setenv("GENAI_OFFLINE", "1")
    m = data.load_mnist(device="cpu", quick=False)
    assert m.source == "sample"
    assert m.train_images.shape == (4000, 1, 28, 28) and m.train_images.dtype == torch.uint8
    assert m.test_images.shape == (1000, 1, 28, 28)
    assert torch.bincount(m.test_labels).tolist() == [100] * 10
    assert torch.bincount(m.train_labels).tolist() == [400] * 10
    assert 0 <= m.train_x.min() and m.train_x.max() <= 1 and m.train_x.dtype == torch.float32
    # no test image is in the training set
    train = {bytes(x.numpy()) for x in m.train_images}
    assert not any(bytes(x.numpy()) in train for x in m.test_images)
    data._CACHE.clear()
    again = data.load_mnist(device="cpu", quick=False)
    assert torch.equal(again.test_images, m.test_images)




def write_idx(path, magic, count, item, fill=0):
    header = magic.to_bytes(4, "big") + count.to_bytes(4, "big")
    header += (28).to_bytes(4, "big") * 2 if magic == 2051 else b""
    path.write_bytes(header + bytes([fill]) * (count * item))


def fake_full_mnist(root):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, (magic, count, item) in data.MNIST_FILES.items():
        write_idx(raw / name, magic, count, item)
    return raw


def test_full_mnist_in_data_folder_is_used(data_root):
    fake_full_mnist(data_root)
    assert data.mnist_source().kind == "full"
    m = data.load_mnist(device="cpu", quick=False)
    assert m.source == "full" and m.train_images.shape == (60000, 1, 28, 28)




def test_ring_has_eight_distinct_centres():
    c = data.ring_centres(8, 2.0)
    assert torch.cdist(c, c).add(torch.eye(8) * 10).min() > 1.5
    x = data.ring_of_gaussians(1000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1000, 2) and torch.allclose(x.norm(dim=1).mean(), torch.tensor(2.0), atol=0.01)
