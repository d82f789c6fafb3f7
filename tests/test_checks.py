"""Each checker: a right answer passes; typical wrong answers are named; bad input is a message."""
import pytest
import torch
import torch.nn.functional as F

from genai_helpers import checks
from genai_helpers.checks import CheckFailed


def kl_right(mu, logvar):
    return -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)


@pytest.mark.parametrize("fn, words", [
    (kl_right, "passed"),
    (lambda mu, lv: 0.5 * (1 + lv - mu**2 - lv.exp()).sum(1), "wrong sign"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - lv.exp()).mean(1), "averaged over the latent"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - (0.5 * lv).exp()).sum(1), "sigma^2 = exp(logvar)"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - lv.exp()), "forgot to sum"),
    (lambda mu, lv: -0.5 * (1 + lv - mu**2 - lv.exp()).sum(0), "expected shape"),
])
def test_check_kl(fn, words, verdict):
    assert words in verdict(checks.check_kl, fn)


def test_not_implemented_and_crashes_and_bad_input_are_messages(verdict):
    def stub(mu, logvar):
        raise NotImplementedError("sum -1/2 (1 + logvar - mu^2 - exp(logvar)) over dim 1")

    v = verdict(checks.check_kl, stub)
    assert "not implemented yet" in v and "Hint: sum" in v
    assert "raised ZeroDivisionError" in verdict(checks.check_kl, lambda mu, lv: 1 / 0)
    for bad in (None, 3, "kl_term"):
        assert "pass your function itself" in verdict(checks.check_kl, bad)
    assert "not float" in verdict(checks.check_kl, lambda mu, lv: 1.0)
    assert "not a tuple" in verdict(checks.check_kl, lambda mu, lv: (mu, lv))


def test_failure_renders_without_traceback():
    with pytest.raises(CheckFailed) as e:
        checks.check_kl(None)
    assert e.value._render_traceback_() == str(e.value).splitlines()


@pytest.mark.parametrize("fn, words", [
    (lambda mu, lv: mu + (0.5 * lv).exp() * torch.randn_like(mu), "passed"),
    (lambda mu, lv: mu + lv.exp() * torch.randn_like(mu), "sigma^2"),
    (lambda mu, lv: mu, "does not vary"),
    (lambda mu, lv: torch.distributions.Normal(mu, (0.5 * lv).exp()).sample(), "no gradient"),
    (lambda mu, lv: (mu + (0.5 * lv).exp() * torch.randn_like(mu)).detach(), "no gradient"),
    (lambda mu, lv: mu + (0.5 * lv).exp() * torch.randn_like(mu) + 1, "mean mu"),
])
def test_check_reparameterize(fn, words, verdict):
    assert words in verdict(checks.check_reparameterize, fn)


def bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))


@pytest.mark.parametrize("fn, words", [
    (bce, "passed"),
    (lambda lg, x: F.binary_cross_entropy_with_logits(lg, x, reduction="none").mean((1, 2, 3)),
     "averaged over the 784 pixels"),
    (lambda lg, x: F.binary_cross_entropy_with_logits(lg, x), "default reduction"),
    (lambda lg, x: bce(lg, x).mean(), "not the batch mean"),
    (lambda lg, x: (torch.sigmoid(lg) - x).pow(2).mean((1, 2, 3)), "mean squared error"),
    (lambda lg, x: -bce(lg, x), "wrong sign"),
])
def test_check_reconstruction(fn, words, verdict):
    assert words in verdict(checks.check_reconstruction, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda lg, x, mu, lv: bce(lg, x) + kl_right(mu, lv), "passed"),
    (lambda lg, x, mu, lv: bce(lg, x) - kl_right(mu, lv), "KL is subtracted"),
    (lambda lg, x, mu, lv: bce(lg, x), "KL term is missing"),
    (lambda lg, x, mu, lv: (bce(lg, x) + kl_right(mu, lv)).mean(), "not the batch mean"),
])
def test_check_neg_elbo(fn, words, verdict):
    assert words in verdict(checks.check_neg_elbo, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda x: x.float() / 255, "passed"),
    (lambda x: x / 255, "passed"),
    (lambda x: x.float() / 256, "not 256"),
    (lambda x: x // 255, "integer division"),
    (lambda x: x.double() / 255, "the dtype is torch.float64"),
    (lambda x: x.float(), "still 0..255"),
])
def test_check_to_unit(fn, words, verdict):
    assert words in verdict(checks.check_to_unit, fn)


# ---- chapter 02's build exercises: Encoder, Decoder, vae_step ----
from torch import nn  # noqa: E402

from genai_helpers.losses import bernoulli_nll, gaussian_kl  # noqa: E402


