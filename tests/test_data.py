
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
