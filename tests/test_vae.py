import torch

from genai_helpers import classifier, losses, vae


def model_and_batch():
    torch.manual_seed(0)
    return vae.VAE(latent_dim=4), torch.rand(6, 1, 28, 28)


def test_objective_is_per_image_sum_of_bce_and_kl():
    m, x = model_and_batch()
    torch.manual_seed(1)
    loss, rec, kl = vae.objective(m, x)
    torch.manual_seed(1)
    logits, mu, logvar = m(x)
    assert loss.shape == rec.shape == kl.shape == (6,)
    torch.testing.assert_close(rec, losses.bernoulli_nll(logits, x))
    torch.testing.assert_close(loss, rec + kl)
    # an untrained decoder outputs p ~ 0.5 per pixel: about 784 * log 2 nats per image
    assert 450 < rec.mean().item() < 650


def test_beta_and_mse_variants():
    m, x = model_and_batch()
    torch.manual_seed(1)
    l0, r0, k0 = vae.objective(m, x, beta=0.0)
    torch.testing.assert_close(l0, r0)
    torch.manual_seed(1)
    lm, rm, km = vae.objective(m, x, recon="mse_mean")
    assert (rm < 1).all()  # a per-pixel mean of squared errors in [0, 1]
    try:
        vae.objective(m, x, recon="l1")
    except ValueError as e:
        assert "recon" in str(e)
    else:
        raise AssertionError("unknown recon should raise")


def test_iwae_bound_is_tighter_than_elbo_and_k1_equals_elbo_in_expectation():
    m, x = model_and_batch()
    torch.manual_seed(0)
    elbo = torch.stack([vae.neg_elbo(m, x) for _ in range(200)]).mean(0)
    iw1 = torch.stack([vae.iwae_bound(m, x, k=1) for _ in range(200)]).mean(0)
    iw100 = vae.iwae_bound(m, x, k=100)
    torch.testing.assert_close(iw1, elbo, rtol=0, atol=0.5)
    assert (iw100 <= elbo + 1e-3).all()


def test_shapes_sample_and_shift():
    m, x = model_and_batch()
    assert m.sample(3).shape == (3, 1, 28, 28)
    assert m.reconstruct(x).shape == x.shape
    y = classifier.random_shift(x, 1)
    assert y.shape == x.shape
    # every output is the input moved by at most one pixel: its centre 26x26 is somewhere in x
    for i in range(len(x)):
        centre = y[i, 0, 1:-1, 1:-1]
        assert any(torch.equal(centre, x[i, 0, 1 + dy:27 + dy, 1 + dx:27 + dx])
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
