"""Chapter 02's exercises: the pieces of the VAE."""
from __future__ import annotations

import math

import torch

from ..losses import bernoulli_nll, gaussian_kl
from ..vae_parts import PartsVAE
from ..i18n import N_, _
from .framework import CheckFailed, Report, call, compare, _as_tensor, _require_callable

HINTS = {
    "2.1": (N_("The encoder section above: an image (B, 1, 28, 28) goes in; out come two tensors of shape (B, "
               "latent_dim), the mean and the log-variance of q(z|x). Either flatten the image and use fully connected "
               "layers, or first halve its size twice with convolutions (28 -> 14 -> 7) and flatten after. The last "
               "layer has no activation: a mean and a log-variance may be any real number."),
            N_("Tools: nn.Sequential; nn.Conv2d with a 4x4 kernel, stride 2 and padding 1 halves the height and width; "
               "nn.ReLU between layers; nn.Flatten; nn.Linear, whose input size after two such convolutions is "
               "channels x 7 x 7. For the two outputs: two separate nn.Linear heads, or one head with 2 x latent_dim "
               "outputs cut in two with .chunk(2, dim=1). Build the layers in __init__ (use the latent_dim argument), "
               "call them in forward.")),
    "2.2": (N_("The reparameterisation formula above: the sample is the mean plus sigma times standard normal noise, "
               "and sigma comes from the log-variance (exponentiate half of it)."),
            N_("Tools: torch.exp for sigma; torch.randn_like draws noise with the shape, dtype and device of its "
               "argument. No .sample() and no .detach(): gradients must reach mu and logvar.")),
    "2.3": (N_("The decoder section above: the decoder mirrors the encoder, from latent_dim numbers up to one logit "
               "per pixel, returned with shape (B, 1, 28, 28). The last layer is linear: no sigmoid (the loss applies "
               "it), no ReLU (a logit can be negative)."),
            N_("Tools: nn.Linear up to channels x 7 x 7 values, nn.Unflatten to a (channels, 7, 7) picture, then "
               "nn.ConvTranspose2d with a 4x4 kernel, stride 2 and padding 1, which doubles the size (7 -> 14 -> 28), "
               "with nn.ReLU between layers but not after the last. Or fully connected layers up to 784 values and "
               "nn.Unflatten back to one 28 x 28 channel.")),
    "2.4": (N_("The loss section above: the Bernoulli negative log-likelihood is the binary cross-entropy. Keep one "
               "number per pixel, then add up the 784 pixels of each image: one number per image."),
            N_("Tools: torch.nn.functional (imported as F) has a binary cross-entropy that takes logits; ask it for "
               "reduction='none', then flatten each image (.flatten(1)) and sum over dim 1.")),
    "2.5": (N_("The closed form right above: one term per latent dimension, added up over the latent dimensions (not "
               "averaged), one value per row of mu."),
            N_("Tools: logvar.exp() is sigma squared, mu.pow(2) is mu squared; sum over dim=1; mind the factor -1/2 in "
               "front.")),
    "2.6": (N_("The formula at the top of the loss section: -ELBO = reconstruction NLL + KL, for each image."),
            N_("Tools: the two functions you just wrote; each already returns one value per image, shape (B,).")),
    "2.7": (N_("The training section above: one optimisation step on a batch. The model gives logits, mean and "
               "log-variance; the loss is the batch mean of the per-image -ELBO; then clear the old gradients, "
               "backpropagate, update; hand the losses back to gh.fit in a dict."),
            N_("Tools: put the model in training mode first; model(x) returns (logits, mu, logvar); your "
               "reconstruction_term and kl_term, each averaged over the batch with .mean(); the optimiser's zero_grad, "
               "the loss's backward, the optimiser's step, in that order; return a dict of tensors (not .item() "
               "numbers) with the key 'loss', plus 'reconstruction' and 'kl' for the live plot.")),
}


def _latent_cases():
    g = torch.Generator().manual_seed(0)
    return {
        _("random mu and logvar, batch 4, 3 latent dims"): (torch.randn(4, 3, generator=g),
                                                        torch.randn(4, 3, generator=g)),
        _("q equal to the prior (mu=0, logvar=0)"): (torch.zeros(2, 5), torch.zeros(2, 5)),
        _("one latent dim, sigma=2"): (torch.tensor([[0.0]]), torch.tensor([[math.log(4.0)]])),
    }


