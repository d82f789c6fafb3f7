"""Chapter 06's exercises: cost, memorisation and privacy measures."""
from __future__ import annotations

import torch

from .framework import Report, call, compare, _require_callable, _scalar


def _number(out):
    """One number as a float64 0-dim tensor, or the reason it is not one."""
    out = _scalar(out)
    if isinstance(out, bool) or (torch.is_tensor(out) and out.dtype == torch.bool):
        return None, "return a number, not True/False"
    if not torch.is_tensor(out) or out.numel() != 1:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        return None, f"return one number (a Python float or a 0-dim tensor), not {shape}"
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
            "that counts multiply-adds; each is 2 FLOPs (a multiplication and an addition)": t(b * i * o),
            "that is per example: the batch has `batch` rows, each costs the same": t(2 * i * o),
            "you counted the bias additions; the convention (and PyTorch's counter) counts the matrix "
            "product only, 2 FLOPs per weight per example": t(2 * b * (i + 1) * o),
            "that is a training step (forward + backward, about 3x); the question is the forward pass":
                t(6 * b * i * o),
            "that is the number of parameters, not of operations": t((i + 1) * o),
        }, "one number", atol=0.5, rtol=1e-9)
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
        "samples near the training points": train[:30] + 0.3 * torch.randn(30, 6, generator=g),
        "samples from the same distribution, new": torch.randn(40, 6, generator=g),
        "images (N, 1, 4, 4) close to the held-out ones": test[:20, None].view(20, 1, 2, 3) + 0.1,
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
            "the ratio is upside down: 1 - (distance to train) / (distance to test)": 1 - near["te"] / near["tr"],
            "the '1 -' is missing: the gap is 0 when train and test are equally near": near["tr"] / near["te"],
            "use distances, not squared distances": 1 - (d["tr"] ** 2).min(1).values.mean() /
                                                    (d["te"] ** 2).min(1).values.mean(),
            "that is the mean distance to *all* reference points; take each sample's nearest one":
                1 - d["tr"].mean() / d["te"].mean(),
            "that is a difference of distances; divide them: 1 - d_train / d_test": near["te"] - near["tr"],
        }, "one number", atol=1e-4, rtol=1e-4)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_membership_auc(fn) -> None:
    """Exercise 6.3: membership_auc(member_scores, nonmember_scores) -> P(member > non-member), ties half."""
    from ..metrics import membership_auc

    _require_callable(fn, "membership_auc", "check_membership_auc(membership_auc)")
    r = Report("membership_auc")
    g = torch.Generator().manual_seed(61)
    cases = {
        "perfectly separated (members all higher): 1": (torch.tensor([5.0, 6.0, 7.0]), torch.tensor([1.0, 2.0])),
        "identical scores: 0.5, a coin toss": (torch.zeros(4), torch.zeros(6)),
        "overlapping scores with ties (integers)": (torch.randint(0, 5, (40,), generator=g).float() + 1,
                                                    torch.randint(0, 5, (30,), generator=g).float()),
        "overlapping Gaussians, 200 and 300 scores": (torch.randn(200, generator=g) + 0.7,
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
            "ties must count half: with `>` alone, equal scores count as a miss": (a > b).double().mean(),
            "ties must count half: with `>=`, equal scores count as a hit": (a >= b).double().mean(),
            "the sides are swapped: members should score *higher* (that is 1 - AUC)": 1 - ref,
            "that compares the means; the AUC compares every member with every non-member":
                (m.double().mean() > n.double().mean()).double(),
        }
        if "identical" in case:
            mistakes = {k: v for k, v in mistakes.items() if "sides" not in k and "means" not in k}
        why = compare(out, ref, mistakes, "one number in [0, 1]", atol=1e-6, rtol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_knn_precision(fn) -> None:
    """Exercise 6.4: knn_precision(real, fake, k) -> share of fakes within the k-NN radius of some real point."""
    from ..metrics import manifold_share

    _require_callable(fn, "knn_precision", "check_knn_precision(knn_precision)")
    r = Report("knn_precision")
    g = torch.Generator().manual_seed(62)
    line = torch.arange(10.0)[:, None]  # real points 0, 1, ..., 9 on a line
    cases = {
        "real 0..9 on a line, k=2, fakes at 0.5, 5, 10.9, 11 (exactly on a radius), 20":
            (line, torch.tensor([[0.5], [5.0], [10.9], [11.0], [20.0]]), 2),
        "the same, k=1": (line, torch.tensor([[0.5], [5.0], [10.9], [11.0], [20.0]]), 1),
        "300 real and 200 fake 8-D points, the fakes shifted and more spread, k=3":
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
            "the radius must skip the point itself (its distance 0): take the k-th nearest *other* point":
                share(d_fr, d_rr.sort(1).values[:, k - 1]),
            "that is recall (real points inside the fakes' manifold); precision asks how many fakes lie "
            "inside the real manifold": torch.tensor(manifold_share(real, fake, k), dtype=torch.float64),
            "the radii come from the real points' neighbours among the real points, not the fakes' among "
            "the fakes": (d_fr <= d_ff.sort(1).values[:, k][:, None]).any(1).double().mean(),
            "a point exactly on the radius is inside: use <=, not <":
                (d_fr < radii[None]).any(1).double().mean(),
            "return the share of fakes (between 0 and 1), not their count": ref * len(fake),
        }, "one number in [0, 1]", atol=1e-6, rtol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()
