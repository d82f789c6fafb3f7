"""The course's MNIST classifier: the network, its augmentation, its trainer and its accuracy.

Its features stand in for Inception-v3's in the classifier-FID of `gh.metrics` (Inception
weights cannot be downloaded offline and know nothing of digits); chapters 03, 05 and 06 use it
to judge generated digits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .data import MNIST
from .distributed import per_example
from .runtime import evaluating, expect_input, pick
from .schedules import LinearDecay
from .train import adam, epochs_for, fit, steps_per_epoch
from .i18n import _


def random_shift(x, max_shift: int = 1):
    """Move each image by up to `max_shift` pixels in x and y (zero padding): augmentation.
    (Under torchrun, each image gets the shift one process would draw for it: gh.distributed.)"""
    b, __, h, w = x.shape
    m = max_shift
    padded = nn.functional.pad(x, (m, m, m, m))
    off = per_example(lambda n: torch.randint(0, 2 * m + 1, (2, n), device=x.device), b, dim=1)
    rows = (torch.arange(h, device=x.device) + off[0, :, None])[:, :, None]
    cols = (torch.arange(w, device=x.device) + off[1, :, None])[:, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None], 0, rows, cols].unsqueeze(1)


class MnistClassifier(nn.Module):
    """Two strided convs and a 128-unit feature layer; `features(x)` are the FID features."""

    num_features = 128

    def __init__(self, width: int = 32, dropout: float = 0.25):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.ReLU(),  # 14x14
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.ReLU(),  # 7x7
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * w * 49, self.num_features), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, 10))

    def features(self, x):
        """Penultimate-layer features of images in [0, 1], shape (N, 128)."""
        expect_input(x, (None, 1, 28, 28), "MnistClassifier", self)
        return self.body(x)

    def forward(self, x):
        return self.head(self.features(x))


def check_images(x) -> torch.Tensor:
    """x as float, or a ValueError unless it is a batch of MNIST-shaped images in [0, 1]."""
    if not torch.is_tensor(x) or x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(_("expected MNIST-shaped images, a tensor (N, 1, 28, 28) with values in [0, 1]; got "
                           "{got}").format(got=getattr(x, "shape", type(x).__name__)))
    if x.min() < -0.01:
        raise ValueError(_("the images have negative values: pass them in [0, 1] (a tanh generator's output x becomes "
                           "(x + 1) / 2; G.sample does it)"))
    return x.float()


@torch.no_grad()
def batched(fn, x, batch: int = 1000) -> torch.Tensor:
    """fn applied to x in batches of `batch` rows, without grad, concatenated."""
    return torch.cat([fn(b) for b in x.split(batch)])


@torch.no_grad()
def accuracy(model: nn.Module, x, y) -> float:
    """Share of images whose predicted class is the label."""
    with evaluating(model):
        pred = batched(model, check_images(x)).argmax(1)
    return (pred == y).float().mean().item()


CLASSIFIER_STEPS = {"full": 800, "quick": 400}


def build_classifier(device, total_steps: int, seed: int = 0) -> tuple[dict, object]:
    """The MNIST classifier as the course trains it (Adam 2e-3, random 2-pixel shifts, the last
    half of `total_steps` decayed): (state for `gh.fit`, step on (images, labels) batches)."""
    torch.manual_seed(seed)
    model = MnistClassifier().to(device)
    opt = adam(model.parameters(), lr=2e-3)
    schedule = LinearDecay([opt], total_steps, 0.5)

    def step(batch):
        x, y = batch
        schedule()
        loss = F.cross_entropy(model(random_shift(x, 2)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss}

    return {"model": model, "opt": opt}, step


def mnist_classifier(mnist: MNIST, plot: bool = False) -> MnistClassifier:
    """The course's MNIST classifier (98% test accuracy on the offline sample), trained once with
    random 2-pixel shifts and cached as data/checkpoints/mnist_classifier[-quick].pt; in eval mode."""
    epochs = epochs_for(pick(**CLASSIFIER_STEPS), len(mnist.train_x), 128)
    state, step = build_classifier(mnist.device, epochs * steps_per_epoch(len(mnist.train_x), 128))
    model = state["model"]
    fit(step, (mnist.train_x, mnist.train_labels), state=state, epochs=epochs,
        batch_size=128, eval_fn=lambda: {"test_accuracy": accuracy(model, mnist.test_x, mnist.test_labels)},
        checkpoint="mnist_classifier", config={"model": "MnistClassifier-1", "data": mnist.source},
        desc="MNIST classifier", plot=plot)
    return model.eval()