def check_kl(fn) -> None:
    """Exercise: kl_term(mu, logvar) -> KL(N(mu, diag sigma^2) || N(0, I)) per example, shape (B,)."""
    _require_callable(fn, "kl_term", "check_kl(kl_term)")
    r = Report("kl_term")
    one_dim = _("one latent dim, sigma=2")  # the case whose KL the verdict spells out
    for case, (mu, logvar) in _latent_cases().items():
        out, err = call(fn, mu.clone(), logvar.clone())
        if err:
            r.fail(case, err)
            continue
        ref = gaussian_kl(mu, logvar)
        terms = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
        std = (0.5 * logvar).exp()
        mistakes = {
            _("wrong sign: the KL divergence is never negative"): -ref,
            _("you averaged over the latent dimensions; sum them (a KL of independent dims adds up)"):
                terms.mean(1),
            _("one number per example expected: sum over dim=1 only, not over the batch"): ref.sum(),
            _("the mean over the batch: keep one KL per example, shape (B,)"): ref.mean(),
            _("forgot to sum: one KL per example, shape (B,), summed over the latent dims"): terms,
            _("you used sigma (exp(logvar/2)) where the formula has sigma^2 = exp(logvar)"):
                -0.5 * (1 + logvar - mu.pow(2) - std).sum(1),
            _("the factor 1/2 is missing"): 2 * ref,
        }
        why = compare(out, ref, mistakes, _("one KL per example, shape (B,)"))
        if why:
            if case == one_dim and not (torch.is_tensor(out) and out.shape != ref.shape):
                why += _(" (for mu=0, sigma=2 the KL is {ref:.4f} nats)").format(ref=ref.item())
            r.fail(case, why)
        else:
            r.ok(case)
    return r.finish()


def check_reparameterize(fn) -> None:
    """Exercise: reparameterize(mu, logvar) -> z = mu + sigma * eps, differentiable in mu and logvar."""
    _require_callable(fn, "reparameterize", "check_reparameterize(reparameterize)")
    r = Report("reparameterize")
    n = 200_000
    mu = torch.full((n, 1), 1.5, requires_grad=True)
    logvar = torch.full((n, 1), math.log(0.25), requires_grad=True)  # sigma = 0.5
    torch.manual_seed(0)
    z, err = call(fn, mu, logvar)
    if err is None:
        z, err = _as_tensor(z, _("the sample z"))
    if err:
        r.fail(_("sampling"), err)
        return r.finish()
    if z.shape != mu.shape:
        r.fail(_("shape"), _("z must have the shape of mu {mu_shape}, got {z_shape}").format(
            mu_shape=tuple(mu.shape), z_shape=tuple(z.shape)))
        return r.finish()
    m, s = z.detach().mean().item(), z.detach().std().item()
    if s < 1e-6:
        r.fail(_("randomness"), _("z does not vary: add sigma * eps with eps = torch.randn_like(mu)"))
    elif abs(s - 0.25) < 0.01:
        r.fail(_("spread"), _("z has standard deviation 0.25 = sigma^2: use sigma = exp(0.5 * logvar)"))
    elif abs(s - math.log(0.25)) < 0.02 or abs(s - abs(math.log(0.25))) < 0.02:
        r.fail(_("spread"), _("z's spread equals logvar: the scale is sigma = exp(0.5 * logvar)"))
    elif abs(s - 0.5) > 0.01:
        r.fail(_("spread"), _("z should have standard deviation sigma = 0.5 here, got {s:.3f}").format(s=s))
    else:
        r.ok(_("spread is sigma"))
    if abs(m - 1.5) > 0.01:
        r.fail(_("mean"), _("z should have mean mu = 1.5 here, got {m:.3f}").format(m=m))
    else:
        r.ok(_("mean is mu"))
    if not z.requires_grad:
        r.fail(_("gradient"), _("no gradient reaches mu and logvar: build z from mu and logvar with ordinary "
                                "operations (no .sample(), .detach() or torch.normal)"))
    else:
        z.sum().backward()
        if mu.grad is None or not torch.allclose(mu.grad, torch.ones_like(mu)):
            r.fail(_("gradient"), _("dz/dmu should be 1: z = mu + sigma * eps"))
        elif logvar.grad is None or not torch.allclose(logvar.grad, 0.5 * (z - mu).detach(), atol=1e-5):
            r.fail(_("gradient"), _("dz/dlogvar should be 0.5 * sigma * eps: is sigma = exp(0.5 * logvar)?"))
        else:
            r.ok(_("gradients flow to mu and logvar"))
    return r.finish()


