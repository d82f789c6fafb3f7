"""Chapter 06 metrics on hand-built cases: membership AUC, precision/recall, NN distances and gap."""
import pytest
import torch
from scipy.stats import mannwhitneyu

from genai_helpers import metrics


@pytest.mark.parametrize("members, nonmembers, auc", [
    ([5.0, 6.0, 7.0], [1.0, 2.0], 1.0),  # perfectly separated
    ([1.0, 2.0], [5.0, 6.0, 7.0], 0.0),  # perfectly separated, the wrong way round
    ([3.0] * 4, [3.0] * 6, 0.5),  # identical: a coin toss
    ([1.0, 3.0], [2.0], 0.5),  # one pair won, one lost
    ([2.0], [2.0, 1.0], 0.75),  # a tie counts half
])
def test_membership_auc_hand_built(members, nonmembers, auc):
    assert metrics.membership_auc(torch.tensor(members), torch.tensor(nonmembers)) == pytest.approx(auc)


def test_membership_auc_is_mann_whitney_u():
    g = torch.Generator().manual_seed(0)
    m = torch.randint(0, 20, (300,), generator=g).double()  # many ties
    n = torch.randint(0, 18, (200,), generator=g).double()
    u = mannwhitneyu(m.numpy(), n.numpy()).statistic
    assert metrics.membership_auc(m, n) == pytest.approx(u / (300 * 200), abs=1e-12)


def test_roc_curve_and_attack_summary():
    fpr, tpr = metrics.roc_curve(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0]))
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert torch.all(fpr[1:] >= fpr[:-1]) and torch.all(tpr[1:] >= tpr[:-1])
    s = metrics.attack_summary(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0]))
    assert s == {"auc": 1.0, "best_accuracy": 1.0, "tpr_at_0.01_fpr": 1.0}
    s = metrics.attack_summary(torch.zeros(5), torch.zeros(5))
    assert s["auc"] == 0.5 and s["best_accuracy"] == 0.5 and s["tpr_at_0.01_fpr"] == 0.0


def test_membership_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        metrics.membership_auc(torch.tensor([]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="finite"):
        metrics.membership_auc(torch.tensor([float("nan")]), torch.tensor([1.0]))


def test_precision_recall_identical_and_disjoint():
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(1))
    assert metrics.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0}
    assert metrics.precision_recall(x, x + 100) == {"precision": 0.0, "recall": 0.0}


def test_precision_recall_of_a_collapsed_generator():
    # real: two clusters; fake: all on one of them -> high precision, recall about one half
    g = torch.Generator().manual_seed(2)
    real = torch.cat([torch.randn(200, 2, generator=g), torch.randn(200, 2, generator=g) + 20])
    fake = torch.randn(400, 2, generator=g)
    pr = metrics.precision_recall(real, fake)
    assert pr["precision"] > 0.9 and 0.4 < pr["recall"] <= 0.5


def test_knn_radii_and_manifold_share_on_a_line():
    line = torch.arange(10.0)[:, None]
    assert torch.equal(metrics.knn_radii(line, k=1), torch.ones(10))
    assert metrics.knn_radii(line, k=2)[0] == 2 and metrics.knn_radii(line, k=2)[5] == 1
    fakes = torch.tensor([[0.5], [5.0], [10.9], [11.0], [20.0]])
    assert metrics.manifold_share(fakes, line, k=2) == pytest.approx(0.8)  # 11.0 is exactly on 9's radius
    assert metrics.manifold_share(fakes, line, k=1) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="k must be"):
        metrics.knn_radii(line, k=10)


def test_nn_distances_and_gap():
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    test = torch.tensor([[0.0, 4.0], [10.0, 4.0]])
    samples = torch.tensor([[0.0, 1.0], [10.0, 1.0]])
    assert torch.allclose(metrics.nn_distances(samples, train), torch.tensor([1.0, 1.0]))
    assert metrics.nn_gap(samples, train, test) == pytest.approx(1 - 1 / 3)
    assert metrics.nn_gap(train, train, test) == pytest.approx(1.0)  # copies of the training points
    assert metrics.nn_gap(torch.tensor([[0.0, 2.0]]), train, test) == pytest.approx(0.0)  # half-way
    images = torch.rand(3, 1, 28, 28)
    assert metrics.nn_distances(images, images).abs().max() < 1e-3
    with pytest.raises(ValueError, match="equally"):
        metrics.nn_gap(samples, train, test[:1])
    with pytest.raises(ValueError, match="values per item"):
        metrics.nn_distances(torch.zeros(2, 3), torch.zeros(2, 4))


def test_tpr_at_fpr_and_auc_agree_with_sklearn():
    from sklearn.metrics import roc_auc_score, roc_curve

    from genai_helpers.evaluation import tpr_at_fpr

    g = torch.Generator().manual_seed(1)
    m = torch.randn(200, generator=g) + 1.0
    n = torch.randn(2000, generator=g)
    n[5] = 10.0  # a non-member with the best score of all
    y = torch.cat([torch.ones(200), torch.zeros(2000)]).numpy()
    s = torch.cat([m, n]).numpy()
    assert metrics.membership_auc(m, n) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    for rate in (0.01, 0.001, 0.0):
        assert tpr_at_fpr(m, n, rate) == pytest.approx(tpr[fpr <= rate].max(), abs=1e-12)


def test_membership_attack_reference_on_a_tiny_vae():
    from genai_helpers.evaluation import knn_precision, linear_flops, membership_attack
    from genai_helpers.vae import VAE

    torch.manual_seed(0)
    model = VAE(latent_dim=2, width=4, hidden=16)
    x = torch.rand(12, 1, 28, 28)
    out = membership_attack(model, x[:4], x[4:])
    assert set(out) == {"auc", "tpr_at_1pct", "tpr_at_01pct", "member_scores", "non_member_scores"}
    assert out["member_scores"].shape == (4,) and out["non_member_scores"].shape == (8,)
    assert 0 <= out["tpr_at_01pct"] <= out["tpr_at_1pct"] <= 1 and not model.training
    assert linear_flops(64, 784, 256) == 2 * 64 * 784 * 256
    real = torch.arange(10.0)[:, None]
    assert knn_precision(real, torch.tensor([[0.5], [20.0]]), 2) == pytest.approx(0.5)
