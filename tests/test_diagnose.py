"""gh.diagnose: fit recognises the usual training failures, says so once, and stays silent on
healthy runs. Each pathology is reproduced on purpose with a small, fast setup (CPU)."""
import dataclasses
import math

import pytest
import torch
from torch import nn

import genai_helpers as gh
from genai_helpers import diagnose as dg


def kinds(hist):
    return [d["kind"] for d in hist.diagnoses]


def feed(steps, **curves):
    """A Diagnostics fed synthetic per-step curves (lists of equal length); returns it."""
    w = dg.Diagnostics()
    for i in range(steps):
        w.after_step(i + 1, {k: v[i] for k, v in curves.items()})
    return w


# --- unit tests of each detector on synthetic curves (cheap) ----------------------------------

def test_posterior_collapse_from_active_share_and_from_total_kl():
    # a short run that ends collapsed: said at its end, from the step the collapse began
    w = feed(60, loss=[1.0] * 60, kl_active=[1.0] * 5 + [1 / 16] * 55)
    assert w.found == []  # still in the warm-up: it may be the early transient
    (d,) = w.at_end(60)
    assert d.kind == "posterior_collapse" and d.step == 6 and d.recovered is None
    assert "94% of the latent dimensions are inactive" in d.message and "the end of training" in d.message
    assert "ERRATA 5" in d.message and "averaged" in d.message
    w = feed(60, loss=[0.07] * 60, reconstruction=[0.07] * 60, kl=[1e-4] * 60)  # a student's step: no kl_active
    assert [d.kind for d in w.at_end(60)] == ["posterior_collapse"]
    # a long run collapsed from the start (the article's loss): said as soon as the warm-up is over
    n = dg.COLLAPSE_WARMUP + 100
    w = feed(n, loss=[1.0] * n, kl_active=[0.0] * n)
    (d,) = w.found
    assert d.step == 1 and f"at every one of the {dg.COLLAPSE_WARMUP} steps since step 1" in d.message
    # a short early dip, as healthy VAEs have, and a VAE that keeps half its dimensions: silent
    dip = [1.0] * 20 + [1 / 16] * 35 + [0.8] * 45
    assert feed(100, loss=[1.0] * 100, kl_active=dip).at_end(100) == []
    assert feed(100, loss=[1.0] * 100, kl_active=[0.5] * 100).at_end(100) == []
    assert feed(100, loss=[1.0] * 100, kl=[0.0] * 100).at_end(100) == []  # no reconstruction term: not a VAE


def test_an_early_collapse_that_recovers_is_no_alarm():
    """Chapter 05's conditional VAE in fp32 (quick mode, this machine): all 16 dimensions inactive from
    step 34 to 125, all active again by step 143. Longer than COLLAPSE_STEPS, inside the warm-up."""
    active = [1.0] * 33 + [0.0] * 92 + [0.5] * 17 + [1.0] * 108
    assert 125 - 34 + 1 >= dg.COLLAPSE_STEPS  # the stretch alone would have been reported
    w = feed(250, loss=[200.0] * 250, kl_active=active)
    assert w.found == [] and w.at_end(250) == []


def test_a_collapse_past_the_warm_up_that_clears_is_marked_recovered_and_can_come_back():
    n = dg.COLLAPSE_WARMUP + 100  # collapsed to step 400, active from 401 to 500, collapsed again 501-600
    active = [0.0] * n + [1.0] * 100 + [0.0] * 100
    w, hist = dg.Diagnostics(), gh.History()
    for i, a in enumerate(active):
        dg.report(w.after_step(i + 1, {"loss": 1.0, "kl_active": a}), hist)
    dg.report(w.at_end(len(active)), hist)
    first, again = hist.diagnoses
    assert (first["kind"], first["step"], first["recovered"]) == ("posterior_collapse", 1, n + 1)
    assert (again["kind"], again["step"], again["recovered"]) == ("posterior_collapse", n + 101, None)
    lines = dg.closing_report(hist).strip().splitlines()
    assert lines[0].startswith(f"✓ posterior collapse, recovered (from step 1 to step {n + 1})")
    assert lines[1].startswith(f"⚠ posterior collapse (from step {n + 101})")
    assert dg.describe(gh.History()) == dg.NO_DIAGNOSIS