def _pixel_cases():
    g = torch.Generator().manual_seed(1)
    return {
        _("batch of 3 grey-level images"): (torch.randn(3, 1, 28, 28, generator=g),
                                         torch.rand(3, 1, 28, 28, generator=g)),
        _("binary images, confident logits"): (4 * torch.randn(2, 1, 28, 28, generator=g),
                                            (torch.rand(2, 1, 28, 28, generator=g) > 0.5).float()),
    }


def check_reconstruction(fn) -> None:
    """Exercise: reconstruction_term(logits, x) -> -log p(x|z), Bernoulli, summed over pixels, (B,)."""
    _require_callable(fn, "reconstruction_term", "check_reconstruction(reconstruction_term)")
    r = Report("reconstruction_term")
    for case, (logits, x) in _pixel_cases().items():
        out, err = call(fn, logits.clone(), x.clone())
        if err:
            r.fail(case, err)
            continue
        ref = bernoulli_nll(logits, x)
        p = torch.sigmoid(logits)
        per_pixel = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
        mistakes = {
            _("you averaged over the 784 pixels: sum them (the article's mean makes the reconstruction term 784 times "
              "weaker than the KL)"): per_pixel.flatten(1).mean(1),
            _("wrong sign: a negative log-likelihood is positive here"): -ref,
            _("one number per image expected, not the sum over the batch"): ref.sum(),
            _("one number per image expected, not the batch mean"): ref.mean(),
            _("the input is logits: use binary_cross_entropy_with_logits (or apply sigmoid first)"):
                torch.nn.functional.binary_cross_entropy(
                    logits.clamp(1e-6, 1 - 1e-6), x, reduction="none").flatten(1).sum(1),
            _("that is the squared error, not the Bernoulli negative log-likelihood"):
                (p - x).pow(2).flatten(1).sum(1),
            _("that is the mean squared error (the article's formula), not the Bernoulli negative "
              "log-likelihood"): (p - x).pow(2).flatten(1).mean(1),
            _("forgot to sum over pixels: one number per image, shape (B,)"): per_pixel,
            _("PyTorch's default reduction='mean' averages over pixels and images: pass reduction='none' and sum over "
              "the pixels of each image"): per_pixel.mean(),
        }
        why = compare(out, ref, mistakes, _("one number per image, shape (B,)"), atol=1e-3)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_neg_elbo(fn) -> None:
    """Exercise: neg_elbo(logits, x, mu, logvar) -> reconstruction + KL per image, shape (B,)."""
    _require_callable(fn, "neg_elbo", "check_neg_elbo(neg_elbo)")
    r = Report("neg_elbo")
    g = torch.Generator().manual_seed(2)
    logits, x = torch.randn(3, 1, 28, 28, generator=g), torch.rand(3, 1, 28, 28, generator=g)
    mu, logvar = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    out, err = call(fn, logits, x, mu, logvar)
    if err:
        r.fail(_("batch of 3"), err)
        return r.finish()
    rec, kl = bernoulli_nll(logits, x), gaussian_kl(mu, logvar)
    ref = rec + kl
    mistakes = {
        _("the KL is subtracted: -ELBO = reconstruction NLL + KL"): rec - kl,
        _("that is the ELBO itself; the loss to minimise is its negative"): -(rec + kl),
        _("the KL term is missing (that is a plain autoencoder's loss)"): rec,
        _("the reconstruction term is missing"): kl,
        _("the reconstruction term is averaged over pixels instead of summed"):
            rec / 784 + kl,
        _("one number per image expected, not the batch mean"): ref.mean(),
        _("one number per image expected, not the batch sum"): ref.sum(),
    }
    why = compare(out, ref, mistakes, _("one -ELBO per image, shape (B,)"), atol=1e-3)
    r.fail(_("batch of 3"), why) if why else r.ok(_("reconstruction + KL per image"))
    return r.finish()


# ---- the build exercises: the encoder, the decoder, the training step ----

_MIN_PARAMS, _MAX_PARAMS = 1_000, 5_000_000


def _conv_rule(m) -> str:
    k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
    if isinstance(m, torch.nn.ConvTranspose2d):
        op = m.output_padding[0]
        return f"out = (in - 1) x {s} - 2 x {p} + {k}" + (f" + {op}" if op else "")
    return f"out = floor((in + 2 x {p} - {k}) / {s}) + 1"