def encoder_class(latent_head="linear", split=True, fixed=None, first=(4, 2, 1), flat=64 * 7 * 7):
    class Encoder(nn.Module):
        def __init__(self, latent_dim):
            super().__init__()
            d = fixed or latent_dim
            k, s, p = first
            self.net = nn.Sequential(nn.Conv2d(1, 32, k, s, p), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, 2 * d))

        def forward(self, x):
            h = self.net(x)
            if not split:
                return h
            mu, logvar = h.chunk(2, dim=1)
            if latent_head == "softplus":
                logvar = F.softplus(logvar)
            if latent_head == "same":
                return mu, mu
            return mu, logvar
    return Encoder


class EncoderNoGrad(nn.Module):
    def __init__(self, latent_dim):
        super().__init__()
        self.a, self.b = nn.Linear(784, 2 * latent_dim), nn.Linear(784, 10)

    def forward(self, x):
        return self.a(x.flatten(1)).chunk(2, dim=1)


@pytest.mark.parametrize("cls, words", [
    (encoder_class(), "passed"),
    (encoder_class(split=False), "split it into two halves"),
    (encoder_class(latent_head="softplus"), "log-variance is never negative"),
    (encoder_class(latent_head="same"), "same numbers"),
    (encoder_class(fixed=16), "not the constant LATENT"),
    (encoder_class(first=(5, 2, 1)), "a 4x4 stride-2 conv with padding 1 halves 28 -> 14"),
    (encoder_class(first=(5, 2, 1)), "Conv2d(1->32, k=5, s=2, p=1): 28x28 -> 13x13"),
    (encoder_class(first=(4, 1, 1)), "cannot be multiplied"),
    (EncoderNoGrad, "no gradient reaches b.weight"),
    (lambda d: (_ for _ in ()).throw(NotImplementedError("Exercise 2.1")), "not implemented yet"),
])
def test_check_encoder(cls, words, verdict):
    assert words in verdict(checks.check_encoder, cls)


def decoder_class(last=None, size=(4, 2, 1), flat=False):
    class Decoder(nn.Module):
        def __init__(self, latent_dim):
            super().__init__()
            k, s, p = size
            layers = [nn.Linear(latent_dim, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                      nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, k, s, p)]
            if flat:
                layers = [nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 784)]
            self.net = nn.Sequential(*layers)

        def forward(self, z):
            out = self.net(z)
            if last == "sigmoid":
                return torch.sigmoid(out)
            if last == "sigmoid2":
                return torch.sigmoid(torch.sigmoid(out))
            if last == "relu":
                return F.relu(out)
            return out
    return Decoder


@pytest.mark.parametrize("cls, words", [
    (decoder_class(), "passed"),
    (decoder_class(last="sigmoid"), "these look like probabilities"),
    (decoder_class(last="sigmoid2"), "sigmoid applied twice"),
    (decoder_class(last="relu"), "a ReLU on the output"),
    (decoder_class(flat=True), "nn.Unflatten(1, (1, 28, 28))"),
    (decoder_class(size=(3, 2, 1)), "ConvTranspose2d(32->1, k=3, s=2, p=1): 14x14 -> 27x27"),
    (decoder_class(size=(3, 2, 1)), "doubles 7 -> 14 -> 28"),
])
def test_check_decoder(cls, words, verdict):
    assert words in verdict(checks.check_decoder, cls)


def make_step(rec="sum", kl_sign=1, zero_grad=True, train=True, probs=False, batch="mean", as_float=False):
    def vae_step(model, opt, x):
        if train:
            model.train()
        logits, mu, logvar = model(x)
        if probs:
            logits = torch.sigmoid(logits)
        r = bernoulli_nll(logits, x)
        r = r / 784 if rec == "mean" else r
        kl = gaussian_kl(mu, logvar)
        per_image = r + kl_sign * kl
        loss = per_image.mean() if batch == "mean" else per_image.sum()
        if zero_grad:
            opt.zero_grad()
        loss.backward()
        opt.step()
        if as_float:
            return {"loss": loss.item()}
        return {"loss": loss, "reconstruction": r.mean(), "kl": kl.mean()}
    return vae_step


@pytest.mark.parametrize("fn, words", [
    (make_step(), "passed"),
    (make_step(rec="mean"), "averaged over the 784 pixels instead of summed"),
    (make_step(kl_sign=0), "the KL term is missing"),
    (make_step(kl_sign=-1), "the KL is subtracted"),
    (make_step(probs=True), "was given probabilities"),
    (make_step(batch="sum"), "summed over the batch"),
    (make_step(zero_grad=False), "call opt.zero_grad() before"),
    (make_step(train=False), "call model.train() first"),
    (make_step(as_float=True), "return tensors, not Python numbers"),
    (lambda model, opt, x: model(x)[0].mean(), "return the losses as a dict"),
])
def test_check_vae_step(fn, words, verdict):
    assert words in verdict(checks.check_vae_step, fn)


def test_chapter02_references_pass_their_checkers(verdict):
    from genai_helpers import vae_parts
    for checker, ref in [(checks.check_encoder, vae_parts.ReferenceEncoder),
                         (checks.check_decoder, vae_parts.ReferenceDecoder),
                         (checks.check_vae_step, vae_parts.reference_step)]:
        assert verdict(checker, ref) == "passed"