def test_a_winning_discriminator_lost_modes_and_lost_variety_recover():
    n = 150
    w = feed(n + 60, **{"D(x)": [0.97] * n + [0.6] * 60, "D(G(z))": [0.02] * n + [0.4] * 60})
    (d,) = w.found
    assert d.kind == "discriminator_wins" and d.recovered == n + 1
    w = dg.Diagnostics()
    even, lost = [0.1] * 10, [0.2, 0.0] * 5
    found = []
    for i, (shares, v) in enumerate([(even, 0.9), (even, 1.0), (lost, 0.05), (lost, 0.04), (even, 0.9), (even, 1.0)]):
        found += w.after_eval(10 * (i + 1), {"class_shares": shares, "variety": v})
    recovered = {d.kind: d.recovered for d in found if d.recovered is not None}
    assert recovered == {"mode_collapse": 50, "no_variety": 50}


def test_discriminator_wins_needs_a_sustained_stretch_and_g_not_improving():
    n = 150
    w = feed(n, **{"D(x)": [0.97] * n, "D(G(z))": [0.02] * n, "loss_G": [3 + i / 50 for i in range(n)]})
    assert [d.kind for d in w.found] == ["discriminator_wins"]
    assert "non-saturating" in w.found[0].message and "label smoothing" in w.found[0].message
    assert feed(n, d_real=[0.97] * n, d_fake=[0.02] * n).found  # other key names, no G loss
    assert feed(n, loss_D=[0.05] * n, loss_G=[4.0] * n).found  # only the losses
    # G catching up (its loss falls), a balanced game, a short stretch: silent
    assert not feed(n, **{"D(x)": [0.97] * n, "D(G(z))": [0.02] * n, "loss_G": [6 - i / 30 for i in range(n)]}).found
    assert not feed(n, **{"D(x)": [0.55] * n, "D(G(z))": [0.45] * n, "loss_G": [0.8] * n}).found
    assert not feed(90, **{"D(x)": [0.97] * 90, "D(G(z))": [0.02] * 90}).found


