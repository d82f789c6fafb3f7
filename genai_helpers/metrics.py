"""Measuring generative models: mode coverage on toy data, and for MNIST a small classifier whose
features give a classifier-FID, an Inception-Score-style number and class coverage.

Inception-v3 weights (the usual FID features) cannot be downloaded offline and know nothing
of digits; a small MNIST classifier trained once (and cached) plays their role here.
"""
from __future__ import annotations

import math

import torch

from .classifier import MnistClassifier, batched, check_images
from .runtime import pick
from .data import MNIST
from .i18n import _

# --- toy data: modes covered and high-quality samples -----------------------------------------


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float,
                  min_count: int | None = None) -> dict:
    """Modes covered and share of high-quality samples (VEEGAN / PacGAN style).

    A sample is high quality when it lies within 3 std of its nearest centre. A mode is covered
    when at least `min_count` high-quality samples fall on it (default: a fifth of its fair share,
    n / (5 * modes), so that a few stray points do not count as covering a mode).
    Returns {"modes": int, "high_quality": float in [0, 1], "counts": high-quality samples per mode}.
    """
    if not torch.is_tensor(samples) or samples.dim() != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(_("samples must be a tensor of shape (n, {dim}), got {got}").format(
            dim=centres.shape[1], got=getattr(samples, "shape", type(samples).__name__)))
    samples = samples.detach().float().cpu()
    centres = centres.float().cpu()
    n, k = len(samples), len(centres)
    dist = torch.cdist(samples, centres)
    nearest, which = dist.min(1)
    good = nearest < 3 * std
    counts = torch.bincount(which[good], minlength=k)
    min_count = max(1, n // (5 * k)) if min_count is None else min_count
    return {"modes": int((counts >= min_count).sum()), "high_quality": good.float().mean().item(),
            "counts": counts}


# --- scores computed from the classifier ------------------------------------------------------

@torch.no_grad()
def classifier_features(classifier: MnistClassifier, images) -> torch.Tensor:
    """The classifier's 128 features of each image (in [0, 1]), as float64 on the CPU."""
    classifier.eval()
    return batched(classifier.features, check_images(images)).double().cpu()


def gaussian_stats(features: torch.Tensor):
    """Mean and (unbiased) covariance of feature vectors (N, d), in float64."""
    f = features.double()
    if len(f) < 2:
        raise ValueError(_("FID needs at least 2 samples per set"))
    return f.mean(0), torch.cov(f.T)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1^1/2 sigma2 sigma1^1/2)^1/2)."""
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    vals, vecs = torch.linalg.eigh(sigma1)
    root1 = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root1 @ sigma2 @ root1).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + sigma1.trace() + sigma2.trace() - 2 * cross)


def fid_from_features(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """FID between two sets of feature vectors, each (N, d)."""
    return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))


@torch.no_grad()
def class_probs(classifier: MnistClassifier, images) -> torch.Tensor:
    classifier.eval()
    return batched(lambda b: classifier(b).softmax(1), check_images(images)).double().cpu()


def inception_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))): 1 for one blurry class, 10 for confident, balanced digits."""
    p_y = probs.mean(0, keepdim=True)
    kl = (probs * (probs.clamp_min(1e-12).log() - p_y.clamp_min(1e-12).log())).sum(1)
    return math.exp(kl.mean().item())


def class_shares(classifier: MnistClassifier, images) -> torch.Tensor:
    """Share of the images the classifier assigns to each digit, shape (10,)."""
    return torch.bincount(class_probs(classifier, images).argmax(1), minlength=10).double() / len(images)


def evaluate_images(classifier: MnistClassifier, images, reference_features: torch.Tensor) -> dict:
    """Classifier-FID against reference features, IS-style score and class shares of `images`."""
    probs = class_probs(classifier, images)
    shares = torch.bincount(probs.argmax(1), minlength=10).double() / len(probs)
    return {"fid": fid_from_features(classifier_features(classifier, images), reference_features),
            "inception_score": inception_score(probs), "min_class_share": shares.min().item(),
            "class_shares": shares}


def fid_sample_size(mnist: MNIST) -> int:
    """Images per set for the chapter's FID: the size of the test set, at most 10,000."""
    return pick(full=min(10_000, len(mnist.test_x)), quick=min(1_000, len(mnist.test_x)))


# --- image restoration --------------------------------------------------------------------------

