"""Figures the chapters share: image grids, training curves (live too), latent plots.

Their words (titles, axis labels) are in the language of the course's messages; for Chinese,
`cjk_fallback` lets matplotlib draw what its default font lacks with a CJK font.
"""
from __future__ import annotations

import functools
import logging
import time
from importlib.util import find_spec
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import font_manager as fm

from .i18n import _
from .runtime import flag


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The name of a font with Chinese characters (the one the mplfonts package ships, or one
    installed on the system), or None."""
    spec = find_spec("mplfonts")
    if spec and spec.origin:  # its font is registered for this process only, nothing is installed
        path = Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
        if path.exists():
            fm.fontManager.addfont(str(path))

    for name in ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
                 "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC",
                 "Heiti SC", "Arial Unicode MS", "AR PL UMing CN"):
        try:
            fm.findfont(fm.FontProperties(family=name), fallback_to_default=False)
            return name
        except ValueError:
            continue
    return None


SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")  # g0 -> g₀ in a text that is no formula


def cjk_fallback() -> None:
    """Let every figure draw Chinese: the CJK font goes after matplotlib's default family, so that
    the characters the default font cannot draw (a translated title's) come from it, and a text
    the default font can draw looks exactly as before. Nothing changes without a CJK font."""
    font = cjk_font()
    families = list(plt.rcParams["font.family"])
    if font and font not in families:
        plt.rcParams["font.family"] = families + [font]
        logging.getLogger("matplotlib.font_manager").addFilter(_RegularWeightOf(font))


class _RegularWeightOf(logging.Filter):
    """Drops matplotlib's warning that `font` has no bold (or other weight): the CJK font ships one
    weight, and a bold title that falls back to it is drawn in that weight, as intended. Every other
    font-manager message, about other fonts included, still comes through."""

    def __init__(self, font: str):
        super().__init__()
        self.font = font

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith("findfont: Failed to find font weight") and f" for {self.font}," in text)


cjk_fallback()


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, nbval, nbclient); False in scripts."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def show(fig, handle=None):
    """Display a figure in the notebook (or update `handle`), close it, return the handle."""
    from IPython.display import display

    if handle is None:
        handle = display(fig, display_id=True)
    else:
        handle.update(fig)
    plt.close(fig)
    return handle


class DisplayLine:
    """A file-like object for tqdm that keeps one updating line in the notebook.

    A saved notebook then holds the final line only, not every refresh of the bar.
    """

    def __init__(self):
        from IPython.display import display

        self.handle = display({"text/plain": ""}, raw=True, display_id=True)
        self.text = ""

    def write(self, s: str):
        line = s.replace("\r", "\n").strip().splitlines()
        if line and line[-1].strip():
            self.text = line[-1]
            self.handle.update({"text/plain": self.text}, raw=True)

    def flush(self):
        pass


def to_images(x: torch.Tensor) -> np.ndarray:
    """(N, 784), (N, 28, 28) or (N, 1, 28, 28) tensor -> (N, 28, 28) float array in [0, 1]."""
    x = x.detach().float().cpu()
    if x.dim() == 2:
        side = int(round(x.shape[1] ** 0.5))
        x = x.view(-1, side, side)
    if x.dim() == 4:
        x = x[:, 0]
    if x.min() < -0.01:  # images in [-1, 1] (GANs with tanh)
        x = (x + 1) / 2
    return x.clamp(0, 1).numpy()


def image_grid(x, nrow: int = 10, title: str | None = None, ax=None, labels=None):
    """Show images as one grid (white digits on black, like MNIST). Returns the axes."""
    imgs = to_images(x)
    n = len(imgs)
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    h, w = imgs.shape[1:]
    canvas = np.ones((rows * (h + 2) + 2, ncol * (w + 2) + 2)) * 0.5
    for i, im in enumerate(imgs):
        r, c = divmod(i, ncol)
        canvas[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + c * (w + 2):2 + c * (w + 2) + w] = im
    if ax is None:
        __, ax = plt.subplots(figsize=(min(0.55 * ncol + 0.4, 11), 0.55 * rows + (0.5 if title else 0.2)))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if labels is not None:
        for i, lab in enumerate(labels):
            r, c = divmod(i, ncol)
            ax.text(2 + c * (w + 2), 2 + r * (h + 2) + 5, str(lab), color="yellow", fontsize=7)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def training_curves(history, title: str | None = None, keys=None):
    """One panel per loss (per step, with a moving average) and one for the evaluations, once there are two."""
    keys = keys or list(history.losses)
    ev_keys = sorted({k for e in history.evals for k in e} - {"epoch", "step", "seconds"})
    ev_keys = ev_keys if len(history.evals) > 1 else []  # one evaluation is a point, not a curve
    n = len(keys) + (1 if ev_keys else 0)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(min(3.6 * max(n, 1), 12), 2.8), squeeze=False)
    axes = axes[0]
    for ax, k in zip(axes, keys):
        y = np.asarray(history.losses[k], dtype=float)
        ax.plot(y, color="tab:blue", alpha=0.25, lw=0.8)
        if len(y) >= 10:
            w = max(2, len(y) // 50)
            smooth = np.convolve(y, np.ones(w) / w, mode="valid")
            ax.plot(np.arange(w - 1, len(y)), smooth, color="tab:blue", lw=1.5)
            lo, hi = np.percentile(y[len(y) // 10:], [1, 99])
            pad = 0.1 * (hi - lo + 1e-9)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(k, fontsize=10)
        ax.set_xlabel(_("step"))
        ax.grid(alpha=0.3)
    if ev_keys:
        ax = axes[-1]
        for k in ev_keys:
            pts = [(e["step"], e[k]) for e in history.evals if k in e]
            ax.plot(*zip(*pts), marker="o", ms=3, label=k)
        ax.set_title(_("evaluation (per epoch)"), fontsize=10)
        ax.set_xlabel(_("step"))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


class LivePlot:
    """Training curves redrawn in place in a notebook (at most every `every` seconds).

    Silent outside a Jupyter kernel, and when GENAI_LIVE_PLOT=0.
    """

    def __init__(self, title: str, every: float = 2.0):
        self.title, self.every = title, every
        self.handle = None
        self.last = 0.0
        self.enabled = in_notebook() and flag("GENAI_LIVE_PLOT", True)

    def update(self, history, final: bool = False):
        if not self.enabled or not history.losses:
            return
        if not final and time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        self.handle = show(training_curves(history, self.title), self.handle)


def latent_scatter(z, labels, ax=None, title: str | None = None):
    """2-D latent codes coloured by digit."""
    z = z.detach().float().cpu().numpy()
    labels = labels.detach().cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    if ax is None:
        __, ax = plt.subplots(figsize=(5, 4.3))
    sc = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=5, vmin=-0.5, vmax=9.5)
    plt.colorbar(sc, ax=ax, ticks=range(10), label=_("digit"))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


@torch.no_grad()
def manifold_grid(decode, n: int = 15, ax=None, title: str | None = None, device=None):
    """Decode an n x n grid of 2-D latent points at Gaussian quantiles 5%..95% (Kingma & Welling)."""
    q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
    zz = torch.stack(torch.meshgrid(q, q.flip(0), indexing="xy"), -1).reshape(-1, 2)
    imgs = decode(zz.to(device) if device is not None else zz)
    ax = image_grid(imgs, nrow=n, ax=ax or plt.subplots(figsize=(5.5, 5.5))[1], title=title)
    return ax


def ring_snapshots(snapshots, steps, real, centres, title: str | None = None, lim: float = 3.0):
    """One panel per snapshot of a GAN on 2-D data: D(x) as background (red: D says real),
    real points in black, generated points in blue; modes covered and high-quality share above."""
    n = len(snapshots)
    fig, axes = plt.subplots(1, n, figsize=(2.05 * n, 2.35), squeeze=False)
    real = real.detach().float().cpu()[:1000]
    for ax, snap, step in zip(axes[0], snapshots, steps):
        if snap.get("surface") is not None:
            ax.imshow(snap["surface"].numpy(), extent=(-lim, lim, -lim, lim), cmap="RdBu_r", vmin=0,
                      vmax=1, alpha=0.55, interpolation="bilinear")
        ax.scatter(real[:, 0], real[:, 1], s=2, c="k", alpha=0.5, linewidths=0)
        s = snap["samples"][:1000]
        ax.scatter(s[:, 0], s[:, 1], s=2, c="tab:blue", alpha=0.6, linewidths=0)
        c = centres.cpu()
        ax.scatter(c[:, 0], c[:, 1], s=30, facecolors="none", edgecolors="0.4", linewidths=0.6)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
        ax.set_title(_("step {step}\n{modes}/{total} modes, {hq:.0f}% HQ").format(
            step=step, modes=snap["modes"], total=len(c), hq=100 * snap["high_quality"]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig



def data_parallel(world: int = 2, batch: int = 128):
    """Data parallelism in one picture (chapter 06): the batch split into `world` shares, one copy of
    the model per process, the gradients averaged by one all-reduce, the same step everywhere."""
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(11, 0.9 + 0.9 * world))
    ax.set(xlim=(0, 11), ylim=(-0.1, world + 0.35))
    ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.03", fc=color, ec="0.3", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(x0, x1, y, text):
        ax.annotate("", (x1, y), (x0, y), arrowprops={"arrowstyle": "-|>", "color": "0.35"})
        ax.text((x0 + x1) / 2, y + 0.08, text, ha="center", va="bottom", fontsize=8, color="0.25")

    share = batch // world
    for x, title in [(0.7, _("one batch of {batch}").format(batch=batch)), (3.3, _("one process per GPU (or core)")),
                     (6.55, "all-reduce"), (9.6, _("the optimiser step"))]:
        ax.text(x, world + 0.12, title, ha="center", fontsize=9, weight="bold")
    # A text with $...$ is drawn by mathtext, whose fonts have no Chinese: words and formulas are
    # separate texts, and the words write g-bar and g_r in Unicode (ḡ, gᵣ, g₀), which every font has.
    box(5.95, 0.05, 1.2, world - 0.2, "", "0.92")
    ax.text(6.55, world * 0.62, "$\\bar g = \\frac{1}{%d}\\sum_r g_r$" % world, ha="center", va="center", fontsize=9)
    ax.text(6.55, world * 0.3, _("every process\nsends its gᵣ\nand receives ḡ"), ha="center", va="center", fontsize=9)
    for r in range(world):
        y, color = world - 1 - r + 0.1, plt.cm.Pastel1(r % 9)
        box(0.1, y, 1.2, 0.6, _("rows {first}-{last}").format(first=r * share, last=(r + 1) * share - 1), color)
        box(2.3, y, 2.0, 0.6, _("process {rank}: the model,\nforward + backward").format(rank=r), color)
        box(8.3, y, 2.6, 0.6, _("Adam with ḡ: the same\nweights in every process"), color)
        arrow(1.35, 2.25, y + 0.3, _("{n} rows").format(n=share))
        arrow(4.35, 5.9, y + 0.3, _("its gradient g{rank}").format(rank=str(r).translate(SUBSCRIPT)))
        arrow(7.2, 8.25, y + 0.3, "$\\bar g$")
    fig.tight_layout()
    return fig
