"""Chapter 03's GAN code: steps, packing, schedule, monitors, the article's Keras helpers and the latent walk."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genai_helpers import article, classifier, gan, losses, maths, metrics, runtime, schedules, widgets
from genai_helpers.data import ring_centres


def tiny():
    torch.manual_seed(0)
    G = gan.MLPGenerator(2, (16,), 2)
    D = gan.MLPDiscriminator(2, (16,))
    return G, D, torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)


def flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


def test_discriminator_step_is_bce_from_logits_and_leaves_g_alone():
    G, D, _, opt_d = tiny()
    real, fake = torch.randn(8, 2) + 2, G(G.noise(8))
    logits_r, logits_f = D(real), D(fake)
    by_hand = -(torch.log(torch.sigmoid(logits_r)).mean() + torch.log(1 - torch.sigmoid(logits_f)).mean())
    g_before, d_before = flat(G), flat(D)
    out = gan.discriminator_step(D, opt_d, real, fake)
    assert out["loss_D"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert out["D(x)"].item() == pytest.approx(torch.sigmoid(logits_r).mean().item(), rel=1e-5)
    assert torch.equal(flat(G), g_before) and not torch.equal(flat(D), d_before)
    assert all(p.grad is None for p in G.parameters())


def test_generator_step_updates_g_only_with_the_nonsaturating_loss():
    G, D, opt_g, _ = tiny()
    fake = G(G.noise(8))
    by_hand = -torch.log(torch.sigmoid(D(fake))).mean()
    d_before, g_before = flat(D), flat(G)
    out = gan.generator_step(D, opt_g, fake)
    assert out["loss_G"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert torch.equal(flat(D), d_before) and not torch.equal(flat(G), g_before)


def test_make_step_returns_scalar_losses_and_decays_the_learning_rate():
    G, D, _, _ = tiny()
    og, od = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    step = gan.make_step(G, D, og, od, total_steps=10, decay=0.5)
    for _ in range(10):
        out = step(torch.randn(16, 2))
    assert set(out) == {"loss_D", "D(x)", "loss_G", "D(G(z))"} and all(v.dim() == 0 for v in out.values())
    assert og.param_groups[0]["lr"] == 0 and od.param_groups[0]["lr"] == 0
    with pytest.raises(ValueError, match="loss must be one of"):
        gan.make_step(G, D, og, od, loss="hinge")


def test_train_gan_runs_your_step_inside_its_schedule():
    """make_gan_step: a round of your own, on train_gan's optimisers, with its schedule around it."""
    data = torch.randn(64, 2) + 2
    seen = {}

    def d_alone(G, D, opt_g, opt_d):
        seen["lr"] = (opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"])
        seen["opt_d"] = opt_d

        def step(real):
            with torch.no_grad():
                fake = G(G.noise(len(real)))
            return gan.discriminator_step(D, opt_d, real, fake)

        return step

    G, D, _, _ = tiny()
    g_before, d_before = flat(G), flat(D)
    hist = gan.train_gan(G, D, data, steps=8, batch_size=16, lr=1e-2, decay=0.5, make_gan_step=d_alone,
                         plot=False, diagnose=False)
    assert hist.step == 8 and set(hist.losses) == {"loss_D", "D(x)"} and seen["lr"] == (1e-2, 1e-2)
    assert torch.equal(flat(G), g_before) and not torch.equal(flat(D), d_before)
    assert seen["opt_d"].param_groups[0]["lr"] == 0  # decayed to 0 over the last half, by train_gan
    # the package's own round, passed as yours, trains exactly as train_gan's default
    runs = []
    for make in (None, lambda G, D, opt_g, opt_d: gan.make_step(G, D, opt_g, opt_d)):
        G, D, _, _ = tiny()
        runs.append(gan.train_gan(G, D, data, steps=8, batch_size=16, decay=0.5, make_gan_step=make, plot=False,
                                  diagnose=False).losses)
    assert runs[0] == runs[1]


def test_linear_decay_and_resume():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    sched = schedules.LinearDecay([opt], total_steps=10, fraction=0.4)
    seen = []
    for _ in range(10):
        seen.append(sched())
        p.grad = torch.ones(1)
        opt.step()
    assert seen[:6] == [1.0] * 6 and seen[-1] == 0.0 and seen[7] == pytest.approx(0.5)
    resumed = schedules.LinearDecay([opt], total_steps=20, fraction=0.5)  # the optimiser knows 10 steps
    assert resumed() == pytest.approx(0.9)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            schedules.LinearDecay([opt], total_steps=10, fraction=bad)
    lr = opt.param_groups[0]["lr"]
    counter = schedules.LinearDecay([opt], total_steps=10, fraction=0)  # only counts: rates stay
    assert counter() == 1.0 and counter.done == 11 and opt.param_groups[0]["lr"] == lr


def test_packed_discriminator_stacks_samples_along_dim_1():
    inner = gan.MLPDiscriminator(4, (8,))
    D = gan.Packed(inner, 2)
    x = torch.randn(6, 2)
    assert torch.allclose(D(x), inner(x.reshape(3, 4)))
    conv = gan.Packed(torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1)), 2)
    assert conv(torch.randn(4, 1, 28, 28)).shape == (2, 1)
    with pytest.raises(ValueError, match="divisible"):
        D(torch.randn(5, 2))


@pytest.mark.parametrize("G, D", [
    (gan.MLPGenerator(64, (32,), 784, image=True), gan.MLPDiscriminator(784, (32,))),
    (gan.DCGANGenerator(32, 8), gan.DCGANDiscriminator(8)),
])
def test_mnist_models_shapes_and_ranges(G, D):
    x = G(G.noise(5))
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (5,)
    s = G.sample(4, generator=torch.Generator().manual_seed(0))
    assert s.shape == (4, 1, 28, 28) and s.min() >= 0 and s.max() <= 1 and G.training
    assert torch.equal(s, G.sample(4, generator=torch.Generator().manual_seed(0)))


