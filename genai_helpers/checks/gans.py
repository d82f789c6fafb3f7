"""Chapter 03's exercises: GAN losses and steps, mode counting, the Fréchet distance."""
from __future__ import annotations

import copy

import torch

from .framework import Report, call, compare, _require_callable, _scalar


def check_nonsaturating_loss(fn) -> None:
    """Exercise 3.1: generator_loss(fake_logits) = -E[log D(G(z))] from D's logits, one number."""
    _require_callable(fn, "generator_loss", "check_nonsaturating_loss(generator_loss)")
    r = Report("generator_loss")
    sp = torch.nn.functional.softplus
    g = torch.Generator().manual_seed(30)
    cases = {"random logits, batch of 64": 2 * torch.randn(64, generator=g),
             "a confident discriminator (logits down to -200, where sigmoid rounds to 0)":
                 torch.tensor([-200.0, -120.0, -3.0, 1.5])}
    for case, f in cases.items():
        out, err = call(fn, f.clone())
        if err:
            r.fail(case, err)
            continue
        out = _scalar(out)
        if torch.is_tensor(out) and out.numel() == 1 and not torch.isfinite(out).all():
            r.fail(case, f"got {out.item()}: log(sigmoid(f)) rounds to log(0) when D is sure a fake "
                         "is fake. Compute from the logits: -log D = F.softplus(-f) "
                         "(or F.binary_cross_entropy_with_logits with label 1)")
            continue
        fd = f.double()
        ref = sp(-fd).mean()
        mistakes = {
            "that is the saturating loss E[log(1 − D(G(z)))] of the article's §4.2.4 (ERRATA 11); "
            "the non-saturating loss is −E[log D(G(z))]": -sp(fd).mean(),
            "that is −E[log(1 − D(G(z)))], the fakes' term of D's loss (label 0); G wants D to call "
            "its fakes real: label 1, −E[log D(G(z))]": sp(fd).mean(),
            "wrong sign: the loss −E[log D(G(z))] is positive and falls as D(G(z)) rises": -ref,
            "you summed over the batch: take the mean": sp(-fd).sum(),
            "a sigmoid applied twice: the network's output is already the logit, D = sigmoid(logit)":
                sp(-torch.sigmoid(fd)).mean(),
            "that is E[1 − D(G(z))], without the log": (1 - torch.sigmoid(fd)).mean(),
        }
        why = compare(out, ref, mistakes, "one number", atol=1e-3, rtol=1e-4)
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
        return "return the loss (a tensor with one number), e.g. `return loss.detach()`"
    if not torch.is_tensor(out) or out.numel() != 1:
        return f"return the loss as one number, got {type(out).__name__}" + (
            f" of shape {tuple(out.shape)}" if torch.is_tensor(out) else "")
    if any(abs(out.item() - v) < 1e-4 * max(1.0, abs(v)) for v in ref_values.values()):
        return None
    return (f"the returned loss is {out.item():.4f}, expected {next(iter(ref_values.values())):.4f} "
            "(the loss computed before the update)")


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
        r.fail("one step on 16 real and 16 fake points", err)
        return r.finish()

    def upd(loss_fn):
        return _sgd_result(D0, lambda m: loss_fn(m(real), m(fake.detach())), lr)

    ref_loss = discriminator_loss(D0(real), D0(fake.detach())).item()
    g_stale = torch.Generator().manual_seed(33)
    stale = torch.cat([torch.randn(p.shape, generator=g_stale).flatten() for p in D0.parameters()])
    right = [upd(discriminator_loss), upd(lambda a, b: discriminator_loss(a, b) / 2)]
    mistakes = {
        "D's weights did not change: call opt_d.step() after loss.backward()": _flat(D0),
        "D's gradients from the previous backward pass were added to this step's: call "
        "opt_d.zero_grad() before loss.backward() (G's step backpropagates through D and leaves "
        "gradients in D's .grad)": right[0] - lr * stale,
        "wrong sign: D went up its loss; minimise -[log D(x) + log(1 - D(G(z)))] (the article's "
        "L is what D maximises, ERRATA 10)": 2 * _flat(D0) - right[0],
        "labels swapped: real samples have label 1, fakes label 0":
            upd(lambda a, b: sp(a).mean() + sp(-b).mean()),
        "the fakes' term is missing: D must also learn to call fakes fake": upd(lambda a, b: sp(-a).mean()),
        "the real term is missing: D must also learn to call real samples real":
            upd(lambda a, b: sp(b).mean()),
        "you summed over the batch: take means (the step would grow with the batch size)":
            upd(lambda a, b: sp(-a).sum() + sp(b).sum()),
    }
    now = _flat(D)
    if any(torch.allclose(now, w, atol=1e-5) for w in right):
        r.ok("D's weights took the right step")
    else:
        why = next((d for d, w in mistakes.items() if torch.allclose(now, w, atol=1e-5)), None)
        r.fail("D's update", why or "D's weights moved, but not as one step on the discriminator loss "
                                    "mean softplus(-D(real)) + mean softplus(D(fake)) would move them")
    leaked = [p for p in G.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    if leaked:
        r.fail("the generator", "gradients reached G: detach the fakes in D's step (D(fake.detach())); "
                                "otherwise backward runs through G for nothing and leaves gradients in G")
    else:
        r.ok("no gradient reached G")
    why = _loss_value(out, {"mean": ref_loss, "mean over the 2B batch": ref_loss / 2})
    r.fail("returned loss", why) if why else r.ok("returned the loss")
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
        err += (" — the fakes must keep their graph back to G in G's step: do not detach them "
                "(detaching is for D's step)")
    if err:
        r.fail("one step on 16 fakes", err)
        return r.finish()

    def upd(loss_fn):
        return _sgd_result(G0, lambda m: loss_fn(D0(m(z))), lr)

    g_stale = torch.Generator().manual_seed(36)
    stale = torch.cat([torch.randn(p.shape, generator=g_stale).flatten() for p in G0.parameters()])
    right = upd(generator_loss_nonsaturating)
    mistakes = {
        "G's weights did not change: call opt_g.step() after loss.backward()": _flat(G0),
        "that is the saturating loss E[log(1 - D(G(z)))] (ERRATA 11): use the non-saturating "
        "-E[log D(G(z))]": upd(generator_loss_saturating),
        "G's gradients from an earlier backward pass were added to this step's: call "
        "opt_g.zero_grad() before loss.backward()": right - lr * stale,
        "wrong sign: G made D's verdict worse; minimise -E[log D(G(z))]": 2 * _flat(G0) - right,
        "G was trained with label 0 (to look fake): minimise -log(1 - D) is D's job, G's label is 1":
            upd(lambda f: torch.nn.functional.softplus(f).mean()),
    }
    now = _flat(G)
    if torch.allclose(now, right, atol=1e-5):
        r.ok("G's weights took the right step")
    else:
        why = next((d for d, w in mistakes.items() if torch.allclose(now, w, atol=1e-5)), None)
        if torch.allclose(now, _flat(G0)) and all(p.grad is None or not p.grad.any() for p in G.parameters()):
            why = ("no gradient reached G: in G's step the fakes must keep their graph back to G, "
                   "do not detach them (detaching is for D's step)")
        r.fail("G's update", why or "G's weights moved, but not as one step on -E[log D(G(z))] would move them")
    if torch.allclose(_flat(D), _flat(D0)):
        r.ok("D unchanged")
    else:
        r.fail("the discriminator", "D's weights changed in G's step: only G's optimiser may step here "
                                    "(the article's combined model also trains D, ERRATA 16)")
    why = _loss_value(out, {"non-saturating": generator_loss_nonsaturating(D0(G0(z))).item()})
    r.fail("returned loss", why) if why else r.ok("returned the loss")
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
        "points exactly on centres 0, 0 and 5": centres[[0, 0, 5]],
        "points at 0.5, 1.5, 2.5 and 3.5 std from centres 2, 1, 3 and 6":
            torch.cat([centres[2] + 0.5 * std * unit[:10], centres[1] + 1.5 * std * unit[10:30],
                       centres[3] + 2.5 * std * unit, centres[6] + 3.5 * std * unit]),
        "2,500 samples: most near the modes, some between them, some at the origin":
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
            "you counted every sample at its nearest mode; count only high-quality ones, within "
            "3 std of the centre": counts(near >= 0),
            "the radius is 3 standard deviations (3 * std), not 3 variances (3 * std**2)": counts(near < 3 * std ** 2),
            "you compared a squared distance with 3 std: compare the distance itself": counts(near ** 2 < 3 * std),
            "the radius is 3 std, not 2 std": counts(near < 2 * std),
            "the radius is 3 std, not 1 std": counts(near < std),
            "return counts (how many samples), not shares": ref / len(x),
        }, "one count per mode, shape (8,)", atol=1e-6)
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
    cases = {"two random 5-D Gaussians": (m1, s1, m2, s2),
             "identical Gaussians (the distance must be 0)": (m1, s1, m1.clone(), s1.clone()),
             "N(0, I) against N(mu, 4 I) in 5-D": (torch.zeros(d, dtype=torch.float64),
                                                    torch.eye(d, dtype=torch.float64),
                                                    m2, 4 * torch.eye(d, dtype=torch.float64))}
    for case, (a, sa, b, sb) in cases.items():
        out, err = call(fn, a.clone(), sa.clone(), b.clone(), sb.clone())
        if err:
            r.fail(case, err)
            continue
        out = _scalar(out)
        if torch.is_tensor(out) and out.is_complex():
            r.fail(case, "the result is complex: take the real part of the eigenvalues' square roots, "
                         "or use eigvalsh of the symmetric sigma1^1/2 sigma2 sigma1^1/2")
            continue
        ref = torch.tensor(frechet_distance(a, sa, b, sb), dtype=torch.float64)
        dm = (a - b).pow(2).sum()
        tr = sa.trace() + sb.trace()
        cross = ref - dm - tr
        mistakes = {
            "the matrix square root is missing: tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^1/2), not "
            "- 2 sigma1 sigma2": dm + tr - 2 * (sa @ sb).trace(),
            "(sigma1 sigma2)^1/2 is a matrix square root, not the square root of each entry":
                dm + tr - 2 * (sa * sb).abs().sqrt().trace(),
            "the mean term is the squared distance |mu1 - mu2|^2": dm.sqrt() + tr + cross,
            "the cross term has a factor 2: - 2 tr((sigma1 sigma2)^1/2)": dm + tr + cross / 2,
            "the mean term is missing": tr + cross,
            "you returned the square root of the distance: FID is the squared Fréchet distance":
                ref.clamp(min=0).sqrt(),
        }
        why = compare(out.double() if torch.is_tensor(out) else out, ref, mistakes, "one number",
                      atol=1e-4, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()
