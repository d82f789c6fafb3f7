"""Chapter 05's inpainting demo: pick a test digit and a mask, see the VAE's repair next to the
nearest-neighbour baseline. The repairs are computed once, in batches, when the demo is built
(a few seconds); moving the slider only looks them up, so it answers in milliseconds.

    demo = gh.inpaint_demo.inpainting_demo(vae, mnist.test_x[:40], mnist.train_x)
    demo.show(3, "bottom half")      # the callback the widgets call; returns the two PSNRs
"""
from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import torch

from .runtime import single_thread
from .metrics import psnr
from .restore import fill_nearest, inpaint_latent, make_masks
from .widgets import Demo, Stopwatch, figure_png, png_bytes

KINDS = ("square", "bottom half", "right half", "random 75%")
PANELS = ("original", "what the model sees", "VAE repair", "nearest neighbour")
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
        raise ValueError("images must be test digits (N, 1, 28, 28), e.g. mnist.test_x[:40]; got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    table = precompute(vae, images, train_x, kinds, steps)
    originals = images.detach().cpu()
    slider = W.IntSlider(0, min=0, max=len(images) - 1, description="test digit", continuous_update=True)
    menu = W.Dropdown(options=list(kinds), value=kinds[0], description="mask")
    picture = W.Image(format="png", layout=W.Layout(width="480px"))
    heading = W.HTML(" · ".join(PANELS))
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
            label.value = f"⚠ pick a test digit by its number, 0 to {len(images) - 1} (got {index!r:.40})"
            return None
        if kind not in table:
            label.value = f"⚠ unknown mask {kind!r:.40}: choose one of {', '.join(kinds)}"
            return None
        state.update(index=int(index), kind=kind)
        picture.value = png_bytes(strip(panels(index, kind)), scale=4)
        result = {"vae": table[kind]["psnr_vae"][index].item(), "nearest": table[kind]["psnr_nearest"][index].item()}
        label.value = (f"PSNR on the hidden pixels: VAE <b>{result['vae']:.1f} dB</b>, "
                       f"nearest neighbour {result['nearest']:.1f} dB (higher is better)")
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
