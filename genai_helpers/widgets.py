"""Interactive demos (ipywidgets) that respond in milliseconds: nothing is trained on a move.

Each demo is a `Demo`: a widget box that also carries a PNG snapshot of its current state, so
that where no widget frontend runs (GitHub, nbconvert, a bare kernel) a static figure shows.
"""
from __future__ import annotations

import base64
import io
import math

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


def kl_explorer(target, lo: float = -6.0, hi: float = 6.0, fits: dict | None = None) -> Demo:
    """Sliders over q = N(mu, sigma^2): the target p, q and both KL divergences follow.

    target: a 1-D torch distribution (e.g. `gh.maths.mixture(...)`), drawn on [lo, hi].
    fits: optional {"button label": (mu, sigma)}: buttons that move the sliders there.
    `demo.show(mu, sigma)` is the callback (it returns the two KLs, or None with a message).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from torch.distributions import Normal

    from .maths import kl_on_grid

    x = torch.linspace(lo, hi, 801, dtype=torch.float64)
    log_p = target.log_prob(x).double()
    fig = Figure(figsize=(6.4, 2.9), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(x, log_p.exp(), color="k", lw=2, label="target p")
    (line_q,) = ax.plot(x, log_p.exp(), color="C1", lw=2, label="q = N(μ, σ²)")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("KL", fontsize=10)
    fig.tight_layout()
    p_max = log_p.exp().max().item()
    s_mu = W.FloatSlider(0.0, min=-4, max=4, step=0.05, description="μ", continuous_update=True)
    s_sigma = W.FloatSlider(1.0, min=0.2, max=3.0, step=0.05, description="σ", continuous_update=True)
    image = W.Image(format="png", layout=W.Layout(width="512px"))
    label = W.HTML()
    state = {}

    def show(mu, sigma):
        """Redraw for q = N(mu, sigma^2); return (KL(p||q), KL(q||p)) in nats, or None."""
        try:
            mu, sigma = float(mu), float(sigma)
        except (TypeError, ValueError):
            label.value = f"⚠ μ and σ must be numbers, got {mu!r} and {sigma!r}"
            return None
        if not (np.isfinite(mu) and np.isfinite(sigma) and sigma > 0):
            label.value = f"⚠ need a finite μ and a σ > 0 (got μ={mu}, σ={sigma})"
            return None
        log_q = Normal(torch.tensor(mu, dtype=torch.float64),
                       torch.tensor(sigma, dtype=torch.float64)).log_prob(x)
        fwd, rev = kl_on_grid(log_p, log_q, x).item(), kl_on_grid(log_q, log_p, x).item()
        line_q.set_ydata(log_q.exp().numpy())
        ax.set_ylim(0, 1.1 * max(p_max, 1 / (sigma * math.sqrt(2 * math.pi))))
        if "fill" in state:
            state["fill"].remove()
        state["fill"] = ax.fill_between(x.numpy(), log_q.exp().numpy(), color="C1", alpha=0.2)
        ax.set_title(f"KL(p‖q) = {fwd:.3f} nats    KL(q‖p) = {rev:.3f} nats", fontsize=10)
        fig.canvas.draw()
        image.value = png_bytes(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        label.value = (f"q = N({mu:+.2f}, {sigma:.2f}²) &nbsp; <b>forward</b> KL(p‖q) = {fwd:.3f} "
                       f"(large if q misses a mode of p) &nbsp; <b>reverse</b> KL(q‖p) = {rev:.3f} "
                       f"(large if q puts mass where p has none)")
        return fwd, rev

    def update(*_):
        return show(s_mu.value, s_sigma.value)

    buttons = []
    for name, (mu, sigma) in (fits or {}).items():
        b = W.Button(description=name, layout=W.Layout(width="auto"))

        def jump(_, mu=mu, sigma=sigma):
            with s_mu.hold_trait_notifications(), s_sigma.hold_trait_notifications():
                s_mu.value, s_sigma.value = mu, sigma
            update()

        b.on_click(jump)
        buttons.append(b)
    s_mu.observe(update, "value")
    s_sigma.observe(update, "value")
    update()
    demo = Demo([W.HBox([W.VBox([s_mu, s_sigma, *buttons]), image]), label], lambda: image.value)
    demo.show, demo.update, demo.sliders, demo.buttons = show, update, (s_mu, s_sigma), buttons
    return demo
