"""Interactive demos (ipywidgets) that respond in milliseconds: nothing is trained on a move.

Each demo is a `Demo`: a widget box that also carries a PNG snapshot of its current state, so
that where no widget frontend runs (GitHub, nbconvert, a bare kernel) a static figure shows.
"""
from __future__ import annotations

import base64
import io

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    """Encode a (H, W) array in [0, 1] or an (H, W, 3|4) uint8 array as PNG, scaled up crisply."""
    if array.ndim == 2:
        array = (np.clip(array, 0, 1) * 255).astype(np.uint8)
    im = Image.fromarray(array)
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class Demo(W.VBox):
    """A VBox with a static fallback: `snapshot()` returns PNG bytes of the current state."""

    def __init__(self, children, snapshot, **kw):
        super().__init__(children, **kw)
        self._snapshot = snapshot

    def _repr_mimebundle_(self, **kw):
        data = super()._repr_mimebundle_(**kw)
        data["image/png"] = base64.b64encode(self._snapshot()).decode()
        return data


class _Map:
    """A matplotlib plot rendered once to pixels, on which a marker is drawn cheaply."""

    def __init__(self, fig, ax):
        fig.canvas.draw()
        self.rgba = np.asarray(fig.canvas.buffer_rgba()).copy()
        self.to_px = ax.transData.transform
        self.height = self.rgba.shape[0]
        plt.close(fig)

    def with_marker(self, x: float, y: float, radius: int = 6) -> np.ndarray:
        img = self.rgba.copy()
        px, py = self.to_px((x, y))
        px, py = int(round(px)), int(round(self.height - py))
        for d in range(-radius, radius + 1):
            for w in (-1, 0, 1):
                for (r, c) in ((py + w, px + d), (py + d, px + w)):
                    if 0 <= r < img.shape[0] and 0 <= c < img.shape[1]:
                        img[r, c] = (0, 0, 0, 255)
        return img


def latent_explorer(decode, z, labels, lim: float = 3.0) -> Demo:
    """Two sliders over a 2-D latent space; the decoded digit and its place on the map follow.

    decode: function (1, 2) tensor -> image (probabilities or logits after sigmoid).
    z, labels: latent codes of test digits and their classes, drawn as the map.
    """
    from .plot import latent_scatter, to_images

    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=80)
    latent_scatter(z, labels, ax=ax)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_title("test digits in latent space", fontsize=9)
    world = _Map(fig, ax)
    s1 = W.FloatSlider(0.0, min=-lim, max=lim, step=0.05, description="z₁", continuous_update=True)
    s2 = W.FloatSlider(0.0, min=-lim, max=lim, step=0.05, description="z₂", continuous_update=True)
    digit = W.Image(format="png", layout=W.Layout(width="168px", height="168px"))
    where = W.Image(format="png", layout=W.Layout(width="336px"))
    label = W.Label()

    @torch.no_grad()
    def update(*_):
        img = to_images(decode(torch.tensor([[s1.value, s2.value]], dtype=torch.float32)))[0]
        digit.value = png_bytes(img, scale=6)
        where.value = png_bytes(world.with_marker(s1.value, s2.value))
        label.value = f"z = ({s1.value:+.2f}, {s2.value:+.2f})"

    def snapshot():
        f, (a, b) = plt.subplots(1, 2, figsize=(6.5, 3), dpi=80,
                                 gridspec_kw={"width_ratios": [1.4, 1]})
        a.imshow(world.with_marker(s1.value, s2.value))
        b.imshow(to_images(decode(torch.tensor([[s1.value, s2.value]])))[0], cmap="gray")
        b.set_title(label.value, fontsize=9)
        for x in (a, b):
            x.set_axis_off()
        return figure_png(f)

    s1.observe(update, "value")
    s2.observe(update, "value")
    update()
    demo = Demo([W.HBox([W.VBox([s1, s2, label, digit]), where])], snapshot)
    demo.update, demo.sliders = update, (s1, s2)
    return demo
