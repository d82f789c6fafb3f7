"""Chapter 06's exercises: cost, memorisation and privacy measures."""
from __future__ import annotations

import torch

from .framework import Report, call, compare, _require_callable, _scalar
from ..i18n import N_, _

HINTS = {
    "6.1": (N_("Each output number of the layer is a dot product of n_in inputs with n_in weights. Count its "
               "multiplications and its additions, then how many output numbers a batch has."),
            N_("Multiply three sizes together, times the operations per multiply-add; leave the bias out (PyTorch's "
               "counter, `gh.cost.count_flops`, counts the matrix product only).")),
    "6.2": (N_("Follow the formula of the gap above: for each sample its nearest training digit and its nearest "
               "held-out digit; average each kind of distance over the samples; then one ratio."),
            N_("Flatten images to rows first (`.flatten(1)`); `torch.cdist(a, b)` gives every pairwise distance, and "
               "the minimum along dimension 1 (`.min(1).values`) each row's nearest one.")),
    "6.3": (N_("The AUC is the probability that a random member scores higher than a random non-member: compare "
               "*every* member with *every* non-member, a win counts 1, a tie a half."),
            N_("Broadcasting makes all pairs at once: a column of member scores (`[:, None]`) against a row of "
               "non-member scores (`[None, :]`) gives a (members x non-members) table of comparisons; average it.")),
    "6.4": (N_("Three steps: one score per image, the ELBO (higher for members; the loss is its negative), computed in "
               "evaluation mode; then the AUC of your exercise 6.3; then the ROC: for a threshold t, TPR = share of "
               "members scoring >= t, FPR = share of non-members scoring >= t, and the TPR at a low FPR is the best "
               "TPR among the thresholds whose FPR is at most that rate."),
            N_("`model.eval()` and `torch.no_grad()` first; `gh.vae.neg_elbo(model, x)` returns one number per image "
               "(do not average it), so stack a few calls and average over the draws only. The candidate thresholds "
               "are all scores, plus one above every score (`float('inf')`), where both rates are 0; compare scores "
               "with thresholds by broadcasting, as in 6.3.")),
    "6.5": (N_("A fake point counts if it lies within the k-NN radius of at least one real point; a real point's "
               "radius is its distance to its k-th nearest *other* real point (the section above)."),
            N_("`torch.cdist(real, real)` sorted along each row starts with the 0 of the point itself; then compare "
               "`torch.cdist(fake, real)` with the radii (broadcast over the rows), `.any(1)` per fake, and average.")),
}


def _number(out):
    """One number as a float64 0-dim tensor, or the reason it is not one."""
    out = _scalar(out)
    if isinstance(out, bool) or (torch.is_tensor(out) and out.dtype == torch.bool):
        return None, _("return a number, not True/False")
    if not torch.is_tensor(out) or out.numel() != 1:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        return None, _("return one number (a Python float or a 0-dim tensor), not {shape}").format(shape=shape)
    return out.detach().double().reshape(()), None


def _float64(v) -> torch.Tensor:
    return torch.tensor(float(v), dtype=torch.float64)