def _layer_trace(module: torch.nn.Module, x: torch.Tensor) -> tuple[list[str], str | None]:
    """Run `module` on `x`, recording each layer's output shape; returns (lines, error or None).

    Convolutions name their arithmetic, e.g. "Conv2d(k=4, s=2, p=1): 28x28 -> 14x14".
    """
    lines, hooks = [], []

    def hook(name):
        def record(m, inputs, output):
            shape_in = tuple(inputs[0].shape) if inputs and torch.is_tensor(inputs[0]) else "?"
            shape_out = tuple(output.shape) if torch.is_tensor(output) else type(output).__name__
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
                lines.append(f"{name}: {type(m).__name__}({m.in_channels}->{m.out_channels}, k={k}, s={s}, "
                             f"p={p}): {shape_in[-2]}x{shape_in[-1]} -> {shape_out[-2]}x{shape_out[-1]} "
                             f"({_conv_rule(m)})")
            elif isinstance(m, torch.nn.Linear):
                lines.append(f"{name}: Linear({m.in_features}->{m.out_features}): {shape_in} -> {shape_out}")
            elif isinstance(m, (torch.nn.Flatten, torch.nn.Unflatten)):
                lines.append(f"{name}: {type(m).__name__}: {shape_in} -> {shape_out}")
        return record

    for name, m in module.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear, torch.nn.Flatten,
                          torch.nn.Unflatten)):
            hooks.append(m.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            module(x)
        error = None
    except Exception as e:  # the student's shape bug, reported with the trace
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    finally:
        for h in hooks:
            h.remove()
    return lines, error


def _shape_story(module, x, got=None, want=None) -> str:
    lines, error = _layer_trace(module, x)
    story = ""
    if error:
        story = _("the forward pass raised {error}").format(error=error)
        if "cannot be multiplied" in error:
            story += (_(" (a Linear layer's in_features must equal what arrives: after Flatten that is channels x "
                        "height x width of the last conv's output)"))
    if lines:
        story += (". " if story else "") + _("layer by layer: ") + "; ".join(lines)
        story += (_(". Reminder: a 4x4 stride-2 conv with padding 1 halves 28 -> 14 -> 7, and a 4x4 stride-2 "
                    "transposed conv with padding 1 doubles 7 -> 14 -> 28"))
    return story


def _build(cls, name: str, latent_dim: int, r: Report):
    if not callable(cls):
        raise CheckFailed(_("❌ {name}: pass your class itself, e.g. check_{name_lower}({name}) (got {type}).").format(
            name=name, name_lower=name.lower(), type=type(cls).__name__))
    torch.manual_seed(0)
    module, err = call(cls, latent_dim)
    if err:
        r.fail(f"{name}({latent_dim})", err)
        return None
    if not isinstance(module, torch.nn.Module):
        r.fail(f"{name}({latent_dim})", _("{name} must be an nn.Module subclass (class {name}(nn.Module))").format(
            name=name))
        return None
    return module


def _count_params(module, name: str, r: Report) -> None:
    n = sum(p.numel() for p in module.parameters())
    if n < _MIN_PARAMS:
        r.fail(_("size"), _("{n:,} parameters: too few to model digits (did you create the layers in __init__ as "
                            "attributes, e.g. self.net = nn.Sequential(...)?)").format(n=n))
    elif n > _MAX_PARAMS:
        r.fail(_("size"), _("{n:,} parameters: too many to train on a CPU in this chapter's budget (keep it under "
                            "{MAX_PARAMS:,}; the reference has about 0.85 "
                            "million)").format(n=n, MAX_PARAMS=_MAX_PARAMS))
    else:
        r.ok(_("{n:,} parameters").format(n=n))


def _gradients_flow(module, loss, r: Report) -> None:
    module.zero_grad(set_to_none=True)
    loss.backward()
    dead = [n for n, p in module.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    if dead:
        r.fail(_("gradients"), _("no gradient reaches {parameters}: is every layer used in forward, without .detach(), "
                                 ".item() or torch.no_grad()?").format(
            parameters=", ".join(dead[:4]) + (" ..." if len(dead) > 4 else "")))
    else:
        r.ok(_("gradients reach every parameter"))


def check_encoder(cls) -> None:
    """Exercise: Encoder(latent_dim), forward(x (B,1,28,28)) -> (mean, log-variance), each (B, latent_dim)."""
    r = Report("Encoder")
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    for d in (16, 3):
        enc = _build(cls, "Encoder", d, r)
        if enc is None:
            return r.finish()
        enc.train()
        out, err = call(enc, x)
        if err:
            r.fail(f"latent_dim={d}", _shape_story(enc, x))
            return r.finish()
        if torch.is_tensor(out):
            hint = (_(" (it has both: split it into two halves with .chunk(2, dim=1))")
                    if out.dim() == 2 and out.shape[1] == 2 * d else "")
            r.fail(f"latent_dim={d}", _("return two tensors, the mean and the log-variance, not one tensor of shape "
                                        "{out_shape}{hint}").format(out_shape=tuple(out.shape), hint=hint))
            return r.finish()
        if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(torch.is_tensor(t) for t in out):
            got = (_("{type} of {n} items").format(type=type(out).__name__, n=len(out))
                   if isinstance(out, (tuple, list)) else type(out).__name__)
            r.fail(f"latent_dim={d}", _("return two tensors (mean, log-variance), got {got}").format(got=got))
            return r.finish()
        mu, logvar = out
        want = (4, d)
        bad = [f"{what} {tuple(t.shape)}" for what, t in ((_("mean"), mu), (_("log-variance"), logvar))
               if tuple(t.shape) != want]
        if bad:
            got = ", ".join(bad)
            if any(tuple(t.shape) == (4, 2 * d) for t in out):
                story = _("each half must have latent_dim columns: the last layer gives 2 x latent_dim, then split it")
            elif any(tuple(t.shape) == (4, 16) for t in out) and d != 16:
                story = _("Encoder(3) gave 16 columns: use the latent_dim argument, not the constant LATENT")
            else:
                story = _shape_story(enc, x, got, f"({4}, {d}) each")
            r.fail(f"latent_dim={d}", _("expected (B, latent_dim) = {want} for each, got {got}: {story}").format(
                want=want, got=got, story=story))
            return r.finish()
        r.ok(_("two tensors of shape (B, {d})").format(d=d))
    if mu is logvar or torch.equal(mu, logvar):
        r.fail(_("two outputs"), _("the mean and the log-variance are the same numbers: they need separate outputs "
                                   "(e.g. the two halves of the last layer's 2 x latent_dim)"))
    elif (logvar >= 0).all():
        r.fail(_("log-variance"), _("the log-variance is never negative: do not pass it through softplus, exp, ReLU or "
                                    "abs. Any real number is a valid log-variance (exp(logvar) is the variance, and it "
                                    "is positive anyway)"))
    elif (mu >= 0).all():
        r.fail(_("mean"), _("the mean is never negative: the last layer must be linear (no ReLU on mu)"))
    else:
        r.ok(_("mean and log-variance unconstrained"))
    _gradients_flow(enc, mu.sum() + logvar.sum(), r)
    _count_params(enc, "Encoder", r)
    return r.finish()


def check_decoder(cls) -> None:
    """Exercise: Decoder(latent_dim), forward(z (B, latent_dim)) -> Bernoulli logits (B, 1, 28, 28)."""
    r = Report("Decoder")
    for d in (16, 3):
        dec = _build(cls, "Decoder", d, r)
        if dec is None:
            return r.finish()
        dec.train()
        z = torch.randn(4, d, generator=torch.Generator().manual_seed(4))
        out, err = call(dec, z)
        if err:
            r.fail(f"latent_dim={d}", _shape_story(dec, z))
            return r.finish()
        out, err = _as_tensor(out, _("the logits, shape (B, 1, 28, 28)"))
        if err:
            r.fail(f"latent_dim={d}", err)
            return r.finish()
        if tuple(out.shape) != (4, 1, 28, 28):
            if tuple(out.shape) in ((4, 784), (4, 28, 28)):
                story = _("reshape to (B, 1, 28, 28), e.g. with nn.Unflatten(1, (1, 28, 28))")
            else:
                story = _shape_story(dec, z, tuple(out.shape), "(4, 1, 28, 28)")
            r.fail(f"latent_dim={d}", _("expected logits of shape (B, 1, 28, 28) = (4, 1, 28, 28), got {out_shape}: "
                                        "{story}").format(out_shape=tuple(out.shape), story=story))
            return r.finish()
        r.ok(_("(B, {d}) -> (B, 1, 28, 28)").format(d=d))
    lo, hi = out.min().item(), out.max().item()
    s0, s1 = 0.5, torch.sigmoid(torch.tensor(1.0)).item()
    if lo >= 0 and (out == 0).float().mean() > 0.05:
        r.fail(_("logits"), _("no value is negative and many are exactly 0: a ReLU on the output? The last layer must "
                              "be linear; a logit below 0 means a pixel more likely off than on"))
    elif lo >= s0 - 1e-6 and hi <= s1 + 1e-6:
        r.fail(_("logits"), _("every value lies in [{s0}, {s1:.3f}] = [sigmoid(0), sigmoid(1)]: sigmoid applied twice. "
                              "Return logits, with no sigmoid at all: the loss applies it").format(s0=s0, s1=s1))
    elif lo >= 0 and hi <= 1:
        r.fail(_("logits"), _("every value lies in [0, 1]: these look like probabilities (a sigmoid at the end). "
                              "Return logits, any real numbers: binary_cross_entropy_with_logits applies the sigmoid "
                              "itself, exactly, and sigmoid(logits) gives the pixel probabilities when you need them"))
    elif lo >= 0:
        r.fail(_("logits"), _("no value is negative: the last layer must be linear (no ReLU, softplus or exp); a logit "
                              "below 0 means a pixel more likely off than on"))
    else:
        r.ok(_("returns logits (unbounded)"))
    _gradients_flow(dec, out.pow(2).sum(), r)
    _count_params(dec, "Decoder", r)
    return r.finish()


class _CheckEncoder(torch.nn.Module):
    """A tiny encoder with a near-zero variance, so that z ~ mu whatever noise the step draws."""

    def __init__(self, d):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 2 * d))

    def forward(self, x):
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar - 20.0


