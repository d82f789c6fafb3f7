"""Just enough of Keras, in PyTorch, to run the article's §5.2 GAN code line by line and see
its bugs happen (chapter 03). Not for training anything: the course's loop is `gh.fit`.

Keras semantics kept: `Dense` acts on the last axis (like nn.Linear), `Reshape` keeps the batch
axis, `compile` fixes the optimiser, the loss and the trainable weights (so `trainable = False`
set before compiling a combined model freezes a part of it), `predict` returns NumPy arrays,
`train_on_batch` does one optimiser step and returns the loss as a float.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Reshape(nn.Module):
    """Keras' Reshape(target_shape): reshapes everything but the batch axis."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(len(x), *self.shape)


class KerasSequential(nn.Sequential):
    """nn.Sequential with Keras' compile / train_on_batch / predict and `trainable`."""

    trainable = True

    def _trainable_parameters(self):
        for m in self:
            if isinstance(m, KerasSequential):
                if m.trainable:
                    yield from m._trainable_parameters()
            else:
                yield from m.parameters()

    def compile(self, optimizer, loss):
        """optimizer: a function params -> torch optimiser; loss: function (output, target) -> loss."""
        self.optimizer = optimizer(list(self._trainable_parameters()))
        self.loss = loss

    def train_on_batch(self, x, y) -> float:
        if getattr(self, "optimizer", None) is None:
            # the message Keras 2 (tf.keras) gives; Keras 3 raises ValueError("You must call
            # `compile()` before ...") instead
            raise RuntimeError("You must compile your model before training/testing. "
                               "Use `model.compile(optimizer, loss)`.")
        x, y = (torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in (x, y))
        loss = self.loss(self(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def predict(self, x) -> np.ndarray:
        return self(torch.as_tensor(np.asarray(x), dtype=torch.float32)).numpy()


def article_generator(latent_dim: int = 100) -> KerasSequential:
    """§5.2's generator, layer for layer: Dense layers applied to 4-D tensors (ERRATA 14)."""
    return KerasSequential(
        nn.Linear(latent_dim, 128 * 7 * 7), nn.ReLU(), Reshape(7, 7, 128),
        nn.Linear(128, 128 * 14 * 14), nn.ReLU(), Reshape(14, 14, 128),
        nn.Linear(128, 1 * 28 * 28), nn.Tanh(), Reshape(28, 28, 1))


class _ChannelsLast(nn.Module):
    """Keras images are (N, H, W, C); PyTorch convolutions want (N, C, H, W)."""

    def __init__(self, to_last: bool):
        super().__init__()
        self.order = (0, 2, 3, 1) if to_last else (0, 3, 1, 2)

    def forward(self, x):
        return x.permute(*self.order)


def intended_generator(latent_dim: int = 100) -> KerasSequential:
    """What §5.2's generator meant: the same shapes, (7, 7, 128) -> (14, 14, 128) -> (28, 28, 1),
    reached with transposed convolutions instead of Dense layers."""
    return KerasSequential(
        nn.Linear(latent_dim, 128 * 7 * 7), nn.ReLU(), Reshape(7, 7, 128), _ChannelsLast(False),
        nn.ConvTranspose2d(128, 128, 4, 2, 1), nn.ReLU(),  # 14 x 14 x 128
        nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh(), _ChannelsLast(True))  # 28 x 28 x 1


def article_discriminator() -> KerasSequential:
    """§5.2's discriminator: Flatten, Dense(128, relu), Dense(1, sigmoid)."""
    return KerasSequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 1), nn.Sigmoid())


def keras_adam(lr: float = 2e-4, beta_1: float = 0.5):
    """Keras' Adam(learning_rate, beta_1) as an optimiser factory for `compile` (epsilon 1e-7)."""
    return lambda params: torch.optim.Adam(params, lr=lr, betas=(beta_1, 0.999), eps=1e-7)


def binary_crossentropy(output, target):
    """Keras' binary_crossentropy on probabilities (clipped to [1e-7, 1 - 1e-7])."""
    return nn.functional.binary_cross_entropy(output.clamp(1e-7, 1 - 1e-7), target)
