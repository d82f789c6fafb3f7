"""The course's five interactive demos (ipywidgets), which respond in milliseconds: nothing is
trained on a move. `latent_explorer` (chapter 02), `kl_explorer` (01), `latent_walk` (03),
`date_translator` (04) and `inpainting_demo` (05).

Each demo is a `Demo`: a widget box that also carries a PNG snapshot of its current state, so
that where no widget frontend runs (GitHub, nbconvert, a bare kernel) a static figure shows.

Labels, menus and the lines under the pictures speak the course's language (`_()`); a menu shows
translated names but keeps the English values (`inpainting_demo`'s mask kinds are
`gh.restore.make_masks`'s names). Text drawn inside the matplotlib pictures stays English.
"""
from __future__ import annotations

import base64
import functools
import html
import io
import math
import time

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch.distributions import Normal

from .i18n import N_, _
from .maths import kl_on_grid, slerp
from .metrics import psnr
from .plot import latent_scatter, to_images
from .restore import fill_nearest, inpaint_latent, make_masks
from .runtime import evaluating, single_thread
from .translator import EXAMPLES, Translation, attention_heatmap, printable, translate


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
                self.label.value = ("<span style='color:#888;font-size:0.8em'>"
                                    + _("answered in {ms:.1f} ms").format(ms=self.last_ms) + "</span>")
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
    def update(*_change):
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


def _kl_figure(x, log_p, lo: float, hi: float):
    """The KL demo's figure: the target density and a line for q (moved by the sliders)."""
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
    return fig, ax, line_q


def _jump_buttons(fits: dict, s_mu, s_sigma, update) -> list:
    """One button per {"label": (mu, sigma)}: it moves both sliders there and redraws once."""
    buttons = []
    for name, (mu, sigma) in fits.items():
        b = W.Button(description=name, layout=W.Layout(width="auto"))

        def jump(_click, mu=mu, sigma=sigma):
            with s_mu.hold_trait_notifications(), s_sigma.hold_trait_notifications():
                s_mu.value, s_sigma.value = mu, sigma
            update()

        b.on_click(jump)
        buttons.append(b)
    return buttons


def kl_explorer(target, lo: float = -6.0, hi: float = 6.0, fits: dict | None = None) -> Demo:
    """Sliders over q = N(mu, sigma^2): the target p, q and both KL divergences follow.

    target: a 1-D torch distribution (e.g. `gh.maths.mixture(...)`), drawn on [lo, hi].
    fits: optional {"button label": (mu, sigma)}: buttons that move the sliders there.
    `demo.show(mu, sigma)` is the callback (it returns the two KLs, or None with a message).
    """
    x = torch.linspace(lo, hi, 801, dtype=torch.float64)
    log_p = target.log_prob(x).double()
    fig, ax, line_q = _kl_figure(x, log_p, lo, hi)
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
            label.value = _("⚠ μ and σ must be numbers, got {mu!r} and {sigma!r}").format(mu=mu, sigma=sigma)
            return None
        if not (np.isfinite(mu) and np.isfinite(sigma) and sigma > 0):
            label.value = _("⚠ need a finite μ and a σ > 0 (got μ={mu}, σ={sigma})").format(mu=mu, sigma=sigma)
            return None
        if not (abs(mu) <= 100 and 0.01 <= sigma <= 100):
            label.value = _("⚠ μ={mu:.3g}, σ={sigma:.3g} is off the grid: try |μ| ≤ 100 and 0.01 ≤ σ ≤ 100").format(
                mu=mu, sigma=sigma)
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
        label.value = _("q = N({mu:+.2f}, {sigma:.2f}²) &nbsp; <b>forward</b> KL(p‖q) = {fwd:.3f} (large if q "
                        "misses a mode of p) &nbsp; <b>reverse</b> KL(q‖p) = {rev:.3f} (large if q puts mass where "
                        "p has none)").format(mu=mu, sigma=sigma, fwd=fwd, rev=rev)
        return fwd, rev

    watch = Stopwatch()

    @watch
    def update(*_change):
        return show(s_mu.value, s_sigma.value)

    buttons = _jump_buttons(fits or {}, s_mu, s_sigma, update)
    s_mu.observe(update, "value")
    s_sigma.observe(update, "value")
    update()
    demo = Demo([W.HBox([W.VBox([s_mu, s_sigma, *buttons]), image]), label], lambda: image.value, watch)
    demo.show, demo.update, demo.sliders, demo.buttons, demo.label = show, update, (s_mu, s_sigma), buttons, label
    return demo


