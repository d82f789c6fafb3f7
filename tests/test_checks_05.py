"""Chapter 05 checkers: right answers pass, typical mistakes are named, bad input is a message."""
import pytest
import torch
import torch.nn.functional as F

from genai_helpers import checks


@pytest.mark.parametrize("fn, words", [
    (lambda y: F.one_hot(y, 10).float(), "passed"),
    (lambda y: torch.eye(10)[y], "passed"),
    (lambda y: F.one_hot(y).float(), "number of columns is the number of classes"),
    (lambda y: F.one_hot(y, 10), "dtype is torch.int64"),
    (lambda y: F.one_hot(y, 10).float().T, "one row per label"),
    (lambda y: F.one_hot((y + 1) % 10, 10).float(), "one column off"),
    (lambda y: y, "not the labels themselves"),
    (lambda y: None, "return a torch tensor"),
])
def test_check_one_hot(fn, words, verdict):
    assert words in verdict(checks.check_one_hot, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda g, o, m: torch.where(m, g, o), "passed"),
    (lambda g, o, m: g * m + o * ~m, "passed"),
    (lambda g, o, m: torch.where(m, o, g), "missing"),
    (lambda g, o, m: g * m, "not 0"),
    (lambda g, o, m: g, "not the model's guess"),
    (lambda g, o, m: g * m + o, "don't add it"),
    (lambda g, o, m: (g + o) / 2, "blends"),
])
def test_check_keep_observed(fn, words, verdict):
    assert words in verdict(checks.check_keep_observed, fn)


def mse(r, t, m):
    m = m.flatten(1).float()
    return ((r - t).pow(2).flatten(1) * m).sum(1) / m.sum(1)


@pytest.mark.parametrize("fn, words", [
    (lambda r, t, m: 10 * torch.log10(1 / mse(r, t, m)), "passed"),
    (lambda r, t, m: -10 * torch.log10(mse(r, t, m)), "passed"),
    (lambda r, t, m: 10 * torch.log10(1 / (r - t).pow(2).flatten(1).mean(1)), "masked pixels only"),
    (lambda r, t, m: 20 * torch.log10(1 / mse(r, t, m)), "20 log10"),
    (lambda r, t, m: 10 * torch.log(1 / mse(r, t, m)), "natural log"),
    (lambda r, t, m: 10 * torch.log10(mse(r, t, m)), "sign is flipped"),
    (lambda r, t, m: 10 * torch.log10(1 / mse(r, t, m)).mean(), "not the batch average"),
    (lambda r, t, m: 1 / 0, "raised ZeroDivisionError"),
])
def test_check_masked_psnr(fn, words, verdict):
    assert words in verdict(checks.check_masked_psnr, fn)


@pytest.mark.parametrize("fn, words", [
    (lambda x: F.avg_pool2d(x, 2), "passed"),
    (lambda x: x.unflatten(2, (14, 2)).unflatten(4, (14, 2)).mean((3, 5)), "passed"),
    (lambda x: x[..., ::2, ::2], "every other pixel"),
    (lambda x: F.avg_pool2d(x, 2) * 4, "block's sum"),
    (lambda x: F.max_pool2d(x, 2), "maximum"),
    (lambda x: F.interpolate(x, size=(14, 14), mode="bilinear"), "passed"),  # exactly the 2x2 mean
    (lambda x: F.avg_pool2d(x, 4), "expected shape (3, 1, 14, 14)"),
])
def test_check_downsample(fn, words, verdict):
    assert words in verdict(checks.check_downsample, fn)


def per_class(pred, req):
    return torch.stack([(pred[req == c] == c).double().mean() for c in range(10)])


