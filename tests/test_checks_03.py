"""Chapter 03 checkers: right answers pass, typical mistakes are named, bad input is a message."""
import pytest
import torch
import torch.nn.functional as F

from genai_helpers import checks, losses


@pytest.mark.parametrize("fn, words", [
    (lambda f: F.softplus(-f).mean(), "passed"),
    (lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)), "passed"),
    (lambda f: -F.softplus(f).mean(), "saturating loss"),
    (lambda f: F.softplus(f).mean(), "label 1"),
    (lambda f: -torch.log(torch.sigmoid(f)).mean(), "rounds to log(0)"),
    (lambda f: F.softplus(-f).sum(), "summed over the batch"),
    (lambda f: -F.softplus(-f).mean(), "wrong sign"),
    (lambda f: F.softplus(-torch.sigmoid(f)).mean(), "sigmoid applied twice"),
])
def test_check_nonsaturating_loss(fn, words, verdict):
    assert words in verdict(checks.check_nonsaturating_loss, fn)


def d_step(D, opt, real, fake, *, detach=True, zero=True, loss=losses.discriminator_loss, step=True):
    if zero:
        opt.zero_grad()
    value = loss(D(real), D(fake.detach() if detach else fake))
    value.backward()
    if step:
        opt.step()
    return value.detach()


def bce_cat(real_logits, fake_logits):
    logits = torch.cat([real_logits, fake_logits])
    labels = torch.cat([torch.ones_like(real_logits), torch.zeros_like(fake_logits)])
    return F.binary_cross_entropy_with_logits(logits, labels)


@pytest.mark.parametrize("kw, words", [
    ({}, "passed"),
    ({"loss": bce_cat}, "passed"),  # mean over the concatenated batch: half the loss, accepted
    ({"detach": False}, "detach the fakes"),
    ({"zero": False}, "zero_grad()"),
    ({"step": False}, "did not change"),
    ({"loss": lambda a, b: -losses.discriminator_loss(a, b)}, "wrong sign"),
    ({"loss": lambda a, b: F.softplus(a).mean() + F.softplus(-b).mean()}, "labels swapped"),
    ({"loss": lambda a, b: F.softplus(-a).mean()}, "fakes' term is missing"),
    ({"loss": lambda a, b: F.softplus(-a).sum() + F.softplus(b).sum()}, "summed over the batch"),
])
def test_check_discriminator_step(kw, words, verdict):
    assert words in verdict(checks.check_discriminator_step, lambda *a: d_step(*a, **kw))


def test_check_discriminator_step_return_value(verdict):
    assert "return the loss" in verdict(checks.check_discriminator_step,
                                        lambda *a: d_step(*a) and None)


def g_step(D, opt, fake, *, zero=True, loss=losses.generator_loss_nonsaturating, detach=False):
    if zero:
        opt.zero_grad()
    value = loss(D(fake.detach() if detach else fake))
    value.backward()
    opt.step()
    return value.detach()


@pytest.mark.parametrize("kw, words", [
    ({}, "passed"),
    ({"loss": losses.generator_loss_saturating}, "saturating loss"),
    ({"zero": False}, "zero_grad()"),
    ({"loss": lambda f: -losses.generator_loss_nonsaturating(f)}, "wrong sign"),
    ({"loss": lambda f: F.softplus(f).mean()}, "label 0"),
    ({"detach": True}, "do not detach"),
])
def test_check_generator_step(kw, words, verdict):
    assert words in verdict(checks.check_generator_step, lambda *a: g_step(*a, **kw))


def test_check_generator_step_catches_a_step_of_d(verdict):
    def both(D, opt, fake):
        opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
        opt.zero_grad()
        opt_d.zero_grad()
        loss = losses.generator_loss_nonsaturating(D(fake))
        loss.backward()
        opt.step()
        opt_d.step()  # the article's combined model: D trained to call fakes real
        return loss

    assert "ERRATA 16" in verdict(checks.check_generator_step, both)


