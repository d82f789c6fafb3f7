"""Chapter 05's image repair: masks, two simple baselines, and two ways to repair with a trained
VAE (iterated encode/decode, and fitting the latent code), plus super-resolution the same way.

A mask is a bool tensor shaped like the images, True where a pixel is missing (to be repaired).
`gh.metrics.psnr(restored, target, mask)` then measures the repair on the missing pixels only.

    masks = gh.restore.make_masks("square", 100)
    repaired = gh.restore.inpaint_latent(vae, x * ~masks, masks)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from .i18n import _

SIZE = 28
MASK_KINDS = ("square", "bottom half", "right half", "random 75%", "random 90%")


def square_mask(top: int, left: int, side: int, size: int = SIZE) -> torch.Tensor:
    """(size, size) bool mask, True on the side x side square whose top-left pixel is (top, left);
    the part outside the image is cut off."""
    m = torch.zeros(size, size, dtype=torch.bool)
    m[max(top, 0):max(top + side, 0), max(left, 0):max(left + side, 0)] = True
    return m


def half_mask(which: str, size: int = SIZE) -> torch.Tensor:
    """(size, size) bool mask hiding the top, bottom, left or right half."""
    m = torch.zeros(size, size, dtype=torch.bool)
    h = size // 2
    region = {"top": (slice(0, h), slice(None)), "bottom": (slice(h, None), slice(None)),
              "left": (slice(None), slice(0, h)), "right": (slice(None), slice(h, None))}
    if which not in region:
        raise ValueError(_("which must be one of {region}, not {which!r}").format(region=sorted(region), which=which))
    m[region[which]] = True
    return m


def make_masks(kind: str, n: int, generator: torch.Generator | None = None, side: int = 12) -> torch.Tensor:
    """n masks (n, 1, 28, 28) of one kind (see MASK_KINDS): a side x side square at a random place
    on the digit (its top-left corner in rows and columns 4..12), a half, or random pixels."""
    g = generator or torch.Generator().manual_seed(0)
    if kind == "square":
        corners = torch.randint(4, 13, (n, 2), generator=g).tolist()
        return torch.stack([square_mask(t, c, side) for t, c in corners])[:, None]
    if kind.endswith(" half"):
        return half_mask(kind.split()[0]).expand(n, 1, SIZE, SIZE).clone()
    if kind.startswith("random ") and kind.endswith("%"):
        p = float(kind[len("random "):-1]) / 100
        return torch.rand(n, 1, SIZE, SIZE, generator=g) < p
    raise ValueError(_("unknown mask kind {kind!r}: use one of {MASK_KINDS} (or 'random NN%', 'top half', ...)").format(
        kind=kind, MASK_KINDS=MASK_KINDS))


def _check(observed, mask):
    if not torch.is_tensor(observed) or observed.dim() != 4 or tuple(observed.shape[1:]) != (1, SIZE, SIZE):
        raise ValueError(_("observed must be images (N, 1, 28, 28) in [0, 1], got {got}").format(
            got=getattr(observed, "shape", type(observed).__name__)))
    if not torch.is_tensor(mask) or mask.dtype != torch.bool:
        raise ValueError(_("mask must be a bool tensor, True where a pixel is missing (e.g. from make_masks)"))
    mask = mask.to(observed.device).expand_as(observed)
    if mask.flatten(1).all(1).any():
        raise ValueError(_("a mask hides every pixel of an image: there is nothing left to repair from"))
    return mask


# --- baselines ----------------------------------------------------------------------------------

def fill_mean(observed, mask, mean_image) -> torch.Tensor:
    """Fill the missing pixels with the average training image."""
    mask = _check(observed, mask)
    return keep_observed(mean_image.to(observed.device).expand_as(observed), observed, mask)


@torch.no_grad()
def fill_nearest(observed, mask, train_x, batch: int = 500) -> torch.Tensor:
    """Copy the missing pixels from the training image closest on the visible pixels."""
    mask = _check(observed, mask)
    bank = train_x.flatten(1).to(observed.device)
    sq = bank.pow(2).T  # (784, M)
    out = []
    for x, m in zip(observed.split(batch), mask.split(batch)):
        seen = (~m).flatten(1).float()
        # sum over visible pixels of (x - t)^2, less the term that does not depend on t
        dist = seen @ sq - 2 * (x.flatten(1) * seen) @ bank.T
        nearest = bank[dist.argmin(1)].view_as(x)
        out.append(keep_observed(nearest, x, m))
    return torch.cat(out)


# --- repair with a VAE --------------------------------------------------------------------------

def keep_observed(guess, observed, mask) -> torch.Tensor:
    """Data consistency: the guess on the missing pixels (mask True), the observed pixels
    everywhere else (they are known, a repair must not change them)."""
    return torch.where(mask, guess, observed)


def inpaint_step(x, observed, mask, reconstruct) -> torch.Tensor:
    """One encode/decode step: the model's reconstruction, kept only on the missing pixels."""
    return keep_observed(reconstruct(x), observed, mask)


@torch.no_grad()
def inpaint_iterate(vae, observed, mask, steps: int = 20, init=None) -> torch.Tensor:
    """Repeat `inpaint_step` with the VAE's reconstruction, starting from `init` (default: the
    missing pixels at 0). Each round the encoder sees a better guess, the decoder draws a digit
    that agrees with the visible pixels a little more (Rezende et al. 2014 fill in missing data
    with a sampling version of this chain)."""
    mask = _check(observed, mask)
    x = keep_observed(init if init is not None else torch.zeros_like(observed), observed, mask)
    for __ in range(steps):
        x = inpaint_step(x, observed, mask, vae.reconstruct)
    return x


