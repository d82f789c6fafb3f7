"""Chapter 06's reference pieces: what a student who skips an exercise takes instead.

- `linear_flops(batch, n_in, n_out)`: FLOPs of `nn.Linear`'s forward pass (exercise 6.1);
- `membership_attack(model, members, non_members)`: the membership attack from the ELBO, from
  per-example scores to the AUC and the true-positive rate at low false-positive rates (6.4);
- `knn_precision(real, fake, k)`: the k-NN precision of Kynkäänniemi et al. 2019 (6.5).

(Exercises 6.2 and 6.3 take `gh.metrics.nn_gap` and `gh.metrics.membership_auc`.)
"""
from __future__ import annotations

import torch

from .metrics import manifold_share, membership_auc


def linear_flops(batch: int, n_in: int, n_out: int) -> int:
    """FLOPs of the matrix product of nn.Linear(n_in, n_out) on `batch` rows: 2 per weight per row."""
    return 2 * batch * n_in * n_out


def knn_precision(real, fake, k: int) -> float:
    """Share of `fake` rows within the k-NN radius of at least one `real` row (radius included)."""
    return manifold_share(fake, real, k)


@torch.no_grad()
def elbo_scores(model, x, draws: int = 5) -> torch.Tensor:
    """The attacker's score per image: the ELBO (higher = more likely a member), averaged over
    `draws` samples of the encoder's noise, with the model in evaluation mode."""
    from .vae import neg_elbo

    model.eval()
    return -torch.stack([neg_elbo(model, x) for _ in range(draws)]).mean(0).double().cpu()


def tpr_at_fpr(member_scores, nonmember_scores, rate: float) -> float:
    """The largest true-positive rate of the attack "member if score >= t" over the thresholds t
    whose false-positive rate (share of non-members at or above t) is at most `rate`. A threshold
    above every score (both rates 0) is always allowed."""
    m = torch.as_tensor(member_scores).double().flatten()
    n = torch.as_tensor(nonmember_scores).double().flatten()
    t = torch.cat([torch.tensor([float("inf")], dtype=torch.float64), m, n]).unique()
    tpr = (m[None] >= t[:, None]).double().mean(1)
    fpr = (n[None] >= t[:, None]).double().mean(1)
    return tpr[fpr <= rate].max().item()


def membership_attack(model, members, non_members, draws: int = 5) -> dict:
    """The membership attack from the ELBO, end to end: per-image ELBO scores of the members
    (training images) and non-members (held-out images), the AUC, and the true-positive rate at
    1% and 0.1% false positives (Carlini et al. 2022). Returns the three numbers and the scores."""
    m, n = elbo_scores(model, members, draws), elbo_scores(model, non_members, draws)
    return {"auc": membership_auc(m, n), "tpr_at_1pct": tpr_at_fpr(m, n, 0.01),
            "tpr_at_01pct": tpr_at_fpr(m, n, 0.001), "member_scores": m, "non_member_scores": n}


__all__ = ["elbo_scores", "knn_precision", "linear_flops", "membership_attack", "tpr_at_fpr"]