def test_ring_monitor_counts_modes_of_a_perfect_generator():
    centres = ring_centres()

    class Perfect(gan.Generator):
        latent_dim = 1

        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z):
            return centres[(z[:, 0].abs() * 1000).long() % 8] + 0 * self.dummy

    D = gan.MLPDiscriminator(2, (8,))
    mon = gan.RingMonitor(Perfect(), D, centres, grid=11)
    assert mon() == {"modes": 8, "high_quality": 1.0}
    assert mon.snapshots[0]["surface"].shape == (11, 11)
    assert gan.RingMonitor(Perfect(), gan.Packed(gan.MLPDiscriminator(4, (8,)), 2), centres)() ["modes"] == 8


def test_mnist_monitor_records_and_round_trips(tmp_path):
    G = gan.DCGANGenerator(8, 4)
    clf = classifier.MnistClassifier()
    ref = metrics.classifier_features(clf, torch.rand(50, 1, 28, 28))
    mon = gan.MnistMonitor(G, clf, ref, every=5, n=40, n_grid=3)
    mon(0)
    mon(5)
    mon(5)  # a repeated step replaces the record
    assert [r["step"] for r in mon.records] == [0, 5] and len(mon.grids) == 2
    assert mon.grids[0].shape == (3, 1, 28, 28)
    mon.save(tmp_path / "m.pt")
    other = gan.MnistMonitor(G, clf, ref, every=5)
    assert other.load(tmp_path / "m.pt") and other.curve("fid") == mon.curve("fid")
    assert not other.load(tmp_path / "missing.pt")


def test_first_line_strips_keras_colours_and_preamble():
    e = ValueError("Exception encountered when calling Reshape.call().\n\n\x1b[1mThe total size of the "
                   "tensor must be unchanged.\x1b[0m\n\nArguments received by Reshape.call():")
    assert article.first_line(e) == "ValueError: The total size of the tensor must be unchanged."
    assert article.first_line(NameError("name 'save_images' is not defined")) == \
        "NameError: name 'save_images' is not defined"


def test_keras_mnist_looks_like_load_data():
    from genai_helpers.data import load_mnist

    (x, y), (xt, yt) = article.keras_mnist(load_mnist(quick=True))
    assert x.dtype == np.uint8 and x.shape[1:] == (28, 28) and x.max() > 200 and len(y) == len(x)
    assert xt.shape[1:] == (28, 28) and yt.dtype == np.uint8


def test_real_keras_reports_the_articles_bugs():
    """Chapter 03 shows these messages from real Keras 3 (PyTorch backend): ERRATA 14 and 15."""
    try:
        keras = article.import_keras()
    except ImportError:
        pytest.skip("keras is not installed")
    from keras.layers import Dense, Flatten, Input, Reshape

    with pytest.raises(ValueError) as err:
        keras.Sequential([Input((100,)), Dense(128 * 7 * 7), Reshape((7, 7, 128)),
                          Dense(128 * 14 * 14), Reshape((14, 14, 128))])
    assert "total size of the tensor must be unchanged" in article.first_line(err.value)
    D = keras.Sequential([Input((28, 28, 1)), Flatten(), Dense(1, activation="sigmoid")])
    with pytest.raises(ValueError, match="compile"):
        D.train_on_batch(np.zeros((2, 28, 28, 1)), np.ones((2, 1)))


def test_slerp_endpoints_and_norm():
    z0, z1 = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(maths.slerp(z0, z1, 0.0), z0, atol=1e-5)
    assert torch.allclose(maths.slerp(z0, z1, 1.0), z1, atol=1e-5)
    mid = maths.slerp(z0.expand(5, 2), z1.expand(5, 2), torch.linspace(0, 1, 5))
    assert torch.allclose(mid.norm(dim=1), torch.full((5,), 3.0), atol=1e-4)


def test_latent_walk_moves_and_reports_errors():
    G = gan.DCGANGenerator(8, 4)
    demo = widgets.latent_walk(G, classify=lambda x: torch.full((len(x), 10), 0.1))
    first = demo.update().copy()
    demo.sliders[1].value = 5  # seed B
    demo.sliders[2].value = 0.9  # along the arc
    assert not np.allclose(first, demo.update())
    assert "classifier" in demo.label.value and "answered in" in demo.stopwatch.label.value
    assert "image/png" in demo._repr_mimebundle_()
    broken = widgets.latent_walk(G, classify=lambda x: 1 / 0)
    assert "ZeroDivisionError" in broken.label.value
    with pytest.raises(TypeError, match="latent_dim"):
        widgets.latent_walk(torch.nn.Linear(2, 2))


def test_losses_from_logits_match_the_hand_computation_at_extremes():
    f = torch.tensor([-200.0, 0.0, 200.0])
    assert torch.isfinite(losses.generator_loss_nonsaturating(f))
    assert losses.generator_loss_nonsaturating(f).item() == pytest.approx((200 + np.log(2)) / 3, rel=1e-6)
    assert F.softplus(-f).mean().item() == pytest.approx(losses.generator_loss_nonsaturating(f).item())


def test_single_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with runtime.single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_class_shares_sum_to_one():
    clf = classifier.MnistClassifier()
    shares = metrics.class_shares(clf, torch.rand(50, 1, 28, 28))
    assert shares.shape == (10,) and shares.sum().item() == pytest.approx(1.0)
