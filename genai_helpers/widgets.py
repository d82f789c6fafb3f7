"""Interactive demos (ipywidgets) that respond in milliseconds: nothing is trained on a move.

Each demo is a `Demo`: a widget box that also carries a PNG snapshot of its current state, so
that where no widget frontend runs (GitHub, nbconvert, a bare kernel) a static figure shows.
"""
from __future__ import annotations

import base64
import functools
import io
import math
import time

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


class Stopwatch:
    """Times a widget's callback in the kernel and shows it under the demo: "answered in 4 ms"."""

    def __init__(self):
        self.label = W.HTML()
        self.label.add_class("genai-latency")
        self.last_ms: float | None = None

    def __call__(self, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.last_ms = 1000 * (time.perf_counter() - t0)
                self.label.value = (f"<span style='color:#888;font-size:0.8em'>answered in "
                                    f"{self.last_ms:.1f} ms</span>")
        return timed


class Demo(W.VBox):
    """A VBox with a static fallback: `snapshot()` returns PNG bytes of the current state.

    With a `stopwatch` (the one that wraps the demo's callback), its latency line is shown last.
    """

    def __init__(self, children, snapshot, stopwatch: Stopwatch | None = None, **kw):
        children = list(children) + ([stopwatch.label] if stopwatch is not None else [])
        super().__init__(children, **kw)
        self._snapshot = snapshot
        self.stopwatch = stopwatch

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

    watch = Stopwatch()

    @watch
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
    demo = Demo([W.HBox([W.VBox([s1, s2, label, digit]), where])], snapshot, watch)
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
        if not (abs(mu) <= 100 and 0.01 <= sigma <= 100):
            label.value = f"⚠ μ={mu:.3g}, σ={sigma:.3g} is off the grid: try |μ| ≤ 100 and 0.01 ≤ σ ≤ 100"
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

    watch = Stopwatch()

    @watch
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
    demo = Demo([W.HBox([W.VBox([s_mu, s_sigma, *buttons]), image]), label], lambda: image.value, watch)
    demo.show, demo.update, demo.sliders, demo.buttons, demo.label = show, update, (s_mu, s_sigma), buttons, label
    return demo


def slerp(z0: torch.Tensor, z1: torch.Tensor, t) -> torch.Tensor:
    """Spherical interpolation between latent codes (rows of z0, z1) at fractions t in [0, 1].

    Between two draws from N(0, I) a straight line passes through codes of unusually small
    norm, which the generator rarely saw; the arc keeps the norm typical.
    """
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device).reshape(-1, 1)
    cos = torch.nn.functional.cosine_similarity(z0, z1, dim=-1).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.arccos(cos).reshape(-1, 1) if z0.dim() > 1 else torch.arccos(cos)
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def latent_walk(G, classify=None, n_strip: int = 9, max_seed: int = 999) -> Demo:
    """Walk a GAN generator's latent space: two seeds give two codes z_A and z_B, a slider moves
    along the arc between them, another moves off it along one of 10 random directions.

    G: a generator with `latent_dim` and `sample`-style output (images in [-1, 1] or [0, 1]).
    classify: optional function images -> class probabilities (N, 10), shown under the digit.
    The Demo exposes `update()` (one move: returns the image array), `sliders` and `label`.
    """
    from .plot import to_images

    dim = getattr(G, "latent_dim", None)
    if not isinstance(dim, int) or not callable(G):
        raise TypeError("latent_walk needs a generator module with an integer `latent_dim` "
                        f"(e.g. one of gh.gan's generators), got {type(G).__name__}")
    dev = next(G.parameters()).device
    noise = torch.randn(10, dim, generator=torch.Generator().manual_seed(123))
    directions = torch.nn.functional.normalize(noise, dim=1)
    s_a = W.IntSlider(0, min=0, max=max_seed, description="seed A", continuous_update=True)
    s_b = W.IntSlider(1, min=0, max=max_seed, description="seed B", continuous_update=True)
    s_t = W.FloatSlider(0.0, min=0.0, max=1.0, step=0.02, description="A → B", continuous_update=True)
    s_dir = W.IntSlider(0, min=0, max=9, description="direction", continuous_update=True)
    s_dist = W.FloatSlider(0.0, min=-4.0, max=4.0, step=0.1, description="distance", continuous_update=True)
    digit = W.Image(format="png", layout=W.Layout(width="168px", height="168px"))
    strip = W.Image(format="png", layout=W.Layout(width=f"{n_strip * 56}px"))
    label = W.HTML()
    cache: dict = {}

    def code(seed: int) -> torch.Tensor:
        return torch.randn(dim, generator=torch.Generator().manual_seed(int(seed)))

    @torch.no_grad()
    def images(z: torch.Tensor) -> np.ndarray:
        was = G.training
        G.eval()
        try:
            return to_images(G(z.to(dev)))
        finally:
            G.train(was)

    watch = Stopwatch()

    @watch
    @torch.no_grad()
    def update(*_):
        try:
            za, zb = code(s_a.value), code(s_b.value)
            if cache.get("seeds") != (s_a.value, s_b.value):
                ts = torch.linspace(0, 1, n_strip)
                row = images(slerp(za.expand(n_strip, dim), zb.expand(n_strip, dim), ts))
                cache["seeds"], cache["strip"] = (s_a.value, s_b.value), np.concatenate(
                    [np.pad(im, 1, constant_values=0.5) for im in row], axis=1)
                strip.value = png_bytes(cache["strip"], scale=2)
            z = slerp(za[None], zb[None], s_t.value)[0] + s_dist.value * directions[s_dir.value]
            img = images(z[None])[0]
            digit.value = png_bytes(img, scale=6)
            text = f"|z| = {z.norm():.2f} (typical {dim ** 0.5:.1f})"
            if classify is not None:
                p = classify(torch.as_tensor(img)[None, None].to(dev)).float().cpu()[0]
                text += f" &nbsp; classifier: <b>{int(p.argmax())}</b> ({p.max():.2f})"
            label.value = text
            cache["image"] = img
            return img
        except Exception as e:  # noqa: BLE001 -- shown in the page, not as a traceback
            label.value = f"⚠️ {type(e).__name__}: {e}"
            return None

    def snapshot():
        fig, (a, b) = plt.subplots(1, 2, figsize=(7.5, 1.9), dpi=80, gridspec_kw={"width_ratios": [1, 4.5]})
        a.imshow(cache.get("image", np.zeros((28, 28))), cmap="gray", vmin=0, vmax=1)
        b.imshow(cache.get("strip", np.zeros((30, 30 * n_strip))), cmap="gray", vmin=0, vmax=1)
        a.set_title(f"A={s_a.value}, B={s_b.value}, t={s_t.value:.2f}", fontsize=8)
        b.set_title("the arc from z_A (left) to z_B (right)", fontsize=8)
        for x in (a, b):
            x.set_axis_off()
        return figure_png(fig)

    for s in (s_a, s_b, s_t, s_dir, s_dist):
        s.observe(update, "value")
    update()
    demo = Demo([W.HBox([W.VBox([s_a, s_b, s_t, s_dir, s_dist]), W.VBox([digit, label])]), strip], snapshot,
                watch)
    demo.update, demo.sliders, demo.label = update, (s_a, s_b, s_t, s_dir, s_dist), label
    return demo
