"""Metrics of chapter 03: mode coverage, FID (closed form, torchmetrics), IS-style score, the classifier."""
import math

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance, _compute_fid

import genai_helpers as gh
from genai_helpers import classifier, metrics
from genai_helpers.data import ring_centres, ring_of_gaussians

CENTRES = ring_centres()


def test_ring_has_eight_distinct_centres():
    assert len(torch.unique(CENTRES.round(decimals=5), dim=0)) == 8
    assert torch.allclose(CENTRES.norm(dim=1), torch.full((8,), 2.0))


@pytest.mark.parametrize("points, modes, hq", [
    (CENTRES.repeat(100, 1), 8, 1.0),  # exactly on the centres
    (CENTRES[[0, 3, 5]].repeat(300, 1), 3, 1.0),  # three modes only
    (torch.zeros(500, 2), 0, 0.0),  # the origin: far from every mode
    (ring_centres(16)[1::2].repeat(50, 1), 0, 0.0),  # half-way between modes, on the circle
])
def test_mode_coverage_on_known_point_sets(points, modes, hq):
    r = metrics.mode_coverage(points, CENTRES, 0.02)
    assert r["modes"] == modes and r["high_quality"] == pytest.approx(hq)


def test_mode_coverage_threshold_and_radius():
    # 3 std is in, 3.1 std is out
    unit = torch.tensor([[1.0, 0.0]])
    inside = CENTRES[2] + 2.99 * 0.02 * unit
    outside = CENTRES[2] + 3.01 * 0.02 * unit
    assert metrics.mode_coverage(torch.cat([inside] * 10), CENTRES, 0.02, min_count=1)["modes"] == 1
    assert metrics.mode_coverage(torch.cat([outside] * 10), CENTRES, 0.02, min_count=1)["modes"] == 0
    # a few stray points on a mode do not cover it: default min_count = n / (5 * modes)
    pts = torch.cat([CENTRES[0].repeat(2490, 1), CENTRES[1].repeat(10, 1)])
    r = metrics.mode_coverage(pts, CENTRES, 0.02)
    assert r["counts"][1] == 10 and r["modes"] == 1
    # real data: all modes, ~99.7% within 3 std (2-D Gaussian: 1 - exp(-9/2) = 98.9%)
    r = metrics.mode_coverage(ring_of_gaussians(2500, generator=torch.Generator().manual_seed(0)), CENTRES, 0.02)
    assert r["modes"] == 8 and r["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)


def test_mode_coverage_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        metrics.mode_coverage(torch.zeros(10, 3), CENTRES, 0.02)


def test_fid_of_identical_sets_is_zero():
    f = torch.randn(500, 16, dtype=torch.float64)
    assert abs(metrics.fid_from_features(f, f)) < 1e-8


def test_frechet_distance_closed_forms():
    d = 6
    mu = torch.randn(d, dtype=torch.float64)
    # same covariance: |delta|^2
    cov = torch.eye(d, dtype=torch.float64) * 0.7
    assert metrics.frechet_distance(mu, cov, mu + 0.5, cov) == pytest.approx(0.25 * d)
    # diagonal covariances: sum (sqrt(a) - sqrt(b))^2 + |delta|^2
    a, b = torch.rand(d, dtype=torch.float64) + 0.1, torch.rand(d, dtype=torch.float64) + 0.1
    ref = ((a.sqrt() - b.sqrt()) ** 2).sum().item() + 1.0
    assert metrics.frechet_distance(mu, torch.diag(a), mu + torch.eye(d, dtype=torch.float64)[0],
                                    torch.diag(b)) == pytest.approx(ref)


def test_fid_of_shifted_gaussian_samples_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    n, d, delta = 40_000, 8, 0.75
    x = torch.randn(n, d, generator=g)
    y = torch.randn(n, d, generator=g) + delta
    # the sampling error of |mean difference|^2 alone has std 2 |delta| sqrt(2 / n) ~ 0.03
    assert metrics.fid_from_features(x, y) == pytest.approx(d * delta ** 2, abs=0.1)


def test_frechet_distance_agrees_with_torchmetrics():
    g = torch.Generator().manual_seed(1)
    for d in (2, 10, 40):
        m1, m2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
        a, b = torch.randn(d, d, generator=g, dtype=torch.float64), torch.randn(d, d, generator=g, dtype=torch.float64)
        s1, s2 = a @ a.T / d, b @ b.T / d
        assert metrics.frechet_distance(m1, s1, m2, s2) == pytest.approx(_compute_fid(m1, s1, m2, s2).item(), rel=1e-6)


class Features(torch.nn.Module):
    """A custom feature extractor for torchmetrics: a fixed random projection of the pixels."""
    num_features = 12

    def __init__(self):
        super().__init__()
        self.w = torch.randn(784, 12, generator=torch.Generator().manual_seed(2))

    def forward(self, x):
        return torch.tanh(x.flatten(1) @ self.w / 10)


def test_fid_matches_torchmetrics_with_a_custom_feature_extractor_offline():
    g = torch.Generator().manual_seed(3)
    real, fake = torch.rand(300, 1, 28, 28, generator=g), torch.rand(200, 1, 28, 28, generator=g) ** 2
    feat = Features()
    fid = FrechetInceptionDistance(feature=feat, normalize=True)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    with torch.no_grad():
        ours = metrics.fid_from_features(feat(real), feat(fake))
    assert ours == pytest.approx(fid.compute().item(), rel=1e-4)


def test_inception_score_extremes():
    assert metrics.inception_score(torch.eye(10).repeat(5, 1).double()) == pytest.approx(10.0)
    one_class = torch.zeros(20, 10, dtype=torch.float64)
    one_class[:, 3] = 1
    assert metrics.inception_score(one_class) == pytest.approx(1.0)
    assert metrics.inception_score(torch.full((20, 10), 0.1, dtype=torch.float64)) == pytest.approx(1.0)


def test_images_must_be_mnist_shaped_and_in_unit_range():
    clf = classifier.MnistClassifier()
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        metrics.class_probs(clf, torch.rand(4, 784))
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        metrics.class_probs(clf, torch.rand(4, 1, 28, 28) * 2 - 1)


def test_classifier_reaches_97_percent_on_the_offline_split():
    """Trains the course classifier (cached in the session's checkpoint folder, which the
    notebooks executed later in the same pytest run reuse)."""
    mnist = gh.load_mnist(device="cpu")
    clf = classifier.mnist_classifier(mnist)
    acc = classifier.accuracy(clf, mnist.test_x, mnist.test_labels)
    assert acc >= 0.97, f"test accuracy {acc:.3f}"
    # a cache hit gives the same model
    again = classifier.mnist_classifier(mnist)
    assert classifier.accuracy(again, mnist.test_x, mnist.test_labels) == acc
    # evaluate_images on real digits: every class present, confident
    r = metrics.evaluate_images(clf, mnist.test_x, metrics.classifier_features(clf, mnist.train_x))
    assert r["min_class_share"] > 0.07 and r["inception_score"] > 8


def test_psnr_by_hand_and_on_a_masked_region():
    target = torch.zeros(2, 1, 4, 4)
    restored = target.clone()
    restored[0] += 0.1  # MSE 0.01 -> 20 dB
    restored[1, :, :2] = 0.5  # wrong only in the top half
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., :2, :] = True
    p = metrics.psnr(restored, target)
    assert p[0].item() == pytest.approx(20.0, abs=1e-4)
    assert p[1].item() == pytest.approx(10 * math.log10(1 / (0.25 / 2)), abs=1e-4)
    assert metrics.psnr(restored, target, mask)[1].item() == pytest.approx(10 * math.log10(1 / 0.25), abs=1e-4)
    assert torch.isinf(metrics.psnr(target, target)).all()
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(target, target[:1])
    with pytest.raises(ValueError, match="selects no pixel"):
        metrics.psnr(restored, target, torch.zeros(1, 1, 4, 4, dtype=torch.bool))