def fit_latent(decode, z0, data_loss, steps: int = 150, lr: float = 0.1) -> torch.Tensor:
    """The code z that best explains an observation under a decoder and the prior N(0, I):
    minimise data_loss(logits) + |z|^2 / 2 per image with Adam, the decoder's weights fixed
    (a MAP estimate; Bora et al. 2017 do this with GAN and VAE decoders). Returns z (B, d)."""
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for __ in range(steps):
            loss = (data_loss(decode(z)) + 0.5 * z.pow(2).sum(1)).sum()
            (grad,) = torch.autograd.grad(loss, z)
            z.grad = grad
            opt.step()
    return z.detach()


def inpaint_latent(vae, observed, mask, steps: int = 150, lr: float = 0.1, init=None) -> torch.Tensor:
    """Repair by fitting the latent code to the visible pixels (Bernoulli likelihood of those
    pixels only), starting from the encoder's code of `init` (default: `inpaint_iterate`'s
    repair); the decoded digit fills the missing pixels."""
    mask = _check(observed, mask)
    seen = (~mask).float()
    start = inpaint_iterate(vae, observed, mask, steps=10) if init is None else init
    with torch.no_grad():
        z0 = vae.encode(start)[0]

    def data_loss(logits):
        return (F.binary_cross_entropy_with_logits(logits, observed, reduction="none") * seen).flatten(1).sum(1)

    z = fit_latent(vae.decode, z0, data_loss, steps, lr)
    with torch.no_grad():
        return keep_observed(torch.sigmoid(vae.decode(z)), observed, mask)


# --- super-resolution ---------------------------------------------------------------------------

def downsample(x, factor: int = 2) -> torch.Tensor:
    """Average each factor x factor block: (N, 1, 28, 28) -> (N, 1, 28/factor, 28/factor)."""
    return F.avg_pool2d(x, factor)


def upsample_bicubic(low, size: int = SIZE) -> torch.Tensor:
    """Bicubic interpolation back to size x size, clipped to [0, 1] (the classic baseline)."""
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def project_consistent(x, low, iters: int = 50) -> torch.Tensor:
    """The image nearest to `x` (least squares) whose block averages equal `low` exactly, with
    every pixel in [0, 1]: the projection onto the images consistent with the low-resolution
    input. In each block the pixels move by one common shift t and are clipped to [0, 1],
    x_i + t clipped; t is found by bisection so that the block's mean is the low pixel (the
    optimality conditions of this projection give exactly that form)."""
    if not torch.is_tensor(low) or low.dim() != 4 or SIZE % low.shape[-1]:
        raise ValueError(_("low must be images (N, 1, s, s) with s dividing 28, got {got}").format(
            got=getattr(low, "shape", low)))
    factor = x.shape[-1] // low.shape[-1]
    target = F.interpolate(low, scale_factor=factor, mode="nearest")  # the low pixel of each block

    def block_mean(t):
        return F.interpolate(downsample((x + t).clamp(0, 1), factor), scale_factor=factor, mode="nearest")

    lo, hi = torch.full_like(x, -1.0), torch.full_like(x, 1.0)  # t = -1 gives 0, t = +1 gives 1
    for __ in range(iters):  # the block mean grows with t: halve the bracket
        mid = (lo + hi) / 2
        above = block_mean(mid) > target
        hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
    out = (x + (lo + hi) / 2).clamp(0, 1)
    # the last rounding error (about 1e-15 after 50 halvings) is spread evenly over the block
    return (out + target - F.interpolate(downsample(out, factor), scale_factor=factor, mode="nearest")).clamp(0, 1)


def super_resolve(vae, low, steps: int = 150, lr: float = 0.1, consistent: bool = True) -> torch.Tensor:
    """The 28x28 digit whose block averages match `low` best under the VAE: fit the latent code
    (starting from the encoder's code of the bicubic image) and decode it. The fit only pulls the
    block averages towards `low` (a penalty); with `consistent` (default) the decoded digit is then
    projected onto the images whose block averages equal `low` exactly (`project_consistent`)."""
    if not torch.is_tensor(low) or low.dim() != 4 or low.shape[1] != 1 or low.shape[-1] != low.shape[-2] \
            or low.shape[-1] < 1 or SIZE % low.shape[-1]:
        raise ValueError(_("low must be low-resolution images (N, 1, s, s) with s dividing 28 (14, 7, 4), e.g. "
                           "downsample(x); got {got}").format(got=getattr(low, "shape", type(low).__name__)))
    factor = SIZE // low.shape[-1]
    start = upsample_bicubic(low)
    with torch.no_grad():
        z0 = vae.encode(start)[0]

    def data_loss(logits):
        p = downsample(torch.sigmoid(logits), factor).clamp(1e-6, 1 - 1e-6)
        # each low-resolution pixel stands for factor^2 pixels of the image
        return factor ** 2 * F.binary_cross_entropy(p, low, reduction="none").flatten(1).sum(1)

    z = fit_latent(vae.decode, z0, data_loss, steps, lr)
    with torch.no_grad():
        out = torch.sigmoid(vae.decode(z))
    return project_consistent(out, low) if consistent else out