def hq_counts(samples, centres, std, radius=3.0, only_good=True):
    d = torch.cdist(samples, centres)
    near, which = d.min(1)
    keep = near < radius * std if only_good else near >= 0
    return torch.bincount(which[keep], minlength=len(centres))


@pytest.mark.parametrize("fn, words", [
    (hq_counts, "passed"),
    (lambda s, c, std: hq_counts(s, c, std, only_good=False), "count only high-quality"),
    (lambda s, c, std: hq_counts(s, c, std, radius=2.0), "not 2 std"),
    (lambda s, c, std: hq_counts(s, c, std * std), "not 3 variances"),
    (lambda s, c, std: hq_counts(s, c, std).float() / len(s), "not shares"),
    (lambda s, c, std: hq_counts(s, c, std).sum(), "expected shape (8,)"),
])
def test_check_high_quality_counts(fn, words, verdict):
    assert words in verdict(checks.check_high_quality_counts, fn)


def fd_right(m1, s1, m2, s2):
    vals, vecs = torch.linalg.eigh(s1)
    r1 = vecs @ torch.diag(vals.sqrt()) @ vecs.T
    return (m1 - m2).pow(2).sum() + s1.trace() + s2.trace() - 2 * torch.linalg.eigvalsh(r1 @ s2 @ r1).sqrt().sum()


@pytest.mark.parametrize("fn, words", [
    (fd_right, "passed"),
    (lambda m1, s1, m2, s2: torch.linalg.eigvals(s1 @ s2).sqrt().real.sum() * -2 + (m1 - m2).pow(2).sum()
     + s1.trace() + s2.trace(), "passed"),  # torchmetrics' way
    (lambda m1, s1, m2, s2: (m1 - m2).pow(2).sum() + (s1 + s2 - 2 * s1 @ s2).trace(), "square root is missing"),
    (lambda m1, s1, m2, s2: fd_right(m1, s1, m2, s2) - (m1 - m2).pow(2).sum(), "mean term is missing"),
    (lambda m1, s1, m2, s2: fd_right(m1, s1, m2, s2).sqrt(), "square root of the distance"),
    (lambda m1, s1, m2, s2: torch.linalg.eigvals(s1 @ s2).sqrt().sum() * -2 + s1.trace(), "complex"),
])
def test_check_frechet_distance(fn, words, verdict):
    assert words in verdict(checks.check_frechet_distance, fn)


# --- the build exercises: the DCGAN's networks and the GAN step ----------------------------------

from torch import nn  # noqa: E402

from genai_helpers import gan, gan_build  # noqa: E402


def make_generator(*, k=4, s=2, p=1, out_act=nn.Tanh, channels_last=False, unused=False):
    class G(gan.Generator):
        def __init__(self, latent_dim=32, width=16):
            super().__init__()
            self.latent_dim, w = latent_dim, width
            self.net = nn.Sequential(
                nn.Linear(latent_dim, 2 * w * 49), nn.BatchNorm1d(2 * w * 49), nn.ReLU(),
                nn.Unflatten(1, (2 * w, 7, 7)),
                nn.ConvTranspose2d(2 * w, w, k, s, p), nn.BatchNorm2d(w), nn.ReLU(),
                nn.ConvTranspose2d(w, 1, k, s, p), *([out_act()] if out_act else []))
            if unused:
                self.extra = nn.Linear(3, 3)

        def forward(self, z):
            x = self.net(z)
            return x.permute(0, 2, 3, 1) if channels_last else x
    return G


@pytest.mark.parametrize("cls, words", [
    (gan.DCGANGenerator, "passed"),
    (make_generator(), "passed"),
    (make_generator(k=3), "(7-1)*2 - 2*1 + 3 = 13"),
    (make_generator(k=4, p=0), "7 -> 14 -> 28"),
    (make_generator(out_act=nn.Sigmoid), "end with tanh"),
    (make_generator(out_act=None), "end with tanh"),
    (make_generator(channels_last=True), "channels second"),
    (make_generator(unused=True), "not used in forward"),
    (lambda latent_dim: nn.Linear(latent_dim, 784), "subclass gh.gan.Generator"),
])
def test_check_dcgan_generator(cls, words, verdict):
    assert words in verdict(checks.check_dcgan_generator, cls)