def _check_vae(d: int = 4) -> PartsVAE:
    """A tiny VAE (linear layers) whose encoder has a near-zero variance."""
    decoder = torch.nn.Sequential(torch.nn.Linear(d, 784), torch.nn.Unflatten(1, (1, 28, 28)))
    return PartsVAE(_CheckEncoder(d), decoder, d)


def _vae_reference_step(model, x, lr: float):
    """What the right step does, on a copy: the batch-mean -ELBO, its parts and the parameter update."""
    import copy

    ref_model = copy.deepcopy(model)
    logits, mu, logvar = ref_model(x)
    rec, kl = bernoulli_nll(logits, x), gaussian_kl(mu, logvar)
    ref = (rec + kl).mean()
    ref.backward()
    expected = {n: -lr * p.grad for n, p in ref_model.named_parameters()}
    return logits, mu, rec, kl, ref, expected


def _vae_step_error(err: str, r: Report) -> None:
    """Report an error raised by the step, with the hint for the probabilities-vs-logits slip."""
    if "between 0 and 1" in err:
        err += (_(" (F.binary_cross_entropy wants probabilities; the decoder gives logits: use "
                  "F.binary_cross_entropy_with_logits, or your reconstruction_term)"))
    r.fail(_("one step"), err)


def _check_vae_returns(out, r: Report) -> bool:
    """The step must return a dict of scalar tensors with 'loss'; False if there is no loss to check."""
    keys = _(" with keys {out}").format(out=list(out)) if isinstance(out, dict) else ""
    if not isinstance(out, dict) or "loss" not in out:
        r.fail(_("return value"), _("return the losses as a dict of scalar tensors with the key 'loss', e.g. {{'loss': "
                                    "loss, 'reconstruction': rec, 'kl': kl}}; gh.fit records and plots each (got "
                                    "{type}{keys})").format(type=type(out).__name__, keys=keys))
        return False
    floats = [k for k, v in out.items() if not torch.is_tensor(v)]
    if floats:
        r.fail(_("return value"), _("{keys}: return tensors, not Python numbers (.item() waits for the device at every "
                                    "step; gh.fit reads the losses back in bulk)").format(keys=", ".join(floats)))
    elif any(v.numel() != 1 for v in out.values()):
        r.fail(_("return value"), _("each loss must be one number (a scalar tensor): average over the batch"))
    else:
        r.ok(_("returns a dict of scalar tensors"))
    return True


