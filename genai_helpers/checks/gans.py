"""Chapter 03's exercises: GAN losses and steps, mode counting, the Fréchet distance."""
from __future__ import annotations

import copy

import torch

from ..i18n import N_, _
from .framework import Report, call, compare, _require_callable, _scalar


def check_nonsaturating_loss(fn) -> None:
    """Exercise 3.1: generator_loss(fake_logits) = -E[log D(G(z))] from D's logits, one number."""
    _require_callable(fn, "generator_loss", "check_nonsaturating_loss(generator_loss)")
    r = Report("generator_loss")
    sp = torch.nn.functional.softplus
    g = torch.Generator().manual_seed(30)
    cases = {_("random logits, batch of 64"): 2 * torch.randn(64, generator=g),
             _("a confident discriminator (logits down to -200, where sigmoid rounds to 0)"):
                 torch.tensor([-200.0, -120.0, -3.0, 1.5])}
    for case, f in cases.items():
        out, err = call(fn, f.clone())
        if err:
            r.fail(case, err)
            continue
        out = _scalar(out)
        if torch.is_tensor(out) and out.numel() == 1 and not torch.isfinite(out).all():
            r.fail(case, _("got {out}: log(sigmoid(f)) rounds to log(0) when D is sure a fake is fake. Compute from "
                           "the logits: -log D = F.softplus(-f) (or F.binary_cross_entropy_with_logits with label "
                           "1)").format(out=out.item()))
            continue
        fd = f.double()
        ref = sp(-fd).mean()
        mistakes = {
            _("that is the saturating loss E[log(1 − D(G(z)))] of the article's §4.2.4 (ERRATA 11); the non-saturating "
              "loss is −E[log D(G(z))]"): -sp(fd).mean(),
            _("that is −E[log(1 − D(G(z)))], the fakes' term of D's loss (label 0); G wants D to call its fakes real: "
              "label 1, −E[log D(G(z))]"): sp(fd).mean(),
            _("wrong sign: the loss −E[log D(G(z))] is positive and falls as D(G(z)) rises"): -ref,
            _("you summed over the batch: take the mean"): sp(-fd).sum(),
            _("a sigmoid applied twice: the network's output is already the logit, D = sigmoid(logit)"):
                sp(-torch.sigmoid(fd)).mean(),
            _("that is E[1 − D(G(z))], without the log"): (1 - torch.sigmoid(fd)).mean(),
        }
        why = compare(out, ref, mistakes, _("one number"), atol=1e-3, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def _tiny_gan(seed: int):
    """A 3 -> 2 generator and a 2 -> 8 -> 1 discriminator (logits of shape (B,)), seeded."""
    from torch import nn

    torch.manual_seed(seed)
    G = nn.Linear(3, 2)
    D = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    return G, D


def _flat(module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def _sgd_result(module, loss_fn, lr: float) -> torch.Tensor:
    """Parameters of `module` after one SGD step on loss_fn(module), without touching module."""
    m = copy.deepcopy(module)
    grads = torch.autograd.grad(loss_fn(m), list(m.parameters()))
    return torch.cat([(p - lr * gr).detach().flatten() for p, gr in zip(m.parameters(), grads)])


def _leave_gradients(module, seed: int):
    """Put stale gradients in .grad, as a previous backward pass would have left them."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=g)


def _loss_value(out, ref_values: dict) -> str | None:
    """None if `out` (the returned loss) equals one of ref_values; else what is wrong."""
    out = _scalar(out)
    if out is None:
        return _("return the loss (a tensor with one number), e.g. `return loss.detach()`")
    if not torch.is_tensor(out) or out.numel() != 1:
        return _("return the loss as one number, got {type}").format(type=type(out).__name__) + (
            _(" of shape {out_shape}").format(out_shape=tuple(out.shape)) if torch.is_tensor(out) else "")
    if any(abs(out.item() - v) < 1e-4 * max(1.0, abs(v)) for v in ref_values.values()):
        return None
    return (_("the returned loss is {out:.4f}, expected {expected:.4f} (the loss computed before the "
              "update)").format(out=out.item(), expected=next(iter(ref_values.values()))))


def check_discriminator_step(fn) -> None:
    """Exercise 3.2: discriminator_step(D, opt_d, real, fake) -> loss; one update of D only."""
    from ..losses import discriminator_loss

    _require_callable(fn, "discriminator_step", "check_discriminator_step(discriminator_step)")
    r = Report("discriminator_step")
    sp, lr = torch.nn.functional.softplus, 0.1
    G0, D0 = _tiny_gan(31)
    g = torch.Generator().manual_seed(32)
    real, z = torch.randn(16, 2, generator=g) + 2, torch.randn(16, 3, generator=g)
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    fake = G(z)
    opt = torch.optim.SGD(D.parameters(), lr=lr)
    _leave_gradients(D, 33)
    out, err = call(fn, D, opt, real, fake)
    if err:
        r.fail(_("one step on 16 real and 16 fake points"), err)
        return r.finish()

    def upd(loss_fn):
        return _sgd_result(D0, lambda m: loss_fn(m(real), m(fake.detach())), lr)

    ref_loss = discriminator_loss(D0(real), D0(fake.detach())).item()
    g_stale = torch.Generator().manual_seed(33)
    stale = torch.cat([torch.randn(p.shape, generator=g_stale).flatten() for p in D0.parameters()])
    right = [upd(discriminator_loss), upd(lambda a, b: discriminator_loss(a, b) / 2)]
    mistakes = {
        _("D's weights did not change: call opt_d.step() after loss.backward()"): _flat(D0),
        _("D's gradients from the previous backward pass were added to this step's: call opt_d.zero_grad() before "
          "loss.backward() (G's step backpropagates through D and leaves gradients in D's "
          ".grad)"): right[0] - lr * stale,
        _("wrong sign: D went up its loss; minimise -[log D(x) + log(1 - D(G(z)))] (the article's L is what D "
          "maximises, ERRATA 10)"): 2 * _flat(D0) - right[0],
        _("labels swapped: real samples have label 1, fakes label 0"):
            upd(lambda a, b: sp(a).mean() + sp(-b).mean()),
        _("the fakes' term is missing: D must also learn to call fakes fake"): upd(lambda a, b: sp(-a).mean()),
        _("the real term is missing: D must also learn to call real samples real"):
            upd(lambda a, b: sp(b).mean()),
        _("you summed over the batch: take means (the step would grow with the batch size)"):
            upd(lambda a, b: sp(-a).sum() + sp(b).sum()),
    }
    now = _flat(D)
    if any(torch.allclose(now, w, atol=1e-5) for w in right):
        r.ok(_("D's weights took the right step"))
    else:
        why = next((d for d, w in mistakes.items() if torch.allclose(now, w, atol=1e-5)), None)
        r.fail(_("D's update"), why or _("D's weights moved, but not as one step on the discriminator loss mean "
                                         "softplus(-D(real)) + mean softplus(D(fake)) would move them"))
    leaked = [p for p in G.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    if leaked:
        r.fail(_("the generator"), _("gradients reached G: detach the fakes in D's step (D(fake.detach())); otherwise "
                                     "backward runs through G for nothing and leaves gradients in G"))
    else:
        r.ok(_("no gradient reached G"))
    why = _loss_value(out, {"mean": ref_loss, "mean over the 2B batch": ref_loss / 2})
    r.fail(_("returned loss"), why) if why else r.ok(_("returned the loss"))
    return r.finish()


def check_generator_step(fn) -> None:
    """Exercise 3.3: generator_step(D, opt_g, fake) -> loss; one non-saturating update of G only."""
    from ..losses import generator_loss_nonsaturating, generator_loss_saturating

    _require_callable(fn, "generator_step", "check_generator_step(generator_step)")
    r = Report("generator_step")
    lr = 0.1
    G0, D0 = _tiny_gan(34)
    z = torch.randn(16, 3, generator=torch.Generator().manual_seed(35))
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    opt = torch.optim.SGD(G.parameters(), lr=lr)
    _leave_gradients(G, 36)
    out, err = call(fn, D, opt, G(z))
    if err and "does not require grad" in err:
        err += (_(" — the fakes must keep their graph back to G in G's step: do not detach them (detaching is for D's "
                  "step)"))
    if err:
        r.fail(_("one step on 16 fakes"), err)
        return r.finish()

    def upd(loss_fn):
        return _sgd_result(G0, lambda m: loss_fn(D0(m(z))), lr)

    g_stale = torch.Generator().manual_seed(36)
    stale = torch.cat([torch.randn(p.shape, generator=g_stale).flatten() for p in G0.parameters()])
    right = upd(generator_loss_nonsaturating)
    mistakes = {
        _("G's weights did not change: call opt_g.step() after loss.backward()"): _flat(G0),
        _("that is the saturating loss E[log(1 - D(G(z)))] (ERRATA 11): use the non-saturating -E[log "
          "D(G(z))]"): upd(generator_loss_saturating),
        _("G's gradients from an earlier backward pass were added to this step's: call opt_g.zero_grad() before "
          "loss.backward()"): right - lr * stale,
        _("wrong sign: G made D's verdict worse; minimise -E[log D(G(z))]"): 2 * _flat(G0) - right,
        _("G was trained with label 0 (to look fake): minimise -log(1 - D) is D's job, G's label is 1"):
            upd(lambda f: torch.nn.functional.softplus(f).mean()),
    }
    now = _flat(G)
    if torch.allclose(now, right, atol=1e-5):
        r.ok(_("G's weights took the right step"))
    else:
        why = next((d for d, w in mistakes.items() if torch.allclose(now, w, atol=1e-5)), None)
        if torch.allclose(now, _flat(G0)) and all(p.grad is None or not p.grad.any() for p in G.parameters()):
            why = (_("no gradient reached G: in G's step the fakes must keep their graph back to G, do not detach them "
                     "(detaching is for D's step)"))
        r.fail(_("G's update"), why or _("G's weights moved, but not as one step on -E[log D(G(z))] would move them"))
    if torch.allclose(_flat(D), _flat(D0)):
        r.ok(_("D unchanged"))
    else:
        r.fail(_("the discriminator"), _("D's weights changed in G's step: only G's optimiser may step here (the "
                                         "article's combined model also trains D, ERRATA 16)"))
    why = _loss_value(out, {"non-saturating": generator_loss_nonsaturating(D0(G0(z))).item()})
    r.fail(_("returned loss"), why) if why else r.ok(_("returned the loss"))
    return r.finish()


def check_high_quality_counts(fn) -> None:
    """Exercise 3.4: high_quality_counts(samples, centres, std) -> (modes,) high-quality samples per mode."""
    from ..data import ring_centres
    from ..metrics import mode_coverage

    _require_callable(fn, "high_quality_counts", "check_high_quality_counts(high_quality_counts)")
    r = Report("high_quality_counts")
    centres, std = ring_centres(8), 0.02
    g = torch.Generator().manual_seed(37)
    unit = torch.nn.functional.normalize(torch.randn(40, 2, generator=g), dim=1)
    cases = {
        _("points exactly on centres 0, 0 and 5"): centres[[0, 0, 5]],
        _("points at 0.5, 1.5, 2.5 and 3.5 std from centres 2, 1, 3 and 6"):
            torch.cat([centres[2] + 0.5 * std * unit[:10], centres[1] + 1.5 * std * unit[10:30],
                       centres[3] + 2.5 * std * unit, centres[6] + 3.5 * std * unit]),
        _("2,500 samples: most near the modes, some between them, some at the origin"):
            torch.cat([centres[torch.randint(8, (2000,), generator=g)] + 1.5 * std * torch.randn(2000, 2, generator=g),
                       2 * torch.nn.functional.normalize(torch.randn(400, 2, generator=g), dim=1),
                       0.1 * torch.randn(100, 2, generator=g)]),
    }
    for case, x in cases.items():
        out, err = call(fn, x.clone(), centres.clone(), std)
        if err:
            r.fail(case, err)
            continue
        if torch.is_tensor(out):
            out = out.float()
        d = torch.cdist(x, centres)
        near, which = d.min(1)

        def counts(mask, which=which):
            return torch.bincount(which[mask], minlength=8).float()

        ref = mode_coverage(x, centres, std, min_count=1)["counts"].float()
        why = compare(out, ref, {
            _("you counted every sample at its nearest mode; count only high-quality ones, within 3 std of the "
              "centre"): counts(near >= 0),
            _("the radius is 3 standard deviations (3 * std), not 3 variances (3 * "
              "std**2)"): counts(near < 3 * std ** 2),
            _("you compared a squared distance with 3 std: compare the distance itself"): counts(near ** 2 < 3 * std),
            _("the radius is 3 std, not 2 std"): counts(near < 2 * std),
            _("the radius is 3 std, not 1 std"): counts(near < std),
            _("return counts (how many samples), not shares"): ref / len(x),
        }, _("one count per mode, shape (8,)"), atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_frechet_distance(fn) -> None:
    """Exercise 3.5: frechet_distance(mu1, sigma1, mu2, sigma2) -> the FID formula, one number."""
    from ..metrics import frechet_distance

    _require_callable(fn, "frechet_distance", "check_frechet_distance(frechet_distance)")
    r = Report("frechet_distance")
    g = torch.Generator().manual_seed(38)

    def spd(d):
        a = torch.randn(d, d, generator=g, dtype=torch.float64)
        return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)

    d = 5
    m1, m2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    s1, s2 = spd(d), spd(d)
    cases = {_("two random 5-D Gaussians"): (m1, s1, m2, s2),
             _("identical Gaussians (the distance must be 0)"): (m1, s1, m1.clone(), s1.clone()),
             _("N(0, I) against N(mu, 4 I) in 5-D"): (torch.zeros(d, dtype=torch.float64),
                                                    torch.eye(d, dtype=torch.float64),
                                                    m2, 4 * torch.eye(d, dtype=torch.float64))}
    for case, (a, sa, b, sb) in cases.items():
        out, err = call(fn, a.clone(), sa.clone(), b.clone(), sb.clone())
        if err:
            r.fail(case, err)
            continue
        out = _scalar(out)
        if torch.is_tensor(out) and out.is_complex():
            r.fail(case, _("the result is complex: take the real part of the eigenvalues' square roots, or use "
                           "eigvalsh of the symmetric sigma1^1/2 sigma2 sigma1^1/2"))
            continue
        ref = torch.tensor(frechet_distance(a, sa, b, sb), dtype=torch.float64)
        dm = (a - b).pow(2).sum()
        tr = sa.trace() + sb.trace()
        cross = ref - dm - tr
        mistakes = {
            _("the matrix square root is missing: tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^1/2), not - 2 sigma1 "
              "sigma2"): dm + tr - 2 * (sa @ sb).trace(),
            _("(sigma1 sigma2)^1/2 is a matrix square root, not the square root of each entry"):
                dm + tr - 2 * (sa * sb).abs().sqrt().trace(),
            _("the mean term is the squared distance |mu1 - mu2|^2"): dm.sqrt() + tr + cross,
            _("the cross term has a factor 2: - 2 tr((sigma1 sigma2)^1/2)"): dm + tr + cross / 2,
            _("the mean term is missing"): tr + cross,
            _("you returned the square root of the distance: FID is the squared Fréchet distance"):
                ref.clamp(min=0).sqrt(),
        }
        why = compare(out.double() if torch.is_tensor(out) else out, ref, mistakes, _("one number"),
                      atol=1e-4, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


# --- build exercises: the DCGAN's two networks and the GAN step for gh.fit ------------------------

def _trace(model, x):
    """model(x), recording (module, input shape, output shape) for every leaf module in call
    order; returns (output or None, records, error message or None)."""
    records, hooks = [], []

    def hook(mod, inp, out):
        shape_in = tuple(inp[0].shape) if inp and torch.is_tensor(inp[0]) else None
        records.append((mod, shape_in, tuple(out.shape) if torch.is_tensor(out) else None))

    for m in model.modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(hook))
    try:
        out, err = model(x), None
    except NotImplementedError as e:
        out, err = None, _("not implemented yet: {e}").format(e=e)
    except Exception as e:
        out, err = None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    finally:
        for h in hooks:
            h.remove()
    return out, records, err


def _arithmetic(mod, shape_in, shape_out) -> str:
    """One layer of the shape trail, with the size formula of (transposed) convolutions."""
    name = type(mod).__name__
    if isinstance(mod, (torch.nn.ConvTranspose2d, torch.nn.Conv2d)) and shape_in and len(shape_in) == 4:
        k, s, p = mod.kernel_size[0], mod.stride[0], mod.padding[0] if isinstance(mod.padding, tuple) else 0
        h = shape_in[-1]
        if isinstance(mod, torch.nn.ConvTranspose2d):
            op = mod.output_padding[0]
            size = (h - 1) * s - 2 * p + k + op
            formula = f"({h}-1)*{s} - 2*{p} + {k}{f' + {op}' if op else ''} = {size}"
        else:
            size = (h + 2 * p - k) // s + 1
            formula = f"floor(({h} + 2*{p} - {k}) / {s}) + 1 = {size}"
        return f"{name}(k={k}, s={s}, p={p}): {formula}"
    return name


def _trail(x, records) -> str:
    """'(8, 32) -> Linear -> (8, 3136) -> ...', listing only the layers that change the shape."""
    parts, last = [str(tuple(x.shape))], tuple(x.shape)
    for mod, shape_in, shape_out in records:
        if shape_out is not None and shape_out != last:
            parts.append(f"{_arithmetic(mod, shape_in, shape_out)} -> {shape_out}")
            last = shape_out
    return " -> ".join(parts)


def _not_doubling(records) -> str:
    for mod, shape_in, shape_out in records:
        if isinstance(mod, torch.nn.ConvTranspose2d) and shape_in and shape_out and shape_out[-1] != 2 * shape_in[-1]:
            return (_(" A transposed convolution makes (in - 1)*s - 2p + k (+ output_padding) pixels: your "
                      "{arithmetic}, not {value}. With k=4, s=2, p=1 each one doubles the size: 7 -> 14 -> 28 (the "
                      "article's shapes, ERRATA 14).").format(
                          arithmetic=_arithmetic(mod, shape_in, shape_out), value=2 * shape_in[-1]))
    return ""


def _last_leaf(records):
    return records[-1][0] if records else None


def check_dcgan_generator(cls) -> None:
    """Exercise 3.6: DCGANGenerator(latent_dim) maps (B, latent_dim) codes to (B, 1, 28, 28) in [-1, 1]."""
    from ..gan import Generator

    _require_callable(cls, "DCGANGenerator", "check_dcgan_generator(DCGANGenerator)")
    r = Report("DCGANGenerator")
    torch.manual_seed(40)
    G, err = call(cls, 32)
    if err:
        r.fail(_("building DCGANGenerator(latent_dim=32)"), err)
        return r.finish()
    if not isinstance(G, Generator) or getattr(G, "latent_dim", None) != 32:
        r.fail(_("the class"), _("subclass gh.gan.Generator and set self.latent_dim = latent_dim (G.noise() and "
                                 "G.sample(), used for training and evaluation, need it)"))
        return r.finish()
    z = torch.randn(8, 32, generator=torch.Generator().manual_seed(41))
    G.train()
    out, records, err = _trace(G, z)
    if err:
        r.fail(_("G(z) on 8 codes of size 32"), _("{err}. Shapes layer by layer: {trail}").format(
            err=err, trail=_trail(z, records))
               + _not_doubling(records))
        return r.finish()
    shape = tuple(out.shape)
    if shape != (8, 1, 28, 28):
        why = _("expected (8, 1, 28, 28), got {shape}. Shapes layer by layer: {trail}.").format(
            shape=shape, trail=_trail(z, records))
        why += _not_doubling(records)
        if shape == (8, 28, 28, 1):
            why += _(" PyTorch puts channels second: (B, 1, 28, 28), not Keras' (B, 28, 28, 1).")
        elif shape == (8, 784):
            why += _(" Images, not vectors: end with one channel of 28 x 28 pixels.")
        r.fail(_("output shape"), why)
        return r.finish()
    r.ok(_("output shape (8, 1, 28, 28)"))
    last = _last_leaf(records)
    with torch.no_grad():
        G.eval()
        wide = G(torch.cat([z, 30 * z]))
        G.train()
    if isinstance(last, torch.nn.Sigmoid) or (wide.min() >= 0 and wide.max() <= 1):
        r.fail(_("output range"), _("the images come out in [0, 1] (a sigmoid?), but the training digits are scaled to "
                                    "[-1, 1] (gh.gan.scaled): end with tanh"))
    elif wide.abs().max() > 1 + 1e-6:
        r.fail(_("output range"), _("outputs reach {largest:.2f}: the data lie in [-1, 1], end with tanh so that every "
                                    "output pixel does too").format(largest=wide.abs().max().item()))
    elif wide.min() >= 0:
        r.fail(_("output "
                 "range"), _("no output is negative (a ReLU at the end?); the data lie in [-1, 1]: end with "
                                    "tanh"))
    else:
        r.ok(_("outputs in [-1, 1]"))
    out.float().pow(2).mean().backward()
    unused = [n for n, p in G.named_parameters() if p.grad is None]
    if unused:
        r.fail(_("gradients"), _("no gradient reaches {names}: a layer created in __init__ but not used in "
                                 "forward").format(names=", ".join(unused[:3])))
    else:
        r.ok(_("every parameter gets a gradient"))
    return r.finish()


def check_dcgan_discriminator(cls) -> None:
    """Exercise 3.7: DCGANDiscriminator() maps (B, 1, 28, 28) images to (B,) logits."""
    _require_callable(cls, "DCGANDiscriminator", "check_dcgan_discriminator(DCGANDiscriminator)")
    r = Report("DCGANDiscriminator")
    torch.manual_seed(42)
    D, err = call(cls)
    if err:
        r.fail(_("building DCGANDiscriminator()"), err)
        return r.finish()
    if not isinstance(D, torch.nn.Module):
        r.fail(_("the class"), _("DCGANDiscriminator() built a {type}, not a module: subclass nn.Module and call "
                                 "super().__init__() first in __init__").format(type=type(D).__name__))
        return r.finish()
    g = torch.Generator().manual_seed(43)
    x = (torch.rand(8, 1, 28, 28, generator=g) * 2 - 1).requires_grad_()
    D.train()
    out, records, err = _trace(D, x)
    if err:
        r.fail(_("D(x) on 8 images"), _("{err}. Shapes layer by layer: {trail} (a strided convolution makes floor((in "
                                        "+ 2p - k) / s) + 1 pixels: with k=4, s=2, p=1, 28 -> 14 -> 7)").format(
                                         err=err, trail=_trail(x, records)))
        return r.finish()
    shape = tuple(out.shape)
    if shape == (8, 1):
        r.fail(_("output shape"), _("got (8, 1): return one logit per image, shape (B,) (squeeze the last axis), as "
                                    "gh.losses.discriminator_loss and the GAN step expect"))
        return r.finish()
    if shape != (8,):
        r.fail(_("output shape"), _("expected (8,), one logit per image, got {shape}. Shapes layer by layer: "
                                    "{trail}").format(shape=shape, trail=_trail(x, records)))
        return r.finish()
    r.ok(_("one logit per image, shape (8,)"))
    with torch.no_grad():
        D.eval()
        probe = torch.cat([x.detach(), -torch.ones(8, 1, 28, 28), torch.ones(8, 1, 28, 28),
                           3 * torch.randn(16, 1, 28, 28, generator=g)])
        many = D(probe)
        D.train()
    if isinstance(_last_leaf(records), torch.nn.Sigmoid) or (many.min() >= 0 and many.max() <= 1):
        r.fail(_("logits"), _("D returns probabilities (a sigmoid at the end?): the losses "
                              "(gh.losses.discriminator_loss, binary_cross_entropy_with_logits) apply the sigmoid "
                              "themselves, so yours would be applied twice. Return the logit f(x)"))
    else:
        r.ok(_("returns logits"))
    first = next((i for i, (m, __, ___) in enumerate(records)
                  if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))), None)
    if first is not None and first + 1 < len(records) and isinstance(
            records[first + 1][0], (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
        r.fail(_("first layer"), _("batch norm right after D's first layer: Radford et al. (2016) leave it out of D's "
                                   "input layer (it destabilises training), and with batch norm D's verdict on an "
                                   "image depends on the rest of its batch (all real or all fake)"))
    else:
        r.ok(_("no batch norm in the first layer"))
    out.sum().backward()
    if x.grad is None or not x.grad.abs().sum() > 0:
        r.fail(_("gradient to the input"), _("no gradient reaches the images: G learns through D's gradient with "
                                             "respect to its input; no detach or no_grad inside forward"))
    else:
        r.ok(_("the gradient reaches the input"))
    return r.finish()


class _TinyG(torch.nn.Module):
    """A 3 -> 8 (batch norm) -> 2 generator with noise(), for checking the GAN step."""

    latent_dim = 3

    def __init__(self):
        super().__init__()
        from torch import nn
        self.net = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))

    def noise(self, n, generator=None):
        return torch.randn(n, 3, generator=generator)

    def forward(self, z):
        return self.net(z)


def _gan_step_variant(G, D, opt_g, opt_d, real, *, d_first=True, fresh=False, g_loss=None, labels_swapped=False):
    """One expected (or one mistaken) GAN step, applied to G and D in place."""
    from ..losses import discriminator_loss, generator_loss_nonsaturating

    g_loss = g_loss or generator_loss_nonsaturating
    G.train()
    D.train()
    fake = G(G.noise(len(real)))

    def d_step():
        opt_d.zero_grad()
        a, b = D(real), D(fake.detach())
        (discriminator_loss(b, a) if labels_swapped else discriminator_loss(a, b)).backward()
        opt_d.step()

    def g_step():
        opt_g.zero_grad()
        f = G(G.noise(len(real))) if fresh else fake
        g_loss(D(f)).backward()
        opt_g.step()

    (d_step(), g_step()) if d_first else (g_step(), d_step())


_GAN_LR = 0.1


def _fresh_gan(G0, D0):
    """Copies of G0 and D0 with their own SGD optimisers: every variant starts from the same weights."""
    G, D = copy.deepcopy(G0), copy.deepcopy(D0)
    return G, D, torch.optim.SGD(G.parameters(), lr=_GAN_LR), torch.optim.SGD(D.parameters(), lr=_GAN_LR)


def _count_steps(opt_g, opt_d) -> dict:
    """Wrap both optimisers' step() to count the calls: one D step and one G step per batch is right."""
    steps = {"G": 0, "D": 0}
    for who, opt in (("G", opt_g), ("D", opt_d)):
        inner = opt.step

        def counted(*a, _inner=inner, _who=who, **k):
            steps[_who] += 1
            return _inner(*a, **k)
        opt.step = counted
    return steps


def _run_gan_step(r, make_gan_step, G, D, opt_g, opt_d, real):
    """Build the student's step and run it once on `real`: (True, its output), or (False, None) once reported."""
    step, err = call(make_gan_step, G, D, opt_g, opt_d)
    if not err and not callable(step):
        err = _("make_gan_step must return the step function (got {type})").format(type=type(step).__name__)
    if err:
        r.fail(_("make_gan_step(G, D, opt_g, opt_d)"), err)
        return False, None
    torch.manual_seed(47)
    out, err = call(step, real)
    if err and "a second time" in err:
        err += (_(" — D's step backpropagated through G (the fakes were not detached) and freed G's graph before G's "
                  "step: detach the fakes in D's step, D(fake.detach())"))
    if err:
        r.fail(_("step(real) on 16 real points"), err)
        return False, None
    return True, out


def _check_gan_output_and_mode(r, out, G, D) -> None:
    """The step returns a dict of one-number losses (for gh.fit) and leaves G and D in training mode."""
    if not isinstance(out, dict) or not out or not all(torch.is_tensor(v) and v.numel() == 1 for v in out.values()):
        r.fail(_("returned value"), _("return a dict of one-number tensors, e.g. {{'loss_D': ..., 'loss_G': ...}} "
                                      "(gh.fit records them), got {type}").format(type=type(out).__name__))
    else:
        r.ok(_("returns a dict of losses"))
    if not (G.training and D.training):
        who = _("G and D") if not (G.training or D.training) else "G" if not G.training else "D"
        r.fail(_("training mode"), _("{who} still in eval mode: call G.train() and D.train() in the step. The models "
                                     "may come from an evaluation or from sampling in eval mode; batch norm would then "
                                     "normalise with its running statistics, and dropout would be off").format(who=who))
    else:
        r.ok(_("G and D in training mode"))


def _check_gan_steps_and_detach(r, steps, g_grads) -> bool:
    """One optimiser step each, and gradients reaching G in G's step only; False when checking must stop."""
    if steps["D"] != 1 or steps["G"] != 1:
        why = {(2, 1): _("D's optimiser stepped twice: only G's optimiser may step in G's step (D would learn to call "
                         "fakes real, ERRATA 16)"),
               (0, 1): _("D's optimiser never stepped: call opt_d.step() in D's step"),
               (1, 0): _("G's optimiser never stepped: call opt_g.step() in G's step")}
        r.fail(_("optimiser steps"), why.get((steps["D"], steps["G"]),
                                          _("opt_d stepped {d} times and opt_g {g} times; one step each per "
                                            "batch").format(d=steps["D"], g=steps["G"])))
        return False
    if len(g_grads) > 1:
        r.fail(_("D's step"), _("gradients reached G in D's step: detach the fakes there (D(fake.detach())); otherwise "
                                "D's loss backpropagates through G for nothing"))
    elif not g_grads:
        r.fail(_("G's "
                 "step"), _("no gradient reached G: in G's step the fakes keep their graph back to G (do not "
                                "detach them, no torch.no_grad)"))
        return False
    else:
        r.ok(_("fakes detached in D's step only"))
    return True


def _variant_weights(G0, D0, real, **kw):
    """G's and D's flat weights after one expected (or mistaken, see _gan_step_variant) step from G0, D0."""
    G1, D1, og, od = _fresh_gan(G0, D0)
    torch.manual_seed(47)
    _gan_step_variant(G1, D1, og, od, real, **kw)
    return _flat(G1), _flat(D1)


def _same_weights(a, b) -> bool:
    """Whether two (G weights, D weights) pairs agree, up to float noise."""
    return torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-5)


def _check_gan_updates(r, G, D, G0, D0, real) -> None:
    """Compare the new weights with the right step's (either order, fresh fakes or not), else name the mistake."""
    from ..losses import generator_loss_saturating

    def result(**kw):
        return _variant_weights(G0, D0, real, **kw)

    now = _flat(G), _flat(D)
    right = [result(), result(fresh=True), result(d_first=False)]
    if any(_same_weights(now, w) for w in right):
        r.ok(_("G and D took the right steps"))
        return
    mistakes = {
        _("G was trained with the saturating loss E[log(1 - D(G(z)))] (ERRATA 11): use the non-saturating -E[log "
          "D(G(z))]"): [result(g_loss=generator_loss_saturating),
                            result(g_loss=generator_loss_saturating, fresh=True)],
        _("D's labels are swapped: real samples have label 1, fakes label 0"): [result(labels_swapped=True)],
    }
    why = next((d for d, ws in mistakes.items() if any(_same_weights(now, w) for w in ws)), None)
    if why is None and torch.allclose(now[1], right[0][1], atol=1e-5):
        why = _("D's step is right, G's is not: one step on -E[log D(G(z))] through D, with only opt_g stepping")
    r.fail(_("the updates"), why or _("G's and D's weights are not what one D step on real and fake samples and one "
                                      "non-saturating G step would give"))


def check_gan_step(make_gan_step) -> None:
    """Exercise 3.8: make_gan_step(G, D, opt_g, opt_d) -> step(real): one D update, one G update."""
    _require_callable(make_gan_step, "make_gan_step", "check_gan_step(make_gan_step)")
    r = Report("make_gan_step")
    torch.manual_seed(44)
    G0 = _TinyG()
    __, D0 = _tiny_gan(45)
    real = torch.randn(16, 2, generator=torch.Generator().manual_seed(46)) + 2
    G, D, opt_g, opt_d = _fresh_gan(G0, D0)
    G.eval()
    D.eval()  # as an evaluation or a sampling call may have left them
    steps = _count_steps(opt_g, opt_d)
    g_grads = []
    next(G.parameters()).register_hook(lambda grad: g_grads.append(1))
    ran, out = _run_gan_step(r, make_gan_step, G, D, opt_g, opt_d, real)
    if not ran:
        return r.finish()
    _check_gan_output_and_mode(r, out, G, D)
    if _check_gan_steps_and_detach(r, steps, g_grads):
        _check_gan_updates(r, G, D, G0, D0, real)
    return r.finish()


HINTS = {
    "3.1": (N_("The loss is -mean log D(G(z)) with D = sigmoid(logit); section 1 says why to work from the logits, and "
               "chapter 01 has the identity for -log sigmoid."),
            N_("torch.nn.functional.softplus(x) = log(1 + exp(x)); -log sigmoid(f) is softplus of minus f. The result "
               "is one number: average over the batch.")),
    "3.2": (N_("D's step of section 1: clear D's old gradients, compute D's loss on the real batch and on the fakes "
               "cut off from G, backpropagate, step D's optimiser."),
            N_("gh.losses.discriminator_loss takes D's logits on real and on fake samples; Tensor.detach() cuts the "
               "fakes from G's graph; the optimiser has zero_grad() and step(); return the loss detached.")),
    "3.3": (N_("G's step of section 1: D judges the fakes, and the non-saturating loss flows back through D into G; "
               "only G's optimiser steps."),
            N_("Here the fakes keep their graph (no detach). Clear G's gradients with its optimiser, compute loss_fn "
               "on D's logits for the fakes, call backward, step opt_g, return the loss detached.")),
    "3.4": (N_("A sample is high quality if its nearest centre is closer than 3 standard deviations; count those per "
               "centre."),
            N_("torch.cdist gives all sample-centre distances, .min(dim=1) the nearest distance and its index; keep "
               "the close ones with a boolean mask and count indices with torch.bincount(minlength=...).")),
    "3.5": (N_("Section 4's formula: the squared distance of the means plus the trace term; the cross term needs a "
               "matrix square root."),
            N_("torch.linalg.eigh(sigma1) gives eigenvalues and eigenvectors for sigma1's square root; the trace of "
               "the square root of a symmetric matrix is the sum of the square roots of its eigenvalues "
               "(torch.linalg.eigvalsh).")),
    "3.6": (N_("Section 6's recipe: a linear layer to a small 7 x 7 image with many channels, then two transposed "
               "convolutions that double the size (7 -> 14 -> 28), batch norm and ReLU between them, tanh at the end. "
               "A transposed convolution makes (in - 1) * stride - 2 * padding + kernel pixels: choose kernel, stride "
               "and padding so that this doubles."),
            N_("nn.Linear, nn.BatchNorm1d, nn.Unflatten(1, (channels, 7, 7)), nn.ConvTranspose2d(in, out, kernel_size, "
               "stride, padding), nn.BatchNorm2d, nn.ReLU, nn.Tanh; put them in an nn.Sequential in __init__ and call "
               "it in forward. Output shape (B, 1, 28, 28).")),
    "3.7": (N_("D mirrors G: two strided convolutions that halve the size (28 -> 14 -> 7), LeakyReLU(0.2), no batch "
               "norm on the input layer, then a linear layer to one number: a logit, no sigmoid."),
            N_("nn.Conv2d(in, out, kernel_size, stride, padding): floor((in + 2 * padding - kernel) / stride) + 1 "
               "pixels; nn.LeakyReLU with slope 0.2; nn.Flatten and nn.Linear from channels * 7 * 7 values to one; "
               "return shape (B,), e.g. by squeezing the last axis.")),
    "3.8": (N_("Exercises 3.2 and 3.3 in one function for gh.fit: both models in training mode, one batch of fakes "
               "from G, then D's step, then G's step, and the losses as a dict."),
            N_("G.noise(n) gives n codes; gh.losses has D's loss and the non-saturating generator loss, both from "
               "logits; detach the fakes for D only; each optimiser zero_grad() / backward / step() once; return "
               "{'loss_D': ..., 'loss_G': ...} with detached values.")),
}