def _walk_sliders(max_seed: int) -> tuple:
    """The latent walk's sliders: seed A, seed B, the fraction A -> B, a direction, a distance."""
    return (W.IntSlider(0, min=0, max=max_seed, description=_("seed A"), continuous_update=True),
            W.IntSlider(1, min=0, max=max_seed, description=_("seed B"), continuous_update=True),
            W.FloatSlider(0.0, min=0.0, max=1.0, step=0.02, description="A → B", continuous_update=True),
            W.IntSlider(0, min=0, max=9, description=_("direction"), continuous_update=True),
            W.FloatSlider(0.0, min=-4.0, max=4.0, step=0.1, description=_("distance"), continuous_update=True))


def _walk_snapshot(cache: dict, n_strip: int, title: str) -> bytes:
    """A PNG of the latent walk: the current digit and the strip of the arc."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(7.5, 1.9), dpi=80, gridspec_kw={"width_ratios": [1, 4.5]})
    a.imshow(cache.get("image", np.zeros((28, 28))), cmap="gray", vmin=0, vmax=1)
    b.imshow(cache.get("strip", np.zeros((30, 30 * n_strip))), cmap="gray", vmin=0, vmax=1)
    a.set_title(title, fontsize=8)
    b.set_title("the arc from z_A (left) to z_B (right)", fontsize=8)
    for x in (a, b):
        x.set_axis_off()
    return figure_png(fig)


def latent_walk(G, classify=None, n_strip: int = 9, max_seed: int = 999) -> Demo:
    """Walk a GAN generator's latent space: two seeds give two codes z_A and z_B, a slider moves
    along the arc between them, another moves off it along one of 10 random directions.

    G: a generator with `latent_dim` and `sample`-style output (images in [-1, 1] or [0, 1]).
    classify: optional function images -> class probabilities (N, 10), shown under the digit.
    The Demo exposes `update()` (one move: returns the image array), `sliders` and `label`.
    """
    dim = getattr(G, "latent_dim", None)
    if not isinstance(dim, int) or not callable(G):
        raise TypeError(_("latent_walk needs a generator module with an integer `latent_dim` (e.g. one of gh.gan's "
                          "generators), got {type}").format(type=type(G).__name__))
    dev = next(G.parameters()).device
    noise = torch.randn(10, dim, generator=torch.Generator().manual_seed(123))
    directions = torch.nn.functional.normalize(noise, dim=1)
    s_a, s_b, s_t, s_dir, s_dist = _walk_sliders(max_seed)
    digit = W.Image(format="png", layout=W.Layout(width="168px", height="168px"))
    strip = W.Image(format="png", layout=W.Layout(width=f"{n_strip * 56}px"))
    label = W.HTML()
    cache: dict = {}

    def code(seed: int) -> torch.Tensor:
        return torch.randn(dim, generator=torch.Generator().manual_seed(int(seed)))

    @torch.no_grad()
    def images(z: torch.Tensor) -> np.ndarray:
        with evaluating(G):
            return to_images(G(z.to(dev)))

    watch = Stopwatch()

    @watch
    @torch.no_grad()
    def update(*_change):
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
            text = _("|z| = {norm:.2f} (typical {typical:.1f})").format(norm=z.norm(), typical=dim ** 0.5)
            if classify is not None:
                p = classify(torch.as_tensor(img)[None, None].to(dev)).float().cpu()[0]
                text += _(" &nbsp; classifier: <b>{digit}</b> ({p:.2f})").format(digit=int(p.argmax()), p=p.max())
            label.value = text
            cache["image"] = img
            return img
        except Exception as e:  # noqa: BLE001 -- shown in the page, not as a traceback
            label.value = f"⚠️ {type(e).__name__}: {e}"
            return None

    def snapshot():
        return _walk_snapshot(cache, n_strip, f"A={s_a.value}, B={s_b.value}, t={s_t.value:.2f}")

    for s in (s_a, s_b, s_t, s_dir, s_dist):
        s.observe(update, "value")
    update()
    demo = Demo([W.HBox([W.VBox([s_a, s_b, s_t, s_dir, s_dist]), W.VBox([digit, label])]), strip], snapshot,
                watch)
    demo.update, demo.sliders, demo.label = update, (s_a, s_b, s_t, s_dir, s_dist), label
    return demo


# --- chapter 04: the date translator ---------------------------------------------------------

def heatmap_png(t: Translation) -> bytes:
    fig, ax = plt.subplots(figsize=(0.24 * len(t.source) + 1.2, 0.24 * t.attention.shape[0] + 0.9), dpi=80)
    attention_heatmap(t, ax=ax)
    return figure_png(fig)


def _result_html(t: Translation) -> str:
    if t.iso:
        head = (f"<span style='font-size:1.6em;font-family:monospace'>{t.iso}</span> &nbsp; "
                + _("probability {p:.3f}").format(p=t.probability))
    else:
        head = "<span style='font-size:1.3em'>" + _("no date") + "</span>"
    box = (f"<div style='background:#fff3cd;border-left:4px solid #e0a800;padding:4px 8px;margin-top:4px'>"
           f"⚠️ {html.escape(t.message)}</div>" if t.message else "")
    return f"<div>{head}{box}</div>"


def date_translator(model, examples=EXAMPLES, beam: int = 1) -> Demo:
    """Type a date in any of the model's languages: its ISO form, the model's probability and the
    attention heatmap follow. Bad input (empty, too long, emoji, another alphabet) is a message.

    The returned Demo has `update(text)` (returns the Translation; what a keystroke does),
    `text`, `result`, `image`, and `last` (the latest Translation).
    """
    text = W.Text(value=examples[0] if examples else "", placeholder=_("type a date, e.g. 28 nov. 2026"),
                  description=_("date:"), continuous_update=True, layout=W.Layout(width="420px"))
    menu = W.Dropdown(options=[(_("examples ..."), None)] + [(repr(e) if not e.strip() else e, e) for e in examples],
                      layout=W.Layout(width="260px"))
    result = W.HTML()
    image = W.Image(format="png")
    watch = Stopwatch()
    demo = Demo([W.HBox([text, menu]), result, image], snapshot=lambda: _snapshot(demo), stopwatch=watch)

    @watch
    def update(value=None) -> Translation:
        try:
            t = translate(model, text.value if value is None else value, beam=beam)
            png = heatmap_png(t) if t.attention is not None else None
        except Exception as e:  # noqa: BLE001 (never a traceback in the widget)
            t = Translation(text.value if value is None else value,
                            message=_("internal error ({type}: {error}); please report it with the text you "
                                      "typed").format(type=type(e).__name__, error=e))
            png = None
        result.value = _result_html(t)
        image.layout.display = None if png else "none"
        if png:
            image.value = png
        demo.last = t
        return t

    def picked(change):
        if change["new"] is not None:
            text.value = change["new"]
            update()  # also when the text was already this example

    text.observe(lambda change: update(), "value")
    menu.observe(picked, "value")
    demo.update, demo.text, demo.result, demo.image, demo.menu = update, text, result, image, menu
    update()
    return demo


def _snapshot(demo) -> bytes:
    t = demo.last
    if t.attention is None:
        fig, ax = plt.subplots(figsize=(6, 0.8), dpi=80)
        ax.text(0, 0.5, printable(f"{t.text!r:.50} → {t.iso or 'no date'}   {t.message[:80]}"),
                fontsize=9, va="center")
        ax.set_axis_off()
        return figure_png(fig)
    fig, ax = plt.subplots(figsize=(0.24 * len(t.source) + 1.2, 0.24 * t.attention.shape[0] + 0.9), dpi=80)
    attention_heatmap(t, ax=ax, title=f"{t.source} → {t.iso or t.output}   (p = {t.probability:.3f})")
    return figure_png(fig)


# --- chapter 05: inpainting ------------------------------------------------------------------

# the mask kinds (gh.restore.make_masks's names; the menu shows them translated) and the four panels
KINDS = (N_("square"), N_("bottom half"), N_("right half"), N_("random 75%"))
PANELS = (N_("original"), N_("what the model sees"), N_("VAE repair"), N_("nearest neighbour"))
HIDDEN = np.array([40, 70, 140], dtype=np.uint8)  # missing pixels are drawn dark blue


def _rgb(image: torch.Tensor, mask: torch.Tensor | None = None) -> np.ndarray:
    grey = (image.squeeze().clamp(0, 1).numpy() * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if mask is not None:
        rgb[mask.squeeze().numpy()] = HIDDEN
    return rgb


def strip(panels: list[np.ndarray], gap: int = 2) -> np.ndarray:
    """Side-by-side RGB images with white gaps."""
    h = panels[0].shape[0]
    sep = np.full((h, gap, 3), 255, dtype=np.uint8)
    out = [panels[0]]
    for p in panels[1:]:
        out += [sep, p]
    return np.concatenate(out, axis=1)


@torch.no_grad()
def precompute(vae, images, train_x, kinds=KINDS, steps: int = 100, seed: int = 0) -> dict:
    """For each mask kind: masks, the VAE's repairs and the nearest-neighbour repairs of `images`
    (on the CPU), and the PSNR of both on the hidden pixels. On one CPU thread: these small
    batches gain nothing from two, and lose much when another program keeps the second core busy."""
    with single_thread():
        return {kind: _repairs(vae, images, train_x, kind, seed + i, steps) for i, kind in enumerate(kinds)}


def _repairs(vae, images, train_x, kind, seed, steps):
    masks = make_masks(kind, len(images), torch.Generator().manual_seed(seed)).to(images.device)
    observed = images * ~masks
    vae_fix = inpaint_latent(vae, observed, masks, steps=steps)
    nn_fix = fill_nearest(observed, masks, train_x)
    return {"mask": masks.cpu(), "vae": vae_fix.cpu(), "nearest": nn_fix.cpu(),
            "psnr_vae": psnr(vae_fix, images, masks).cpu(), "psnr_nearest": psnr(nn_fix, images, masks).cpu()}


def inpainting_demo(vae, images, train_x, kinds=KINDS, steps: int = 100) -> Demo:
    """A slider over `images` (test digits, (N, 1, 28, 28)) and a mask menu; shows the original,
    the masked digit, the VAE's repair (latent fit, `gh.restore.inpaint_latent`) and the
    nearest training digit's pixels (`gh.restore.fill_nearest`), with their PSNR on the hidden
    pixels. `demo.show(index, kind)` is the callback; bad input becomes a message in the widget."""
    if not torch.is_tensor(images) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28) or not len(images):
        raise ValueError(_("images must be test digits (N, 1, 28, 28), e.g. mnist.test_x[:40]; got {got}").format(
            got=getattr(images, "shape", type(images).__name__)))
    table = precompute(vae, images, train_x, kinds, steps)
    originals = images.detach().cpu()
    slider = W.IntSlider(0, min=0, max=len(images) - 1, description=_("test digit"), continuous_update=True)
    menu = W.Dropdown(options=[(_(kind), kind) for kind in kinds], value=kinds[0], description=_("mask"))
    picture = W.Image(format="png", layout=W.Layout(width="480px"))
    heading = W.HTML(" · ".join(_(panel) for panel in PANELS))
    label = W.HTML()
    state = {"index": 0, "kind": kinds[0]}
    watch = Stopwatch()

    def panels(index, kind):
        t = table[kind]
        m = t["mask"][index]
        return [_rgb(originals[index]), _rgb(originals[index] * ~m, m), _rgb(t["vae"][index]),
                _rgb(t["nearest"][index])]

    @watch
    def show(index, kind):
        """Show test digit `index` with mask `kind`; return {"vae": dB, "nearest": dB}, or None."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(images):
            label.value = _("⚠ pick a test digit by its number, 0 to {last} (got {index!r:.40})").format(
                last=len(images) - 1, index=index)
            return None
        if kind not in table:
            label.value = _("⚠ unknown mask {kind!r:.40}: choose one of {kinds}").format(
                kind=kind, kinds=", ".join(kinds))
            return None
        state.update(index=int(index), kind=kind)
        picture.value = png_bytes(strip(panels(index, kind)), scale=4)
        result = {"vae": table[kind]["psnr_vae"][index].item(), "nearest": table[kind]["psnr_nearest"][index].item()}
        label.value = _("PSNR on the hidden pixels: VAE <b>{vae:.1f} dB</b>, nearest neighbour {nearest:.1f} dB "
                        "(higher is better)").format(vae=result["vae"], nearest=result["nearest"])
        return result

    def snapshot():
        fig, axes = plt.subplots(1, 4, figsize=(7, 2.2), dpi=80)
        for ax, p, title in zip(axes, panels(state["index"], state["kind"]), PANELS):
            ax.imshow(p)
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        r = table[state["kind"]]
        fig.suptitle(f"mask: {state['kind']}; PSNR VAE {r['psnr_vae'][state['index']]:.1f} dB, "
                     f"nearest {r['psnr_nearest'][state['index']]:.1f} dB", fontsize=9)
        return figure_png(fig)

    slider.observe(lambda ch: show(ch["new"], menu.value), "value")
    menu.observe(lambda ch: show(slider.value, ch["new"]), "value")
    show(0, kinds[0])
    demo = Demo([W.HBox([slider, menu]), heading, picture, label], snapshot, watch)
    demo.show, demo.slider, demo.menu, demo.picture, demo.label = show, slider, menu, picture, label
    demo.table, demo.images = table, originals
    return demo
