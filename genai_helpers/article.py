"""Chapter 03 runs the article's §5.2 program in real Keras (Keras 3 on the PyTorch backend).

This module holds only what real Keras cannot do here, and two small helpers:

- `keras_mnist(mnist)`: the article loads its data with `keras.datasets.mnist.load_data()`, which
  downloads MNIST from the internet; the course works offline, so this is the stand-in: the
  course's digits in the form `load_data()` returns them (uint8, shape (N, 28, 28), 0..255).
- `import_keras()`: Keras on the PyTorch backend (the backend must be chosen before the first
  import of keras).
- `first_line(error)`: "Type: message", the first informative line of an exception as Keras
  reports it (Keras wraps its messages in terminal colour codes and adds a dump of the arguments).
"""
from __future__ import annotations

import os
import re

import numpy as np

from .i18n import _


def import_keras():
    """Import Keras 3 on the PyTorch backend (KERAS_BACKEND=torch); returns the module."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    if keras.backend.backend() != "torch":
        raise RuntimeError(_("Keras was imported with the {backend!r} backend before this call; restart the kernel "
                             "(KERAS_BACKEND=torch must be set before `import keras`)").format(
            backend=keras.backend.backend()))
    return keras


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_line(error: BaseException, skip=("Exception encountered when calling",)) -> str:
    """'Type: first informative line' of an exception (colour codes and Keras' preamble removed)."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(error)).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(skip)] or lines or [""]
    return f"{type(error).__name__}: {useful[0]}"


def keras_mnist(mnist) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)) as `keras.datasets.mnist.load_data()` returns them
    (uint8 images of shape (N, 28, 28)), from the course's offline digits."""
    def images(t):
        return t.detach().cpu().reshape(len(t), 28, 28).numpy().astype(np.uint8)

    def labels(t):
        return t.detach().cpu().numpy().astype(np.uint8)

    return ((images(mnist.train_images), labels(mnist.train_labels)),
            (images(mnist.test_images), labels(mnist.test_labels)))