def check_linear_flops(fn) -> None:
    """Exercise 6.1: linear_flops(batch, n_in, n_out) -> FLOPs of nn.Linear(n_in, n_out)'s forward pass."""
    from torch import nn

    from ..cost import count_flops

    _require_callable(fn, "linear_flops", "check_linear_flops(linear_flops)")
    r = Report("linear_flops")
    for b, i, o in [(1, 784, 256), (64, 10, 3), (128, 256, 32)]:
        case = f"batch {b}, {i} -> {o}"
        out, err = call(fn, b, i, o)
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = _float64(count_flops(nn.Linear(i, o), torch.zeros(b, i)))
        t = _float64
        why = compare(out, ref, {
            _("that counts multiply-adds; each is 2 FLOPs (a multiplication and an addition)"): t(b * i * o),
            _("that is per example: the batch has `batch` rows, each costs the same"): t(2 * i * o),
            _("you counted the bias additions; the convention (and PyTorch's counter) counts the matrix product only, "
              "2 FLOPs per weight per example"): t(2 * b * (i + 1) * o),
            _("that is a training step (forward + backward, about 3x); the question is the forward pass"):
                t(6 * b * i * o),
            _("that is the number of parameters, not of operations"): t((i + 1) * o),
        }, _("one number"), atol=0.5, rtol=1e-9)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_nn_gap(fn) -> None:
    """Exercise 6.2: nn_gap(samples, train_ref, test_ref) = 1 - mean NN distance to train / to test."""
    from ..metrics import nn_gap

    _require_callable(fn, "nn_gap", "check_nn_gap(nn_gap)")
    r = Report("nn_gap")
    g = torch.Generator().manual_seed(60)
    train, test = torch.randn(50, 6, generator=g), torch.randn(50, 6, generator=g)
    cases = {
        _("samples near the training points"): train[:30] + 0.3 * torch.randn(30, 6, generator=g),
        _("samples from the same distribution, new"): torch.randn(40, 6, generator=g),
        _("images (N, 1, 4, 4) close to the held-out ones"): test[:20, None].view(20, 1, 2, 3) + 0.1,
    }
    for case, s in cases.items():
        tr, te = (train, test) if s.dim() == 2 else (train.view(50, 1, 2, 3), test.view(50, 1, 2, 3))
        out, err = call(fn, s.clone(), tr.clone(), te.clone())
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = torch.tensor(nn_gap(s, tr, te), dtype=torch.float64)
        d = {k: torch.cdist(s.flatten(1).double(), v.flatten(1).double()) for k, v in (("tr", tr), ("te", te))}
        near = {k: v.min(1).values.mean() for k, v in d.items()}
        why = compare(out, ref, {
            _("the ratio is upside down: 1 - (distance to train) / (distance to test)"): 1 - near["te"] / near["tr"],
            _("the '1 -' is missing: the gap is 0 when train and test are equally near"): near["tr"] / near["te"],
            _("use distances, not squared distances"): 1 - (d["tr"] ** 2).min(1).values.mean() /
                                                    (d["te"] ** 2).min(1).values.mean(),
            _("that is the mean distance to *all* reference points; take each sample's nearest one"):
                1 - d["tr"].mean() / d["te"].mean(),
            _("that is a difference of distances; divide them: 1 - d_train / d_test"): near["te"] - near["tr"],
        }, _("one number"), atol=1e-4, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_membership_auc(fn) -> None:
    """Exercise 6.3: membership_auc(member_scores, nonmember_scores) -> P(member > non-member), ties half."""
    from ..metrics import membership_auc

    _require_callable(fn, "membership_auc", "check_membership_auc(membership_auc)")
    r = Report("membership_auc")
    g = torch.Generator().manual_seed(61)
    cases = {
        _("perfectly separated (members all higher): 1"): (torch.tensor([5.0, 6.0, 7.0]), torch.tensor([1.0, 2.0])),
        _("identical scores: 0.5, a coin toss"): (torch.zeros(4), torch.zeros(6)),
        _("overlapping scores with ties (integers)"): (torch.randint(0, 5, (40,), generator=g).float() + 1,
                                                    torch.randint(0, 5, (30,), generator=g).float()),
        _("overlapping Gaussians, 200 and 300 scores"): (torch.randn(200, generator=g) + 0.7,
                                                      torch.randn(300, generator=g)),
    }
    for case, (m, n) in cases.items():
        out, err = call(fn, m.clone(), n.clone())
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = torch.tensor(membership_auc(m, n), dtype=torch.float64)
        a, b = m.double()[:, None], n.double()[None]
        mistakes = {
            _("ties must count half: with `>` alone, equal scores count as a miss"): (a > b).double().mean(),
            _("ties must count half: with `>=`, equal scores count as a hit"): (a >= b).double().mean(),
            _("the sides are swapped: members should score *higher* (that is 1 - AUC)"): 1 - ref,
            _("that compares the means; the AUC compares every member with every non-member"):
                (m.double().mean() > n.double().mean()).double(),
        }
        if "identical" in case:
            mistakes = {k: v for k, v in mistakes.items() if "sides" not in k and "means" not in k}
        why = compare(out, ref, mistakes, _("one number in [0, 1]"), atol=1e-6, rtol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_knn_precision(fn) -> None:
    """Exercise 6.5: knn_precision(real, fake, k) -> share of fakes within the k-NN radius of some real point."""
    from ..metrics import manifold_share

    _require_callable(fn, "knn_precision", "check_knn_precision(knn_precision)")
    r = Report("knn_precision")
    g = torch.Generator().manual_seed(62)
    line = torch.arange(10.0)[:, None]  # real points 0, 1, ..., 9 on a line
    cases = {
        _("real 0..9 on a line, k=2, fakes at 0.5, 5, 10.9, 11 (exactly on a radius), 20"):
            (line, torch.tensor([[0.5], [5.0], [10.9], [11.0], [20.0]]), 2),
        _("the same, k=1"): (line, torch.tensor([[0.5], [5.0], [10.9], [11.0], [20.0]]), 1),
        _("300 real and 200 fake 8-D points, the fakes shifted and more spread, k=3"):
            (torch.randn(300, 8, generator=g), 1.5 * torch.randn(200, 8, generator=g) + 0.5, 3),
    }
    for case, (real, fake, k) in cases.items():
        out, err = call(fn, real.clone(), fake.clone(), k)
        if err is None:
            out, err = _number(out)
        if err:
            r.fail(case, err)
            continue
        ref = torch.tensor(manifold_share(fake, real, k), dtype=torch.float64)
        d_rr, d_fr, d_ff = torch.cdist(real, real), torch.cdist(fake, real), torch.cdist(fake, fake)
        radii = d_rr.sort(1).values[:, k]

        def share(dist, rad):
            return (dist <= rad[None]).any(1).double().mean()

        why = compare(out, ref, {
            _("the radius must skip the point itself (its distance 0): take the k-th nearest *other* point"):
                share(d_fr, d_rr.sort(1).values[:, k - 1]),
            _("that is recall (real points inside the fakes' manifold); precision asks how many fakes lie inside the "
              "real manifold"): torch.tensor(manifold_share(real, fake, k), dtype=torch.float64),
            _("the radii come from the real points' neighbours among the real points, not the fakes' among the "
              "fakes"): (d_fr <= d_ff.sort(1).values[:, k][:, None]).any(1).double().mean(),
            _("a point exactly on the radius is inside: use <=, not <"):
                (d_fr < radii[None]).any(1).double().mean(),
            _("return the share of fakes (between 0 and 1), not their count"): ref * len(fake),
        }, _("one number in [0, 1]"), atol=1e-6, rtol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


class _StubVAE(torch.nn.Module):
    """A stand-in VAE for checking the attack: the first pixel of each image sets its ELBO.

    Its decoder's logits are 0 (every image costs 784 log 2 nats to reconstruct) and its encoder
    mean is 3 x the first pixel, through a BatchNorm that is the identity in evaluation mode; in
    training mode it normalises with the batch's statistics, as a real BatchNorm does, so a model
    left in training mode gives other scores."""

    latent_dim = 1

    def __init__(self):
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(1, affine=False, momentum=0.0)
        self.norm.running_var.fill_(1 - self.norm.eps)  # the identity in evaluation mode

    def encode(self, x):
        mu = self.norm(3 * x.flatten(1)[:, :1].float())
        return mu, torch.zeros_like(mu)

    def decode(self, z):
        return torch.zeros(len(z), 1, 28, 28, device=z.device)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(mu + torch.randn_like(mu)), mu, logvar


def _attack_images(first_pixels: torch.Tensor) -> torch.Tensor:
    x = torch.zeros(len(first_pixels), 1, 28, 28)
    x[:, 0, 0, 0] = first_pixels
    return x


def _attack_cases():
    """Two sets of members and non-members (different sizes, so that a swap shows)."""
    g = torch.Generator().manual_seed(63)
    m1, n1 = (0.3 * torch.rand(40, generator=g)), 0.1 + 0.9 * torch.rand(300, generator=g)
    m2, n2 = 0.2 + 0.8 * torch.rand(50, generator=g), torch.rand(400, generator=g)
    n2[7] = 0.0  # a non-member with the best score of all: the 0.1% rate needs a threshold above it
    return {_("40 members, 300 non-members, well separated"): (m1, n1),
            _("50 members, 400 non-members, overlapping, a non-member scores best"): (m2, n2)}


_KEYS = ("auc", "tpr_at_1pct", "tpr_at_01pct", "member_scores", "non_member_scores")


def check_membership_attack(fn) -> None:
    """Exercise 6.4: membership_attack(model, members, non_members) -> dict(auc, tpr_at_1pct,
    tpr_at_01pct, member_scores, non_member_scores): the attack from per-image ELBOs."""
    from ..evaluation import tpr_at_fpr
    from ..metrics import membership_auc
    from ..vae import neg_elbo

    _require_callable(fn, "membership_attack", "check_membership_attack(membership_attack)")
    r = Report("membership_attack")
    for case, (pm, pn) in _attack_cases().items():
        members, non_members = _attack_images(pm), _attack_images(pn)
        model = _StubVAE()
        model.train()  # as a model comes out of training: the attack must switch to evaluation mode
        out, err = call(fn, model, members.clone(), non_members.clone())
        if err:
            if any(w in err for w in ("empty", "numel", "max()", "reduction")):
                err += (_(" (no threshold had a false-positive rate that low: add a threshold above every score, where "
                          "both rates are 0)"))
            elif any(w in err for w in ("dimension", "0-d", "shape", "size")):
                err += _(" (is each score one number per image? the attack needs one ELBO per image)")
            r.fail(case, err)
            continue
        why = _attack_verdict(out, model, members, non_members, membership_auc, tpr_at_fpr, neg_elbo)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def _attack_verdict(out, model, members, non_members, membership_auc, tpr_at_fpr, neg_elbo):
    if not isinstance(out, dict):
        return _("return a dict with the keys {keys}, not a {type}").format(
            keys=", ".join(_KEYS), type=type(out).__name__)
    missing = [k for k in _KEYS if k not in out]
    if missing:
        return _("the dict lacks {missing} (it needs {keys})").format(missing=", ".join(missing), keys=", ".join(_KEYS))
    model.eval()
    with torch.no_grad():
        ref = {"member_scores": -neg_elbo(model, members).double(),
               "non_member_scores": -neg_elbo(model, non_members).double()}
        model.train()
        train_mode = {"member_scores": -neg_elbo(model, members).double(),
                      "non_member_scores": -neg_elbo(model, non_members).double()}
    model.eval()
    scores = {}
    for key, other in (("member_scores", "non_member_scores"), ("non_member_scores", "member_scores")):
        s = out[key]
        if not torch.is_tensor(s):
            return _("{key}: return a tensor with one score per image, not a {type}").format(
                key=key, type=type(s).__name__)
        s = s.detach().double().cpu().flatten() if s.dim() > 0 else s.detach().double().cpu()
        if s.dim() == 0 or s.numel() == 1:
            return (_("{key} is one number: the ELBO was averaged over the batch. The attack scores each image: keep "
                      "one ELBO per image ({n} here) and average over the noise draws only").format(
                          key=key, n=len(ref[key])))
        if s.shape == ref[other].shape and s.shape != ref[key].shape:
            return (_("members and non-members are swapped: member_scores must score the members (the training "
                      "images), non_member_scores the held-out images"))
        why = compare(s, ref[key], {
            _("the sign is reversed: the score is the ELBO (higher for members), the negative of the loss that "
              "neg_elbo returns"): -ref[key],
            _("the model was left in training mode: BatchNorm then uses each batch's own statistics (and dropout drops "
              "units at random); call model.eval() before scoring"): train_mode[key],
        }, _("one score per image"), atol=1e-3, rtol=1e-5)
        if why:
            return f"{key}: {why}"
        scores[key] = ref[key]
    m, n = scores["member_scores"], scores["non_member_scores"]
    auc = membership_auc(m, n)
    t1, t01 = tpr_at_fpr(m, n, 0.01), tpr_at_fpr(m, n, 0.001)
    for key in ("auc", "tpr_at_1pct", "tpr_at_01pct"):
        v = _scalar(out[key])
        if not (torch.is_tensor(v) and v.numel() == 1):
            return _("{key}: return one number, not {type}").format(key=key, type=type(out[key]).__name__)
    got = {k: float(_scalar(out[k])) for k in ("auc", "tpr_at_1pct", "tpr_at_01pct")}
    if abs(got["auc"] - auc) > 1e-6:
        if abs(got["auc"] - (1 - auc)) < 1e-6:
            return (_("auc {got_auc:.3f} is 1 - the right one ({auc:.3f}): in the comparison, members and non-members "
                      "are swapped, or the score's sign is reversed (higher must mean member)").format(
                          got_auc=got["auc"], auc=auc))
        return _("auc {got_auc:.4f}, expected {auc:.4f}: compare every member with every non-member, ties half").format(
            got_auc=got["auc"], auc=auc)
    tol = 1 / len(m) + 1e-9  # one member either way: a threshold exactly at a score may count or not
    for key, rate, right in (("tpr_at_1pct", 0.01, t1), ("tpr_at_01pct", 0.001, t01)):
        v = got[key]
        if abs(v - right) <= tol:
            continue
        swapped = tpr_at_fpr(n, m, rate)
        if abs(v - swapped) <= 1 / len(n) + 1e-9 and abs(swapped - right) > tol:
            return (_("{key} = {v:.3f}: members and non-members are swapped in the ROC (the TPR counts members, the "
                      "FPR non-members); expected {right:.3f}").format(key=key, v=v, right=right))
        if abs(v - rate) <= tol + 0.01 and right > rate + 3 * tol:
            return (_("{key} = {v:.3f}, about {rate:.1%}: the threshold was taken from the members' scores. A false "
                      "positive is a non-member above the threshold, so the threshold comes from the non-members' "
                      "scores (at most {rate:.1%} of them at or above it); expected {right:.3f}").format(
                          key=key, v=v, rate=rate, right=right))
        other = t01 if rate == 0.01 else t1
        if abs(v - other) <= tol and abs(other - right) > tol:
            return _("{key} = {v:.3f} is the rate at the other false-positive rate; expected {right:.3f}").format(
                key=key, v=v, right=right)
        return (_("{key} = {v:.3f}, expected {right:.3f}: the best TPR among the thresholds whose FPR (share of "
                  "non-members at or above the threshold) is at most {rate:.1%}").format(
                      key=key, v=v, right=right, rate=rate))
    return None