def test_divergence_and_oscillation_on_loss_curves():
    rising = [1.0] * 30 + [1.0 * 1.03 ** i for i in range(60)]
    w = feed(90, loss=rising)
    assert [d.kind for d in w.found] == ["divergence"] and "lower learning rate" in w.found[0].message
    bouncing = [1.0 if (i // 10) % 2 else 2.0 for i in range(120)]
    w = feed(120, loss=bouncing)
    assert [d.kind for d in w.found] == ["instability"] and "oscillates" in w.found[0].message
    noisy_plateau = [1.0 + 0.05 * math.sin(i * 1.7) + (0.02 if (i // 10) % 2 else 0) for i in range(300)]
    falling = [10 * 0.99 ** i for i in range(300)]
    assert not feed(300, loss=noisy_plateau).found and not feed(300, loss=falling).found
    # a solved task bouncing at a tiny level (chapter 04's translator): noise, not a learning rate too high
    solved = [3.7 * 0.9 ** i for i in range(60)] + [0.002 if (i // 10) % 2 else 0.004 for i in range(120)]
    assert not feed(180, loss=solved).found
    solved_then_rising = [3.7 * 0.9 ** i for i in range(60)] + [0.0002 * 1.05 ** i for i in range(60)]
    assert not feed(120, loss=solved_then_rising).found  # 0.0002 -> 0.004: still 0.1% of the start
    assert [d.kind for d in feed(180, loss=solved[:60] + [0.4 if (i // 10) % 2 else 0.8 for i in range(120)]).found] \
        == ["instability"]  # the same bounce at 10-20% of the start: too high a learning rate


def test_nan_after_a_spike_and_nan_without_warning():
    w = feed(40, loss=[1.0] * 35 + [1.5, 4, 30, 400, 9000])
    (d,) = w.at_end(40, "the loss is not finite at step 41 (loss=nan)")
    assert d.kind == "divergence" and "spiked to 9000" in d.message and d.step == 40
    w = feed(40, loss=[1.0] * 40)
    (d,) = w.at_end(40, "the loss is not finite at step 41 (loss=nan)")
    assert "without rising first" in d.message and "log(0)" in d.message
    assert feed(40, loss=[1.0] * 40).at_end(40, "interrupted at step 40") == []


def test_overfitting_says_from_when():
    w = dg.Diagnostics()
    held = [3.0, 2.0, 1.6, 1.7, 1.9, 2.2]
    train = [3.0, 1.9, 1.4, 1.1, 0.8, 0.5]
    found = []
    for i, (h, t) in enumerate(zip(held, train)):
        found += w.after_eval(10 * (i + 1), {"test_loss": h, "train_loss": t})
    (d,) = found
    assert d.kind == "overfitting" and d.step == 10  # where the gap started to grow
    assert "best at step 30" in d.message and "Chapter 06" in d.message
    # both falling, the gap growing a little: silent
    w = dg.Diagnostics()
    for i in range(8):
        assert w.after_eval(i, {"test_nll": 3 - 0.2 * i, "train_nll": 3 - 0.25 * i}) == []


def evals_after_steps(held: list, **per_eval):
    """A Diagnostics fed 10 steps per evaluation (each step logs per_eval[k][i]), then the held-out
    test_neg_elbo held[i]; returns what it found."""
    w, found = dg.Diagnostics(), []
    for i, h in enumerate(held):
        for j in range(10):
            found += w.after_step(10 * i + j + 1, {k: v[i] for k, v in per_eval.items()})
        found += w.after_eval(10 * (i + 1), {"test_neg_elbo": h})
    return found


def test_overfitting_compares_the_same_quantity_on_training_and_held_out_data():
    held = [230.0, 231.0, 243.0, 262.0, 280.0]  # the held-out -ELBO rises...
    # ... and so does the training -ELBO (the beta = 0 autoencoder: its codes' KL grows), while the
    # loss it optimises (reconstruction) falls: neither overfitting nor divergence
    autoencoder = evals_after_steps(held, loss=[285.0, 213.0, 206.0, 200.0, 195.0],
                                    neg_elbo=[305.0, 234.0, 246.0, 259.0, 270.0])
    assert autoencoder == []
    # a training loss of another name is not compared with the held-out -ELBO
    assert evals_after_steps(held, loss=[285.0, 213.0, 206.0, 200.0, 195.0]) == []
    # the same quantity falling on the training data while it rises on held-out data: overfitting
    (d,) = evals_after_steps(held, loss=[300.0, 200.0, 190.0, 180.0, 170.0],
                             neg_elbo=[300.0, 200.0, 190.0, 180.0, 170.0])
    assert d.kind == "overfitting" and "test_neg_elbo on held-out data and neg_elbo on the training data" in d.message
    # all three rising (the optimised loss too): divergence
    (d,) = evals_after_steps(held, loss=[200.0, 210.0, 220.0, 240.0, 260.0],
                             neg_elbo=[200.0, 210.0, 220.0, 240.0, 260.0])
    assert d.kind == "divergence" and "held-out" in d.message


def test_mode_collapse_names_the_missing_digits():
    class Monitor:  # like gh.gan.MnistMonitor: records read by the watcher, not by fit
        records = []

    mon = Monitor()
    w = dg.Diagnostics(monitor=mon)
    even = [0.1] * 10
    lost = [0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0]
    found = []
    for step, shares in [(0, [1.0] + [0.0] * 9), (10, even), (20, even), (30, lost), (40, lost)]:
        mon.records.append({"step": step, "class_shares": shares, "min_class_share": min(shares)})
        found += w.after_step(step + 1, {"loss_D": 1.2, "loss_G": 0.8})
    (d,) = found
    assert d.kind == "mode_collapse" and d.step == 30 and "(digits: 1, 3, 5, 7, 9)" in d.message
    # the same modes coming and going for one evaluation: silent
    w = dg.Diagnostics()
    for i, m in enumerate([2, 8, 6, 8, 7, 8]):
        assert w.after_eval(i, {"modes": m, "high_quality": 0.8}) == []


def test_no_variety_only_after_there_was_some():
    w = dg.Diagnostics()
    found = []
    for i, v in enumerate([0.05, 0.9, 1.0, 0.04, 0.03]):
        found += w.after_eval(i + 1, {"variety": v})
    assert [d.kind for d in found] == ["no_variety"] and found[0].step == 4
    w = dg.Diagnostics()  # an undertrained model whose variety grows: silent
    assert all(w.after_eval(i + 1, {"variety": v}) == [] for i, v in enumerate([0.02, 0.05, 0.1, 0.12]))
    x = torch.randn(100, 5)
    assert dg.variety(x, x) == pytest.approx(1.0) and dg.variety(x[:1].repeat(50, 1), x) == 0.0


def test_each_kind_is_reported_once():
    w = feed(300, loss=[1.0] * 300, kl_active=[0.0] * 300)
    assert [d.kind for d in w.found] == ["posterior_collapse"]
    assert dg.Diagnostics(seen=["posterior_collapse"]).after_step(1, {}) == []


# --- fit: the hook, the switch, the History --------------------------------------------------

def test_fit_diagnoses_a_too_high_learning_rate_then_nan(capsys, regression, sgd_task):
    model, opt, step = sgd_task(lr=1.5)  # above 2 / the largest curvature: each step overshoots more
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=40, batch_size=32,
                  plot=False, progress=False)
    assert hist.stopped and "not finite" in hist.stopped
    assert kinds(hist) == ["divergence"]
    out = capsys.readouterr().out
    assert "⚠ divergence" in out and "lower" in out


def test_fit_diagnoses_overfitting_from_when(tmp_path, capsys):
    torch.manual_seed(0)
    x, y = torch.randn(16, 8), torch.randn(16)  # 16 noisy points: nothing to learn, all to memorise
    xt, yt = torch.randn(256, 8), torch.randn(256)
    model = nn.Sequential(nn.Linear(8, 256), nn.ReLU(), nn.Linear(256, 1))
    opt = gh.adam(model.parameters(), lr=3e-3)

    def step(batch):
        loss = (model(batch[0]).squeeze(1) - batch[1]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    def train(**kw):
        return gh.fit(step, (x.repeat(10, 1), y.repeat(10)), state={"model": model, "opt": opt}, epochs=8,
                      batch_size=16, eval_fn=lambda: {"test_loss": (model(xt).squeeze(1) - yt).pow(2).mean()},
                      plot=False, progress=False, **kw)

    path = tmp_path / "memorising.pt"
    hist = train(checkpoint=path)
    assert kinds(hist) == ["overfitting"]
    d = hist.diagnoses[0]
    assert d["step"] == 10 and "was best at step 10" in d["message"]
    # a cached run trained under other rules (here: none said) is diagnosed again when it is loaded
    payload = torch.load(path, weights_only=False)
    payload["history"]["diagnoses"] = []
    torch.save(payload, path)
    capsys.readouterr()
    assert train(checkpoint=path).diagnoses == hist.diagnoses
    out = capsys.readouterr().out
    assert "Loaded from" in out and "⚠ overfitting (from step 10)" in out


def test_diagnose_false_turns_it_off_and_history_round_trip(tmp_path, regression, sgd_task):
    model, opt, step = sgd_task(lr=1.5)
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=40, batch_size=32,
                  plot=False, progress=False, diagnose=False)
    assert hist.stopped and hist.diagnoses == []
    model, opt, step = sgd_task(lr=1.5)
    path = tmp_path / "diverging.pt"
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=40, batch_size=32,
                  plot=False, progress=False, checkpoint=path)
    assert kinds(hist) == ["divergence"]
    again = gh.History.from_dict(gh.checkpoint.read_checkpoint(path)["history"])
    assert again.diagnoses == hist.diagnoses
    old = hist.to_dict()
    del old["diagnoses"]  # a checkpoint written before diagnoses existed still loads
    assert gh.History.from_dict(old).diagnoses == []


# --- the course's models: pathologies on purpose, and healthy runs without a false alarm -------

RING = gh.data.ring_of_gaussians(12_800, std=0.02, generator=torch.Generator().manual_seed(0))
CENTRES = gh.data.ring_centres()


def flowchart(G, D, opt_g, opt_d):
    """The article's flowchart (§2.4, ERRATA 3) as a round of the game: G is updated only when D calls the
    fakes real, else D; D's scores are logged."""
    def step(real):
        fake = G(G.noise(len(real)))
        with torch.no_grad():
            d_real, d_fake = torch.sigmoid(D(real)).mean(), torch.sigmoid(D(fake)).mean()
        if d_fake > 0.5:
            gh.gan.generator_step(D, opt_g, fake)
        else:
            gh.gan.discriminator_step(D, opt_d, real, fake)
        return {"G_updated": (d_fake > 0.5).float(), "D(x)": d_real, "D(G(z))": d_fake}

    return step


def ring_gan(rule="both", steps=200):
    """Chapter 03's ring GAN (2-D latent, MLPs of 128, Adam 1e-3, beta1 0.5, batch 256), trained by
    gh.gan.train_gan: both players at every step, their learning rates decaying over the last 30%, or
    by the article's flowchart (rule="flowchart", constant learning rates)."""
    torch.manual_seed(0)
    G = gh.gan.MLPGenerator(2, (128, 128), 2)
    D = gh.gan.MLPDiscriminator(2, (128, 128))
    monitor = gh.gan.RingMonitor(G, D, CENTRES)
    both = rule == "both"
    with gh.runtime.single_thread():
        return gh.gan.train_gan(G, D, RING, steps=steps, batch_size=256, lr=1e-3, decay=0.3 if both else 0.0,
                                make_gan_step=None if both else flowchart, eval_fn=monitor, plot=False)


def test_the_articles_flowchart_gan_is_diagnosed_as_the_discriminator_winning():
    hist = ring_gan("flowchart")
    assert sum(hist.losses["G_updated"]) < 0.05 * hist.step
    assert "discriminator_wins" in kinds(hist)


def test_healthy_ring_gan_raises_nothing():
    hist = ring_gan("both")
    assert hist.step >= 150 and kinds(hist) == []


class SectorGenerator(gh.gan.Generator):
    """On purpose: sends each eighth of the noise angles to one mode of the ring, but only to the
    modes in `allowed` (the others' noise goes to the first allowed mode)."""

    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.allowed = list(range(8))

    def forward(self, z):
        sector = ((torch.atan2(z[:, 1], z[:, 0]) % (2 * math.pi)) / (2 * math.pi) * 8).long().clamp(max=7)
        allowed = torch.tensor(self.allowed)
        sector = torch.where(torch.isin(sector, allowed), sector, allowed[0])
        return CENTRES[sector] + 0.01 * z + self.w


def test_a_generator_that_drops_modes_then_everything_is_diagnosed():
    G = SectorGenerator()
    monitor = gh.gan.RingMonitor(G, gh.gan.MLPDiscriminator(2, (8,)), CENTRES, n=800)
    opt = torch.optim.SGD(G.parameters(), lr=0.0)

    def step(real):
        G.allowed = [0, 1, 2, 3] if monitor.snapshots and len(monitor.snapshots) >= 3 else G.allowed
        if len(monitor.snapshots) >= 6:
            G.allowed = [0]
        loss = G(G.noise(len(real))).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    hist = gh.fit(step, RING[:64 * 4], state={"G": G, "opt": opt}, epochs=9, batch_size=64, eval_fn=monitor,
                  plot=False, progress=False)
    assert [s["modes"] for s in monitor.snapshots] == [8, 8, 8, 4, 4, 4, 1, 1, 1]
    found = {d["kind"]: d for d in hist.diagnoses}
    assert found["mode_collapse"]["step"] == 16
    assert "(modes: 4, 5, 6, 7)" in found["mode_collapse"]["message"]
    assert found["no_variety"]["step"] == 28


@pytest.fixture(scope="module")
def mnist():
    return gh.data.load_mnist(quick=True)


def test_the_articles_mean_mse_vae_collapses_its_posterior(mnist, capsys):
    """The article's loss (§3.1.3, ERRATA 5), with the reference VAE otherwise unchanged; a shorter run
    (64 steps of 64) than the reference's: it collapses from the first steps."""
    small = dataclasses.replace(mnist, train_images=mnist.train_images[:64 * 64],
                                train_labels=mnist.train_labels[:64 * 64])
    _, hist = gh.vae.train_vae(small, epochs=1, recon="mse_mean", batch_size=64, plot=False)
    assert "posterior_collapse" in kinds(hist)
    d = hist.diagnoses[kinds(hist).index("posterior_collapse")]
    assert "all the latent dimensions are inactive" in d["message"] and "mean-MSE" in d["message"]
    assert "⚠ posterior collapse" in capsys.readouterr().out


def test_a_conditional_vae_whose_early_collapse_recovers_raises_nothing(mnist):
    """Chapter 05's conditional VAE in fp32 (as on a CPU without bf16, the issue's false alarm): it passes
    through a collapse of all its dimensions early (here steps 34-125) and recovers; 200 steps."""
    state, step = gh.conditional.build_cvae(mnist.device)
    hist = gh.fit(step, (mnist.train_x, mnist.train_labels), state=state, epochs=7, batch_size=128, amp=False,
                  plot=False, progress=False)
    active = hist.losses["kl_active"]
    collapsed = [i + 1 for i, a in enumerate(active) if 1 - a >= dg.COLLAPSE_INACTIVE_SHARE and i >= 20]
    assert collapsed and active[-1] == 1.0, f"no early collapse and recovery to test: {active}"
    assert kinds(hist) == [], f"collapsed at steps {collapsed[0]}-{collapsed[-1]}: {hist.diagnoses}"


def test_the_autoencoder_of_chapter_02_is_not_called_overfitting(mnist):
    """gh.vae.reference_vae(beta=0.0), chapter 02's no-KL model (cached: the chapter loads it): its held-out
    -ELBO includes a KL term its training loss lacks; compared like with like, no overfitting."""
    _, hist = gh.vae.reference_vae(mnist, beta=0.0, plot=False)
    assert "neg_elbo" in hist.losses and kinds(hist) == []


# the chapters' quick reference trainings, each the function its chapter calls (gh.prepare.MODELS), and the
# checkpoint it writes: trained once per test session, then loaded by the notebooks from the same cache
HEALTHY = {"vae16": "vae_latent16", "cvae": "cvae_latent16", "classifier": "mnist_classifier",
           "mlp-gan": "gan_mlp", "dcgan": "gan_dcgan", "translator": "seq2seq_dates_attention"}


@pytest.mark.parametrize("model", HEALTHY)
def test_the_chapters_reference_trainings_raise_no_diagnosis(model, mnist):
    gh.prepare.MODELS[model][1](mnist)
    path = gh.checkpoint.checkpoint_path(HEALTHY[model])
    hist = gh.History.from_dict(gh.checkpoint.read_checkpoint(path)["history"])
    assert hist.step > 0 and hist.diagnoses == [], dg.describe(hist)