@pytest.mark.parametrize("fn, words", [
    (per_class, "passed"),
    (lambda p, r: torch.bincount(r[p == r], minlength=10) / torch.bincount(r, minlength=10), "passed"),
    (lambda p, r: torch.bincount(r[p == r], minlength=10) / torch.bincount(p, minlength=10), "precision"),
    (lambda p, r: torch.bincount(r[p == r], minlength=10).double(), "count of right answers"),
    (lambda p, r: (p == r).double().mean().expand(10), "overall accuracy repeated"),
    (lambda p, r: torch.bincount(p, minlength=10) / len(p), "how often each digit was read"),
    (lambda p, r: 1 / 0, "raised ZeroDivisionError"),
])
def test_check_accuracy_per_class(fn, words, verdict):
    assert words in verdict(checks.check_accuracy_per_class, fn)


# --- build exercise 5.2: the conditional VAE -------------------------------------------------------

class CVAE(torch.nn.Module):
    """A right conditional VAE, or one with a typical mistake (`mistake`)."""

    def __init__(self, latent_dim=16, width=8, hidden=32, classes=10, mistake=None):
        super().__init__()
        nn = torch.nn
        self.latent_dim, self.classes, self.mistake = latent_dim, classes, mistake
        c, k = width, (1 if mistake == "raw integer" else classes)
        self.features = nn.Sequential(nn.Conv2d(1, c, 4, 2, 1), nn.ReLU(), nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),
                                      nn.Flatten())
        self.embed = nn.Embedding(classes, classes) if mistake == "embedding" else None
        self.to_latent = nn.Sequential(nn.Linear(2 * c * 49 + (0 if mistake == "encoder without label" else k), hidden),
                                       nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + (0 if mistake == "decoder without label" else k), hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * c * 49), nn.ReLU(), nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c, 1, 4, 2, 1))

    def label(self, y):
        if self.mistake == "raw integer":
            return y.float()[:, None]
        if self.mistake == "one-hot without num_classes":
            return F.one_hot(y).float()
        if self.embed is not None:
            return self.embed(y)
        return F.one_hot(y, 10).float()

    def encode(self, x, y):
        h = self.features(x)
        if self.mistake != "encoder without label":
            h = torch.cat([h, self.label(y)], 1)
        out = self.to_latent(h)
        return out if self.mistake == "one tensor from encode" else out.chunk(2, 1)

    def decode(self, z, y):
        out = self.decoder(z if self.mistake == "decoder without label" else torch.cat([z, self.label(y)], 1))
        return torch.sigmoid(out) if self.mistake == "sigmoid in decode" else out

    def forward(self, x, y):
        mu, logvar = self.encode(x, y)
        z = mu if self.mistake == "no sampling" else mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decode(z, y), mu, logvar


@pytest.mark.parametrize("mistake, words", [
    (None, "passed"),
    ("embedding", "passed"),
    ("decoder without label", "not given to the decoder"),
    ("raw integer", "enters as one number"),
    ("one-hot without num_classes", "pass num_classes=10"),
    ("sigmoid in decode", "no sigmoid at the end"),
    ("one tensor from encode", "return two tensors (mu, logvar)"),
    ("no sampling", "sample z = mu + sigma * eps"),
])
def test_check_conditional_vae(mistake, words, verdict):
    assert words in verdict(checks.check_conditional_vae, lambda: CVAE(mistake=mistake))


def test_check_conditional_vae_passes_the_reference_and_notes_an_encoder_without_label(capsys, verdict):
    from genai_helpers.conditional import ConditionalVAE

    assert verdict(checks.check_conditional_vae, ConditionalVAE) == "passed"
    assert "note" not in capsys.readouterr().out
    assert verdict(checks.check_conditional_vae, lambda: CVAE(mistake="encoder without label")) == "passed"
    assert "the encoder ignores the label: allowed" in capsys.readouterr().out


# --- build exercise 5.3: "draw me a 7" -------------------------------------------------------------