def psnr(restored: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
         peak: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, 10 log10(peak^2 / MSE), over the pixels where
    `mask` is true (e.g. only the repaired region; default: all). Identical images give +inf."""
    if restored.shape != target.shape:
        raise ValueError(_("restored {restored_shape} and target {target_shape} differ in shape").format(
            restored_shape=tuple(restored.shape), target_shape=tuple(target.shape)))
    err = (restored.float() - target.float()).pow(2)
    if mask is None:
        mask = torch.ones_like(err, dtype=torch.bool)
    mask = mask.expand_as(err).flatten(1).float()
    if (mask.sum(1) == 0).any():
        raise ValueError(_("the mask selects no pixel of some image"))
    mse = (err.flatten(1) * mask).sum(1) / mask.sum(1)
    return 10 * torch.log10(peak**2 / mse)


# --- chapter 06: fidelity and diversity, memorisation, membership -----------------------------

def _rows(x, what: str) -> torch.Tensor:
    """A set of points as one float row per item (images are flattened), on the CPU."""
    if not torch.is_tensor(x) or x.dim() < 2 or len(x) == 0:
        raise ValueError(_("{what} must be a non-empty tensor with one row (or image) per item, got {got}").format(
                               what=what, got=getattr(x, "shape", type(x).__name__)))
    return x.detach().flatten(1).float().cpu()


def nn_distances(queries, reference, batch: int = 1024) -> torch.Tensor:
    """Euclidean distance from each query to its nearest point of `reference`, shape (len(queries),).

    Images are compared pixel by pixel (flattened); pass features to compare in a feature space."""
    q, r = _rows(queries, "queries"), _rows(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise ValueError(_("queries have {n_query} values per item, reference {n_reference}").format(
            n_query=q.shape[1], n_reference=r.shape[1]))
    return torch.cat([torch.cdist(b, r).min(1).values for b in q.split(batch)])


def knn_radii(points, k: int = 3, batch: int = 1024) -> torch.Tensor:
    """Distance from each point to its k-th nearest *other* point of the same set (its own
    distance 0 is skipped): the radius of its ball in the k-NN estimate of the set's manifold."""
    p = _rows(points, "points")
    if not 1 <= k < len(p):
        raise ValueError(_("k must be between 1 and the number of points - 1 ({most}), got {k}").format(
            most=len(p) - 1, k=k))
    return torch.cat([torch.cdist(b, p).topk(k + 1, largest=False).values[:, k] for b in p.split(batch)])


def manifold_share(points, reference, k: int = 3, batch: int = 1024) -> float:
    """Share of `points` inside the k-NN manifold of `reference`: within the k-NN radius of at least
    one reference point (Kynkäänniemi et al. 2019)."""
    p, r = _rows(points, "points"), _rows(reference, "reference")
    radii = knn_radii(r, k, batch)
    inside = torch.cat([(torch.cdist(b, r) <= radii[None]).any(1) for b in p.split(batch)])
    return inside.float().mean().item()


def precision_recall(real, fake, k: int = 3) -> dict:
    """Improved precision and recall for generative models (Kynkäänniemi et al. 2019, k = 3).

    precision: share of generated points on the real data's manifold (fidelity: are the samples
    realistic?); recall: share of real points on the generated manifold (diversity: is all of the
    data covered?). Both in [0, 1]; pass features (e.g. `classifier_features`) or images.
    """
    return {"precision": manifold_share(fake, real, k), "recall": manifold_share(real, fake, k)}


def nn_gap(samples, train_ref, test_ref) -> float:
    """1 - mean NN distance to training points / mean NN distance to held-out points.

    About 0 when the samples are no closer to the training data than to new data from the same
    distribution; 1 when they are copies of training points. Both reference sets must have the
    same size (the nearest neighbour in a larger set is closer, whatever the model)."""
    if len(train_ref) != len(test_ref):
        raise ValueError(_("train_ref ({n_train}) and test_ref ({n_test}) must be equally large: take the same number "
                           "of training and held-out points").format(n_train=len(train_ref), n_test=len(test_ref)))
    d_train, d_test = nn_distances(samples, train_ref).mean(), nn_distances(samples, test_ref).mean()
    return 1 - (d_train / d_test).item()


def _scores(x, what: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().double().flatten().cpu()
    if len(t) == 0 or not torch.isfinite(t).all():
        raise ValueError(_("{what} must be a non-empty set of finite numbers").format(what=what))
    return t


def membership_auc(member_scores, nonmember_scores) -> float:
    """Area under the ROC curve of a membership attack: the probability that a random member
    scores higher than a random non-member (ties count half). 0.5 is guessing, 1 a perfect attack.

    Higher score = "more likely a member"; for a loss, pass its negative."""
    m, n = _scores(member_scores, "member_scores"), _scores(nonmember_scores, "nonmember_scores")
    __, inverse, counts = torch.unique(torch.cat([m, n]), return_inverse=True, return_counts=True)
    counts = counts.double()
    ranks = (counts.cumsum(0) - (counts - 1) / 2)[inverse]  # 1-based ranks, ties averaged
    return ((ranks[:len(m)].sum() - len(m) * (len(m) + 1) / 2) / (len(m) * len(n))).item()


def roc_curve(member_scores, nonmember_scores) -> tuple[torch.Tensor, torch.Tensor]:
    """(false positive rate, true positive rate) of the attack "member if score >= t" for every
    threshold t, from (0, 0) to (1, 1)."""
    m, n = _scores(member_scores, "member_scores"), _scores(nonmember_scores, "nonmember_scores")
    t = torch.cat([torch.tensor([math.inf], dtype=torch.float64), torch.cat([m, n]).unique().flip(0)])
    tpr = (m[None] >= t[:, None]).double().mean(1)
    fpr = (n[None] >= t[:, None]).double().mean(1)
    return fpr, tpr


def attack_summary(member_scores, nonmember_scores, low_fpr: float = 0.01) -> dict:
    """AUC, best accuracy over thresholds (members and non-members weighted equally) and the true
    positive rate at a false positive rate of at most `low_fpr` (Carlini et al. 2022)."""
    fpr, tpr = roc_curve(member_scores, nonmember_scores)
    return {"auc": membership_auc(member_scores, nonmember_scores),
            "best_accuracy": ((tpr + 1 - fpr) / 2).max().item(),
            f"tpr_at_{low_fpr:g}_fpr": tpr[fpr <= low_fpr].max().item()}