def _check_vae_loss(loss, x, logits, mu, rec, kl, ref, r: Report) -> None:
    """Compare the returned loss with the batch-mean -ELBO, naming the typical wrong losses."""
    import torch.nn.functional as F

    p = torch.sigmoid(logits.detach())
    mistakes = {
        _("the reconstruction term is averaged over the 784 pixels instead of summed (the article's mistake: the KL "
          "term then wins and the posterior collapses)"): (rec / 784 + kl).mean(),
        _("the KL term is missing: that is a plain autoencoder's loss"): rec.mean(),
        _("the KL is subtracted: -ELBO = reconstruction NLL + KL"): (rec - kl).mean(),
        _("that is the ELBO, not its negative: the loss to minimise is -ELBO"): -ref,
        _("the loss is summed over the batch: average over the images (the learning rate would then depend on the "
          "batch size)"): (rec + kl).sum(),
        _("the KL is averaged over the latent dimensions instead of summed"): (rec + kl / mu.shape[1]).mean(),
        _("the reconstruction loss was given probabilities: binary_cross_entropy_with_logits takes the decoder's "
          "logits directly (no sigmoid before it)"):
            (F.binary_cross_entropy_with_logits(p, x, reduction="none").flatten(1).sum(1) + kl).mean(),
        _("the KL term is missing and the pixels are averaged"): (rec / 784).mean(),
    }
    why = compare(loss.detach().reshape(()), ref.detach(), mistakes, _("the batch-mean -ELBO"), atol=0.05, rtol=1e-4)
    r.fail(_("loss"), why) if why else r.ok(_("loss = mean -ELBO of the batch ({ref:.1f} nats here)").format(
        ref=ref.item()))