def drawer(mistake=None):
    def draw(model, digit, n, temperature=1.0):
        with torch.no_grad():
            scale = {"squared": temperature ** 2, "divided": 1 / temperature, "ignored": 1.0,
                     "on the logits": 1.0}.get(mistake, temperature)
            z = scale * torch.randn(n, model.latent_dim)
            labels = torch.full((n,), 0 if mistake == "wrong label" else digit)
            logits = model.decode(z, labels)
            if mistake == "on the logits":
                logits = logits / temperature
            return logits if mistake == "no sigmoid" else torch.sigmoid(logits)

    if mistake == "with gradients":
        return lambda m, d, n, t=1.0: torch.sigmoid(m.decode(t * torch.randn(n, m.latent_dim), torch.full((n,), d)))
    return draw


@pytest.mark.parametrize("mistake, words", [
    (None, "passed"),
    ("on the logits", "divides the logits"),
    ("squared", "standard deviation T^2"),
    ("divided", "multiply"),
    ("ignored", "temperature is ignored"),
    ("wrong label", "not images of a 7"),
    ("no sigmoid", "apply torch.sigmoid"),
    ("with gradients", "torch.no_grad()"),
])
def test_check_draw(mistake, words, verdict):
    assert words in verdict(checks.check_draw, drawer(mistake))


def test_check_draw_passes_the_reference(verdict):
    from genai_helpers.conditional import draw

    assert verdict(checks.check_draw, draw) == "passed"


def test_super_resolution_projection_is_exactly_consistent_and_in_range():
    from genai_helpers import restore

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=g)
    low = restore.downsample(torch.rand(4, 1, 28, 28, generator=g) ** 3)
    low[0, 0, 0, 0], low[1, 0, 3, 3] = 0.0, 1.0  # blocks that must become all black / all white
    p = restore.project_consistent(x, low)
    assert (restore.downsample(p) - low).abs().max() < 1e-5
    assert p.min() >= 0 and p.max() <= 1
    assert torch.allclose(restore.project_consistent(p, low), p, atol=1e-5)  # a projection: idempotent
    # it is the nearest consistent image: no other consistent image in [0, 1] is closer to x
    other = restore.project_consistent(torch.rand(4, 1, 28, 28, generator=g), low)
    assert (p - x).pow(2).sum() <= (other - x).pow(2).sum()


# --- build exercise 5.3: the training step ----------------------------------------------------------

def stepper(mistake=None):
    def cvae_step(model, opt):
        def step(batch):
            x, y = batch
            logits, mu, logvar = model(x) if mistake == "no labels" else model(x, y)
            if mistake == "sigmoid twice":
                logits = torch.sigmoid(logits)
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1)
            rec = rec.mean(1) if mistake == "pixel mean" else rec.sum(1)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
            per = {"no kl": rec, "kl sign": rec - kl}.get(mistake, rec + kl)
            loss = per.sum() if mistake == "batch sum" else per.mean()
            if mistake != "no zero_grad":
                opt.zero_grad()
            if mistake != "no backward":
                loss.backward()
            if mistake != "no opt.step":
                opt.step()
            return loss if mistake == "not a dict" else {"loss": loss, "reconstruction": rec.mean(), "kl": kl.mean()}
        return step
    return cvae_step


@pytest.mark.parametrize("mistake, words", [
    (None, "passed"),
    ("no labels", "model(x, y)"),
    ("sigmoid twice", "sigmoid is applied twice"),
    ("pixel mean", "sum it over the 784 pixels"),
    ("no kl", "KL term is missing"),
    ("kl sign", "wrong sign"),
    ("batch sum", "take the mean over the images"),
    ("no zero_grad", "opt.zero_grad() before loss.backward()"),
    ("no opt.step", "did not move"),
    ("not a dict", "return a dict"),
])
def test_check_cvae_step(mistake, words, verdict):
    assert words in verdict(checks.check_cvae_step, stepper(mistake))


def test_check_cvae_step_passes_the_reference(verdict):
    from genai_helpers.conditional import cvae_step

    assert verdict(checks.check_cvae_step, cvae_step) == "passed"