def make_discriminator(*, bn_first=False, sigmoid=False, keep_dim=False, k=4, no_grad=False):
    class D(nn.Module):
        def __init__(self, width=16):
            super().__init__()
            w = width
            self.net = nn.Sequential(
                nn.Conv2d(1, w, k, 2, 1), *([nn.BatchNorm2d(w)] if bn_first else []), nn.LeakyReLU(0.2),
                nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
                nn.Flatten(), nn.Linear(2 * w * 49, 1), *([nn.Sigmoid()] if sigmoid else []))

        def forward(self, x):
            if no_grad:
                x = x.detach()
            out = self.net(x)
            return out if keep_dim else out.squeeze(1)
    return D


@pytest.mark.parametrize("cls, words", [
    (gan.DCGANDiscriminator, "passed"),
    (make_discriminator(), "passed"),
    (make_discriminator(bn_first=True), "batch norm right after D's first layer"),
    (make_discriminator(sigmoid=True), "applied twice"),
    (make_discriminator(keep_dim=True), "shape (B,)"),
    (make_discriminator(k=5), "floor((28 + 2*1 - 5) / 2) + 1 = 13"),
    (make_discriminator(no_grad=True), "no gradient reaches the images"),
])
def test_check_dcgan_discriminator(cls, words, verdict):
    assert words in verdict(checks.check_dcgan_discriminator, cls)


def make_gan_step(*, train=True, detach=True, d_in_g=False, g_loss=losses.generator_loss_nonsaturating,
                  fresh=False, swapped=False, as_dict=True):
    def maker(G, D, opt_g, opt_d):
        def step(real):
            if train:
                G.train()
                D.train()
            fake = G(G.noise(len(real)))
            opt_d.zero_grad()
            a, b = D(real), D(fake.detach() if detach else fake)
            loss_d = losses.discriminator_loss(b, a) if swapped else losses.discriminator_loss(a, b)
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad()
            loss_g = g_loss(D(G(G.noise(len(real))) if fresh else fake))
            loss_g.backward()
            opt_g.step()
            if d_in_g:
                opt_d.step()
            out = {"loss_D": loss_d.detach(), "loss_G": loss_g.detach()}
            return out if as_dict else loss_g
        return step
    return maker


@pytest.mark.parametrize("maker, words", [
    (gan_build.reference_gan_step, "passed"),
    (make_gan_step(), "passed"),
    (make_gan_step(fresh=True), "passed"),
    (make_gan_step(train=False), "still in eval mode"),
    (make_gan_step(detach=False), "detach the fakes"),
    (make_gan_step(detach=False, fresh=True), "detach the fakes"),
    (make_gan_step(d_in_g=True), "only G's optimiser may step"),
    (make_gan_step(g_loss=losses.generator_loss_saturating), "saturating loss"),
    (make_gan_step(swapped=True), "labels are swapped"),
    (make_gan_step(as_dict=False), "return a dict"),
])
def test_check_gan_step(maker, words, verdict):
    assert words in verdict(checks.check_gan_step, maker)


@pytest.mark.parametrize("checker, reference", [
    (checks.check_nonsaturating_loss, gan_build.generator_loss),
    (checks.check_discriminator_step, gan_build.discriminator_step),
    (checks.check_generator_step, gan_build.generator_step),
    (checks.check_high_quality_counts, gan_build.high_quality_counts),
    (checks.check_frechet_distance, gan_build.frechet_distance),
])
def test_the_references_taken_by_the_skip_lines_pass_their_checkers(checker, reference, verdict):
    assert verdict(checker, reference) == "passed"