def _check_vae_update(model, before, expected, stale, loss, ref, r: Report) -> None:
    """Compare the parameters' move with one SGD step on the mean -ELBO, naming the usual slips."""
    delta = {n: p.detach() - before[n] for n, p in model.named_parameters()}

    def close(a, b):
        return all(torch.allclose(a[n], b[n], atol=1e-6, rtol=1e-2) for n in a)

    if all(not d.any() for d in delta.values()):
        r.fail(_("update"), _("the parameters did not change: call loss.backward() and then opt.step() (and "
                              "opt.zero_grad() before backward, not between backward and step)"))
    elif close(delta, {n: expected[n] + stale[n] for n in delta}):
        r.fail(_("update"), _("the old gradients were added to the new ones: call opt.zero_grad() before "
                              "loss.backward() (PyTorch accumulates gradients)"))
    elif close(delta, expected):
        r.ok(_("one optimiser step on the gradient of the mean -ELBO"))
    elif torch.is_tensor(loss) and loss.numel() == 1 and compare(loss.detach().reshape(()), ref.detach(), {}, "",
                                                                  atol=0.05, rtol=1e-4) is None:
        r.fail(_("update"), _("the step did not follow the gradient of the loss you returned: backward the same loss "
                              "you return, once, then opt.step()"))
    else:
        r.fail(_("update"), _("the parameters moved, but not along the gradient of the mean -ELBO (see the loss check "
                              "above)"))


def check_vae_step(fn) -> None:
    """Exercise: vae_step(model, opt, x) -> {"loss": mean -ELBO, "reconstruction": ..., "kl": ...},
    after one optimiser step; model(x) -> (logits, mu, logvar)."""
    _require_callable(fn, "vae_step", "check_vae_step(vae_step)")
    r = Report("vae_step")
    torch.manual_seed(5)
    model = _check_vae()
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(8, 1, 28, 28, generator=g) > 0.6).float()
    lr = 1e-3
    logits, mu, rec, kl, ref, expected = _vae_reference_step(model, x, lr)
    stale = {n: -lr * torch.ones_like(p) for n, p in model.named_parameters()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # the previous step's gradients, still there
    model.eval()  # as after the previous epoch's evaluation
    out, err = call(fn, model, opt, x)
    if err:
        _vae_step_error(err, r)
        return r.finish()
    if not _check_vae_returns(out, r):
        return r.finish()
    loss = out["loss"]
    if torch.is_tensor(loss) and loss.numel() == 1:
        _check_vae_loss(loss, x, logits, mu, rec, kl, ref, r)
    if not model.training:
        r.fail(_("train mode"), _("the model is still in eval mode after your step: call model.train() first (gh.fit "
                                  "evaluates in eval mode; dropout and BatchNorm behave differently in the two modes)"))
    else:
        r.ok(_("model in train mode"))
    _check_vae_update(model, before, expected, stale, loss, ref, r)
    return r.finish()
