import torch
from torch.distributions import Normal, kl_divergence

from genai_helpers import losses, vae


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    ours = losses.gaussian_kl(mu, logvar)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert ours.shape == (8,)
    torch.testing.assert_close(ours, ref)


def test_gaussian_kl_is_zero_only_at_the_prior():
    assert losses.gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3)).item() == 0
    assert (losses.gaussian_kl(torch.randn(100, 3), torch.randn(100, 3)) > 0).all()


def test_bernoulli_nll_is_summed_over_pixels_per_image():
    x = torch.rand(4, 1, 28, 28)
    logits = torch.randn(4, 1, 28, 28)
    nll = losses.bernoulli_nll(logits, x)
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).sum((1, 2, 3))
    assert nll.shape == (4,)
    torch.testing.assert_close(nll, by_hand, rtol=1e-4, atol=1e-3)
    # the reduction: a per-pixel mean would be 784 times smaller
    assert nll.mean() > 300 * torch.nn.functional.binary_cross_entropy_with_logits(logits, x)


def test_reparameterisation_gradient_matches_analytic_and_finite_differences():
    # d/dmu E[z^2] = 2 mu and d/dlogvar E[z^2] = sigma^2 for z ~ N(mu, sigma^2)
    torch.manual_seed(0)
    mu = torch.tensor([0.7], requires_grad=True)
    logvar = torch.tensor([-0.4], requires_grad=True)
    z = vae.reparameterize(mu.expand(200_000), logvar.expand(200_000))
    z.pow(2).mean().backward()
    assert abs(mu.grad.item() - 1.4) < 0.02
    assert abs(logvar.grad.item() - torch.exp(torch.tensor(-0.4)).item()) < 0.02
    # the same noise, finite differences of the Monte Carlo objective
    eps = torch.randn(200_000)

    def f(m, lv):
        return (m + (0.5 * lv).exp() * eps).pow(2).mean()

    h = 1e-3
    fd = (f(0.7 + h, torch.tensor(-0.4)) - f(0.7 - h, torch.tensor(-0.4))) / (2 * h)
    m2 = torch.tensor(0.7, requires_grad=True)
    f(m2, torch.tensor(-0.4)).backward()
    assert abs(fd.item() - m2.grad.item()) < 1e-3


def test_reparameterise_has_the_right_moments():
    torch.manual_seed(0)
    z = vae.reparameterize(torch.full((100_000,), 2.0), torch.full((100_000,), 2 * torch.log(torch.tensor(3.0))))
    assert abs(z.mean().item() - 2) < 0.05 and abs(z.std().item() - 3) < 0.05


def test_gan_losses_match_hand_computation():
    real = torch.tensor([2.0, -1.0, 0.5])
    fake = torch.tensor([-3.0, 0.0, 1.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    by_hand_d = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    torch.testing.assert_close(losses.discriminator_loss(real, fake), by_hand_d)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    torch.testing.assert_close(losses.discriminator_loss(real, fake),
                               bce(real, torch.ones(3)) + bce(fake, torch.zeros(3)))
    torch.testing.assert_close(losses.generator_loss_saturating(fake), torch.log(1 - d_fake).mean())
    torch.testing.assert_close(losses.generator_loss_nonsaturating(fake), -torch.log(d_fake).mean())


def test_gan_losses_are_finite_where_the_probability_rounds_to_zero():
    fake = torch.tensor([-200.0], requires_grad=True)  # sigmoid(-200) == 0 in float32
    for loss in (losses.generator_loss_saturating, losses.generator_loss_nonsaturating):
        value = loss(fake)
        (g,) = torch.autograd.grad(value, fake)
        assert torch.isfinite(value) and torch.isfinite(g)
    # the saturating loss has (almost) no gradient there, the non-saturating one has slope -1
    assert abs(torch.autograd.grad(losses.generator_loss_saturating(fake), fake)[0].item()) < 1e-30
    assert torch.autograd.grad(losses.generator_loss_nonsaturating(fake), fake)[0].item() == -1.0
