"""Chapter 06 checkers: right answers pass, typical mistakes are named, bad input is a message."""
import pytest
import torch

from genai_helpers import checks
from genai_helpers.vae import neg_elbo


@pytest.mark.parametrize("fn, words", [
    (lambda b, i, o: 2 * b * i * o, "passed"),
    (lambda b, i, o: torch.tensor(2.0 * b * i * o), "passed"),
    (lambda b, i, o: b * i * o, "multiply-adds"),
    (lambda b, i, o: 2 * i * o, "per example"),
    (lambda b, i, o: 2 * b * (i + 1) * o, "bias"),
    (lambda b, i, o: 6 * b * i * o, "training step"),
    (lambda b, i, o: (i + 1) * o, "parameters"),
    (lambda b, i, o: [2 * b * i * o], "one number"),
    (lambda b, i, o: None, "one number"),
])
def test_check_linear_flops(fn, words, verdict):
    assert words in verdict(checks.check_linear_flops, fn)


def near(s, ref):
    return torch.cdist(s.flatten(1), ref.flatten(1)).min(1).values.mean()


@pytest.mark.parametrize("fn, words", [
    (lambda s, tr, te: 1 - near(s, tr) / near(s, te), "passed"),
    (lambda s, tr, te: float(1 - near(s, tr) / near(s, te)), "passed"),
    (lambda s, tr, te: 1 - near(s, te) / near(s, tr), "upside down"),
    (lambda s, tr, te: near(s, tr) / near(s, te), "'1 -' is missing"),
    (lambda s, tr, te: 1 - near(s, tr) ** 2 / near(s, te) ** 2, "the values are off"),
    (lambda s, tr, te: 1 - (torch.cdist(s.flatten(1), tr.flatten(1)) ** 2).min(1).values.mean()
     / (torch.cdist(s.flatten(1), te.flatten(1)) ** 2).min(1).values.mean(), "squared distances"),
    (lambda s, tr, te: 1 - torch.cdist(s.flatten(1), tr.flatten(1)).mean()
     / torch.cdist(s.flatten(1), te.flatten(1)).mean(), "*all* reference points"),
    (lambda s, tr, te: near(s, te) - near(s, tr), "difference of distances"),
    (lambda s, tr, te: 1 - torch.cdist(s, tr).min(1).values.mean() / torch.cdist(s, te).min(1).values.mean(),
     "raised"),  # images not flattened: cdist of 4-D tensors fails on the image case
])
def test_check_nn_gap(fn, words, verdict):
    assert words in verdict(checks.check_nn_gap, fn)


def auc(m, n):
    a, b = m[:, None], n[None]
    return ((a > b).float() + 0.5 * (a == b).float()).mean()


def not_done(m, n):
    raise NotImplementedError("Exercise 6.3 is not done yet. Hint: compare every pair")


@pytest.mark.parametrize("fn, words", [
    (auc, "passed"),
    (lambda m, n: auc(m, n).item(), "passed"),
    (lambda m, n: (m[:, None] > n[None]).float().mean(), "with `>` alone"),
    (lambda m, n: (m[:, None] >= n[None]).float().mean(), "with `>=`"),
    (lambda m, n: auc(n, m), "sides are swapped"),
    (lambda m, n: (m.mean() > n.mean()).float(), "compares the means"),
    (lambda m, n: (m[:, None] > n[None]).float(), "one number"),
    (not_done, "not implemented yet"),
])
def test_check_membership_auc(fn, words, verdict):
    assert words in verdict(checks.check_membership_auc, fn)


def precision(real, fake, k, *, skip_self=True, strict=False, radii_from="real", count=False):
    d_rr = torch.cdist(real, real)
    radii = d_rr.sort(1).values[:, k if skip_self else k - 1]
    if radii_from == "fake":
        d_ff = torch.cdist(fake, fake)
        inside = (torch.cdist(fake, real) <= d_ff.sort(1).values[:, k][:, None]).any(1)
    else:
        d = torch.cdist(fake, real)
        inside = ((d < radii[None]) if strict else (d <= radii[None])).any(1)
    return inside.float().sum() if count else inside.float().mean()


@pytest.mark.parametrize("kw, words", [
    ({}, "passed"),
    ({"skip_self": False}, "skip the point itself"),
    ({"strict": True}, "use <="),
    ({"radii_from": "fake"}, "not the fakes'"),
    ({"count": True}, "not their count"),
])
def test_check_knn_precision(kw, words, verdict):
    assert words in verdict(checks.check_knn_precision, lambda r, f, k: precision(r, f, k, **kw))


def test_check_knn_precision_names_recall(verdict):
    assert "that is recall" in verdict(checks.check_knn_precision, lambda r, f, k: precision(f, r, k))


@pytest.mark.parametrize("checker", [checks.check_linear_flops, checks.check_nn_gap,
                                     checks.check_membership_auc, checks.check_knn_precision,
                                     checks.check_membership_attack])
def test_checkers_reject_non_functions(checker, verdict):
    assert "pass your function itself" in verdict(checker, 3.0)


def attack(model, members, non_members, *, sign=1, average=False, swap=False, member_thresholds=False,
           evaluate=True, inf_threshold=True, roc_swap=False):
    """The membership attack, right by default, with one typical mistake switched on."""
    if evaluate:
        model.eval()
    with torch.no_grad():
        m, n = (-sign * neg_elbo(model, x).double() for x in (members, non_members))
    if average:
        m, n = m.mean(), n.mean()
    if swap:
        m, n = n, m
    a = auc(m.reshape(-1), n.reshape(-1)).item()
    cand = [m, n] + ([torch.tensor([float("inf")], dtype=torch.float64)] if inf_threshold else [])
    t = torch.cat([c.reshape(-1) for c in cand]).unique()
    pos, neg = (n, m) if roc_swap else (m, n)
    tpr = (pos.reshape(-1)[None] >= t[:, None]).double().mean(1)
    fpr = (neg.reshape(-1)[None] >= t[:, None]).double().mean(1)
    rates = {}
    for key, rate in (("tpr_at_1pct", 0.01), ("tpr_at_01pct", 0.001)):
        if member_thresholds:
            rates[key] = (m >= torch.quantile(m, 1 - rate)).double().mean().item()
        else:
            rates[key] = tpr[fpr <= rate].max().item()
    return {"auc": a, **rates, "member_scores": m, "non_member_scores": n}


@pytest.mark.parametrize("kw, words", [
    ({}, "passed"),
    ({"sign": -1}, "sign is reversed"),
    ({"average": True}, "averaged over the batch"),
    ({"swap": True}, "swapped"),
    ({"member_thresholds": True}, "taken from the members' scores"),
    ({"evaluate": False}, "model.eval()"),
    ({"inf_threshold": False}, "threshold above every score"),
    ({"roc_swap": True}, "swapped in the ROC"),
])
def test_check_membership_attack(kw, words, verdict):
    assert words in verdict(checks.check_membership_attack, lambda mo, m, n: attack(mo, m, n, **kw))


def test_check_membership_attack_accepts_the_reference_and_names_a_missing_key(verdict):
    from genai_helpers.evaluation import membership_attack

    assert verdict(checks.check_membership_attack, membership_attack) == "passed"
    assert "lacks tpr_at_01pct" in verdict(
        checks.check_membership_attack,
        lambda mo, m, n: {k: v for k, v in attack(mo, m, n).items() if k != "tpr_at_01pct"})
