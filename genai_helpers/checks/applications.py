"""Chapter 05's exercises: conditioning (the conditional VAE, "draw me a 7"), repair and its measures."""
from __future__ import annotations

import torch
from torch import nn

from .framework import Report, call, compare, _require_callable
from ..i18n import N_, _

HINTS = {
    "5.1": (N_("A one-hot vector has one entry per class, all 0 but a 1 in the label's place; the text above says how "
               "many classes there are, and why a plain number would mislead the network."),
            N_("torch.nn.functional has a function with this exact name; tell it the number of classes explicitly (a "
               "batch without a 9 must still give 10 columns), and convert the result to float.")),
    "5.2": (N_("Start from chapter 02's VAE: the same convolutional features and the same decoder. The label enters "
               "twice, as the text above says: next to the image features before the layer that gives mean and "
               "log-variance, and next to z before the decoder's first layer."),
            N_("Three parts in __init__: convolutions + Flatten; a Linear stack whose input is the flat features plus "
               "`classes` columns and whose output is 2 * latent_dim; a decoder whose first Linear takes latent_dim + "
               "classes. In encode/decode, torch.cat along dim 1 with your one_hot(y); .chunk(2, dim=1) splits mean "
               "and log-variance; forward samples z with the reparameterisation of chapter 02 and returns (logits, mu, "
               "logvar). No sigmoid in decode.")),
    "5.3": (N_("The loss is chapter 02's negative ELBO, with the labels passed on to the model: the reconstruction "
               "term (Bernoulli, summed over the pixels) plus the KL to the prior, averaged over the batch; then the "
               "three calls of every PyTorch training step."),
            N_("The batch is a tuple (images, labels); your model's forward returns (logits, mu, logvar). "
               "torch.nn.functional has a binary cross-entropy that takes logits (reduction='none', then flatten(1) "
               "and sum over dim 1); the Gaussian KL has the closed form of chapter 02. Return a dict with at least "
               "the key 'loss'.")),
    "5.4": (N_("Sampling at temperature T means z ~ N(0, T^2 I): the noise is scaled, not the decoder's output. The "
               "label is the same digit for all n images."),
            N_("torch.randn with (n, model.latent_dim) on the model's device, times the temperature; torch.full for "
               "the n labels (integers); decode, then torch.sigmoid to get pixels in [0, 1].")),
    "5.5": (N_("The question is per *requested* digit: among the images asked for as digit c, which share did the "
               "classifier read as c?"),
            N_("Select with a boolean mask requested == c, compare pred with c there and average; do it for the ten "
               "digits and stack the results into one (10,) tensor.")),
    "5.6": (N_("The rule of the section: the observed pixels are known and must be kept exactly; the model's guess is "
               "used only where the mask says a pixel is missing (True)."),
            N_("One element-wise selection by the mask does it; torch has a function that picks from two tensors by a "
               "bool condition.")),
    "5.7": (N_("PSNR = 10 log10(1 / MSE) for images in [0, 1]; the MSE here is the mean over the masked (missing) "
               "pixels only, one value per image."),
            N_("Flatten each image (flatten(1)), turn the mask into floats, sum the squared error times the mask and "
               "divide by the number of masked pixels per image; then torch.log10.")),
    "5.8": (N_("The camera model: each low-resolution pixel is the mean of a 2x2 block of the digit."),
            N_("torch.nn.functional has an average-pooling function for 2-D images; its kernel size is the block "
               "size.")),
}


def check_one_hot(fn) -> None:
    """Exercise 5.1: one_hot(labels) -> (N, 10) float rows, a 1 in each label's column."""
    _require_callable(fn, "one_hot", "check_one_hot(one_hot)")
    r = Report("one_hot")
    cases = {_("the digits 0..9 in order"): torch.arange(10),
             _("a batch of 7s and 3s (labels that never reach 9)"): torch.tensor([7, 7, 3, 0, 3]),
             _("a single label"): torch.tensor([4])}
    for case, y in cases.items():
        out, err = call(fn, y.clone())
        if err:
            r.fail(case, err)
            continue
        ref = torch.nn.functional.one_hot(y, 10).float()
        why = compare(out.float() if torch.is_tensor(out) else out, ref, {
            _("the number of columns is the number of classes (10), not the largest label + 1: pass "
              "num_classes=10"): torch.nn.functional.one_hot(y).float(),
            _("the 1 is one column off: digit d goes in column d (columns count from 0)"):
                torch.nn.functional.one_hot((y + 1) % 10, 10).float(),
            _("return one row per label (N, 10), not one column per label"): ref.T,
            _("return the one-hot rows, not the labels themselves"): y.float(),
        }, _("(N, 10), one row per label"), atol=1e-6)
        if why is None and not out.dtype.is_floating_point:
            why = (_("the values are right but the dtype is {out_dtype}: the network concatenates it with float "
                     "features, so return .float()").format(out_dtype=out.dtype))
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def _masked_cases():
    g = torch.Generator().manual_seed(50)
    square = torch.zeros(3, 1, 6, 6, dtype=torch.bool)
    square[:, :, 1:4, 2:5] = True
    return {_("a 3x3 square hidden in 6x6 images"): square,
            _("random pixels hidden (about half)"): torch.rand(4, 1, 5, 5, generator=g) < 0.5}, g


def check_keep_observed(fn) -> None:
    """Exercise 5.6: keep_observed(guess, observed, mask): guess where mask is True, observed elsewhere."""
    _require_callable(fn, "keep_observed", "check_keep_observed(keep_observed)")
    r = Report("keep_observed")
    cases, g = _masked_cases()
    for case, mask in cases.items():
        guess = torch.rand(mask.shape, generator=g)
        # what the camera recorded; under the mask it is junk (not zero), since it is unknown
        observed = torch.rand(mask.shape, generator=g) + 2.0 * mask
        out, err = call(fn, guess.clone(), observed.clone(), mask.clone())
        if err:
            r.fail(case, err)
            continue
        m = mask.float()
        why = compare(out, torch.where(mask, guess, observed), {
            _("the mask is True where a pixel is *missing*: take the guess there, the observation elsewhere"):
                torch.where(mask, observed, guess),
            _("the observed pixels are lost: outside the mask the result must be the observation, not 0"):
                guess * m,
            _("the observed pixels are lost: outside the mask the result must be the observation, not the model's "
              "guess"): guess,
            _("the observation under the mask is unknown (junk): don't add it, multiply it by ~mask"):
                guess * m + observed,
            _("that blends the two everywhere: keep the observation exactly where it is known"):
                (guess + observed) / 2,
        }, _("the same shape as the images"), atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_masked_psnr(fn) -> None:
    """Exercise 5.7: masked_psnr(restored, target, mask) -> PSNR per image in dB over the masked pixels."""
    _require_callable(fn, "masked_psnr", "check_masked_psnr(masked_psnr)")
    from ..metrics import psnr

    r = Report("masked_psnr")
    cases, g = _masked_cases()
    for case, mask in cases.items():
        target = torch.rand(mask.shape, generator=g)
        restored = (target + 0.2 * torch.randn(mask.shape, generator=g)).clamp(0, 1)
        out, err = call(fn, restored.clone(), target.clone(), mask.clone())
        if err:
            r.fail(case, err)
            continue
        err2 = (restored - target).pow(2).flatten(1)
        m = mask.flatten(1).float()
        mse = (err2 * m).sum(1) / m.sum(1)
        why = compare(out, psnr(restored, target, mask), {
            _("that averages the error over all pixels; the known pixels are right by construction and would flatter "
              "the repair: average over the masked pixels only"): 10 * torch.log10(1 / err2.mean(1)),
            _("divide the masked squared error by the number of masked pixels, not by all pixels"):
                10 * torch.log10(1 / ((err2 * m).sum(1) / m.shape[1])),
            _("PSNR is 10 log10(1 / MSE) with the *mean* squared error; 20 log10 goes with the root mean "
              "square"): 20 * torch.log10(1 / mse),
            _("use log10 (decibels), not the natural log"): 10 * torch.log(1 / mse),
            _("the sign is flipped: a smaller error must give a *larger* PSNR"): 10 * torch.log10(mse),
            _("return one PSNR per image (N,), not the batch average"): 10 * torch.log10(1 / mse).mean(),
        }, _("one PSNR per image, shape (N,)"), atol=1e-3)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_downsample(fn) -> None:
    """Exercise 5.8: downsample(x) -> (N, 1, 14, 14), each pixel the mean of a 2x2 block."""
    _require_callable(fn, "downsample", "check_downsample(downsample)")
    import torch.nn.functional as F

    r = Report("downsample")
    g = torch.Generator().manual_seed(51)
    cases = {_("random 28x28 images"): torch.rand(3, 1, 28, 28, generator=g),
             _("one image with a bright 2x2 block at (2, 4)"): torch.zeros(1, 1, 28, 28).index_put_(
                 (torch.tensor([0]), torch.tensor([0]), torch.tensor([2]), torch.tensor([4])), torch.tensor(1.0))}
    for case, x in cases.items():
        out, err = call(fn, x.clone())
        if err:
            r.fail(case, err)
            continue
        why = compare(out, F.avg_pool2d(x, 2), {
            _("that keeps every other pixel and throws away three of four: average each 2x2 block"):
                x[..., ::2, ::2],
            _("that is the block's sum; average it (divide by 4) so the grey levels stay in [0, 1]"):
                4 * F.avg_pool2d(x, 2),
            _("that is the block's maximum; the camera model averages the 4 pixels"): F.max_pool2d(x, 2),
        }, "(N, 1, 14, 14)", atol=1e-5)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_accuracy_per_class(fn) -> None:
    """Exercise 5.5: accuracy_per_class(pred, requested) -> (10,) share of each requested digit read right."""
    _require_callable(fn, "accuracy_per_class", "check_accuracy_per_class(accuracy_per_class)")
    from ..conditional import accuracy_per_class

    r = Report("accuracy_per_class")
    g = torch.Generator().manual_seed(52)
    requested = torch.arange(10).repeat_interleave(6)
    noisy = torch.where(torch.rand(60, generator=g) < 0.3, torch.randint(0, 10, (60,), generator=g), requested)
    cases = {_("every digit asked 6 times, some read wrong"): (noisy, requested),
             _("a model that draws only 1s"): (torch.ones(60, dtype=torch.long), requested),
             _("uneven requests (more 7s)"): (torch.tensor([7, 7, 1, 7, 0, 2, 3, 4, 5, 6, 8, 9, 9]),
                                          torch.tensor([7, 7, 7, 7, 0, 2, 3, 4, 5, 6, 8, 9, 1]))}
    for case, (pred, req) in cases.items():
        out, err = call(fn, pred.clone(), req.clone())
        if err:
            r.fail(case, err)
            continue
        ref = accuracy_per_class(pred, req)
        right = torch.bincount(req[pred == req], minlength=10).double()
        read = torch.bincount(pred, minlength=10).double()
        why = compare(out.double() if torch.is_tensor(out) else out, ref, {
            _("that divides by how often each digit was *read* (precision); the question is how often each *requested* "
              "digit came out right: divide by the requests"): right / read.where(read > 0, torch.nan),
            _("that is the count of right answers; divide by how often each digit was requested"): right,
            _("that is the overall accuracy repeated; compute it for each requested digit"):
                (pred == req).double().mean().expand(10),
            _("that counts how often each digit was read, not whether it was the one requested"):
                read / len(pred),
        }, _("(10,), one share per digit"), atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


# --- build exercises: the conditional VAE and "draw me a 7" ---------------------------------------

def _inputs_seen(model, fn):
    """Run fn() while recording the inputs of every Linear, Conv and Embedding layer of `model`."""
    seen, hooks = [], []
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding, nn.Conv2d, nn.ConvTranspose2d)):
            hooks.append(m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0]))))
    try:
        out, err = call(fn)
    finally:
        for h in hooks:
            h.remove()
    return out, err, seen


def _how_label_enters(seen, y, classes: int = 10) -> str | None:
    """'one-hot', 'embedding', 'raw' (the label as one number), or None if not found in any layer input."""
    onehot = torch.nn.functional.one_hot(y, classes).float()
    for mod, inp in seen:
        if isinstance(mod, nn.Embedding) and torch.equal(inp.cpu().long(), y):
            return "embedding"
        if inp.dim() != 2 or len(inp) != len(y):
            continue
        cols = inp.detach().float().cpu().T
        for i in range(len(cols) - classes + 1):
            if torch.equal(cols[i:i + classes].T, onehot):
                return "one-hot"
        if any(torch.allclose(c, y.float()) for c in cols):
            return "raw"
    return None


def _label_error(err: str) -> str:
    if "shapes cannot be multiplied" in err or "size mismatch" in err:
        return (_("{err}. The first Linear layer's input size must be what you concatenate: the flat features (or "
                  "latent_dim) plus 10 one-hot columns").format(err=err))
    return err


def _build_conditional(cls, r: Report):
    """Build ConditionalVAE() and check it is a module with latent_dim; None (and a failure) if not."""
    model, err = call(cls)
    if err:
        r.fail(_("building ConditionalVAE()"), err)
        return None
    d = getattr(model, "latent_dim", None)
    if not isinstance(model, nn.Module) or not isinstance(d, int):
        r.fail(_("building "
                 "ConditionalVAE()"), _("it must be an nn.Module with the attribute latent_dim (keep the "
                                                 "lines given above the solution: super().__init__() and "
                                                 "self.latent_dim = latent_dim)"))
        return None
    return model


def _check_cvae_decode(model, z, y, other, r: Report) -> None:
    """decode(z, y): logits of the right shape that depend on the label, also for batches without 7-9."""
    case = _("decode(z, y) gives logits (B, 1, 28, 28) that depend on the label")
    with torch.no_grad():
        out, err, seen = _inputs_seen(model, lambda: model.decode(z, y))
        if err:
            r.fail(case, _label_error(err))
        elif not torch.is_tensor(out) or tuple(out.shape) != (10, 1, 28, 28):
            r.fail(case, _("expected logits of shape (10, 1, 28, 28), got {got}").format(
                got=tuple(out.shape) if torch.is_tensor(out) else type(out).__name__))
        else:
            how = _how_label_enters(seen, y)
            out2, __ = call(lambda: model.decode(z, other))
            if how == "raw":
                r.fail(case, _("the label enters as one number (7.0), which tells the network that 7 lies between 6 "
                               "and 8; give it as a one-hot vector (10 columns) or an embedding"))
            elif torch.is_tensor(out2) and torch.allclose(out, out2):
                r.fail(case, _("the label is not given to the decoder: decode(z, 3) and decode(z, 8) are the same "
                               "image, so samples ignore the requested class (the classifier would read about 10% of "
                               "them right); concatenate one_hot(y) with z"))
            elif bool((out >= 0).all() and (out <= 1).all()):
                r.fail(case, _("the outputs are all in [0, 1]: decode must return logits (no sigmoid at the end); the "
                               "loss takes logits, and sigmoid is applied when showing samples"))
            else:
                r.ok(case)
        # a batch without the digits 7, 8, 9 must work as well
        case = _("a batch whose labels stop at 6")
        few = torch.tensor([0, 3, 6, 1, 2, 5])
        out, err = call(lambda: model.decode(z[:6], few))
        if err:
            r.fail(case, _("{err}: the one-hot must always have 10 columns, even when the batch holds no 9 "
                           "(F.one_hot(y) alone makes max(y) + 1 columns: pass num_classes=10)").format(err=err))
        else:
            r.ok(case)


def _check_cvae_encode(model, x, y, other, d: int, r: Report) -> str | None:
    """encode(x, y): (mu, logvar) of the right shapes; returns a note if the encoder ignores the label."""
    case = _("encode(x, y) gives mean and log-variance, each (B, latent_dim)")
    note = None
    with torch.no_grad():
        out, err, seen = _inputs_seen(model, lambda: model.encode(x, y))
        if err:
            r.fail(case, _label_error(err))
        elif torch.is_tensor(out):
            r.fail(case, _("return two tensors (mu, logvar), not one of shape {out_shape}: split the last layer's 2 * "
                           "latent_dim outputs with .chunk(2, dim=1)").format(out_shape=tuple(out.shape)))
        elif not isinstance(out, (tuple, list)) or len(out) != 2 or any(
                not torch.is_tensor(t) or tuple(t.shape) != (10, d) for t in out):
            r.fail(case, _("expected (mu, logvar), each of shape (10, {d})").format(d=d))
        elif _how_label_enters(seen, y) == "raw":
            r.fail(case, _("the encoder gets the label as one number; give it a one-hot vector (or an embedding)"))
        else:
            out2, __ = call(lambda: model.encode(x, other))
            if isinstance(out2, (tuple, list)) and all(torch.allclose(a, b) for a, b in zip(out, out2)):
                note = (_("the encoder ignores the label: allowed (only the decoder needs it to draw a requested "
                          "digit), but then z must also describe which digit it is; the chapter's model gives the "
                          "label to both networks"))
            r.ok(case)
    return note


def _check_cvae_forward(model, x, y, r: Report) -> None:
    """forward(x, y): the three outputs the loss needs, decoded from a freshly sampled z."""
    case = _("forward(x, y) returns (logits, mu, logvar) with a sampled z")
    torch.manual_seed(1)
    out, err = call(lambda: model(x, y))
    torch.manual_seed(2)
    again, __ = call(lambda: model(x, y))
    if err:
        r.fail(case, err)
    elif not isinstance(out, (tuple, list)) or len(out) != 3:
        r.fail(case, _("return three things, (logits, mu, logvar): the loss needs all three"))
    elif tuple(out[0].shape) != (10, 1, 28, 28):
        r.fail(case, _("the first output must be the logits (10, 1, 28, 28), got {shape}").format(
            shape=tuple(out[0].shape)))
    elif isinstance(again, (tuple, list)) and torch.allclose(out[0], again[0]):
        r.fail(case, _("forward decodes the same z every time: sample z = mu + sigma * eps (the reparameterisation of "
                       "chapter 02), not the mean"))
    else:
        r.ok(case)


def check_conditional_vae(cls) -> None:
    """Exercise 5.2 (build): ConditionalVAE(latent_dim=16) with encode(x, y) -> (mu, logvar),
    decode(z, y) -> logits (B, 1, 28, 28), forward(x, y) -> (logits, mu, logvar); the label given
    to the decoder (and to the encoder) as a one-hot vector or an embedding."""
    _require_callable(cls, "ConditionalVAE", "check_conditional_vae(ConditionalVAE)")
    r = Report("ConditionalVAE")
    torch.manual_seed(0)
    model = _build_conditional(cls, r)
    if model is None:
        return r.finish()
    d = model.latent_dim
    g = torch.Generator().manual_seed(53)
    x = (torch.rand(10, 1, 28, 28, generator=g) < 0.3).float()
    y = torch.arange(10)
    other = (y + 3) % 10
    z = 2 * torch.randn(10, d, generator=g)
    model.train()
    _check_cvae_decode(model, z, y, other, r)
    note = _check_cvae_encode(model, x, y, other, d, r)
    _check_cvae_forward(model, x, y, r)
    if note:
        r.ok(_("note: {note}").format(note=note))
    return r.finish()


class _ToyConditional(nn.Module):
    """A stand-in conditional model for check_draw: decode(z, y) = z + (y - 4.5) / 3 per pixel, so
    the drawn pixels reveal the noise scale and the label that were used."""

    def __init__(self):
        super().__init__()
        self.latent_dim = 784
        self.scale = nn.Parameter(torch.ones(()))
        self.calls = []

    @staticmethod
    def offset(digit):
        return (float(digit) - 4.5) / 3

    def decode(self, z, y):
        if not torch.is_tensor(y) or y.dim() != 1 or y.dtype.is_floating_point or len(y) != len(z):
            raise ValueError(_("decode(z, labels) takes one integer label per image: a (n,) tensor such as "
                               "torch.full((n,), digit)"))
        self.calls.append(torch.is_grad_enabled())
        return self.scale * z.view(-1, 1, 28, 28) + ((y.float() - 4.5) / 3).view(-1, 1, 1, 1)


def check_draw(fn) -> None:
    """Exercise 5.4 (build): draw(model, digit, n, temperature) -> n images (n, 1, 28, 28) in [0, 1]
    of the requested digit, z ~ N(0, temperature^2 I)."""
    _require_callable(fn, "draw", "check_draw(draw)")
    r = Report("draw")
    n = 64
    for digit, T in ((7, 1.0), (2, 0.5), (9, 0.25)):
        case = _("{n} images of a {digit} at temperature {T}").format(n=n, digit=digit, T=T)
        model = _ToyConditional()
        torch.manual_seed(54)
        out, err = call(fn, model, digit, n, T)
        if err:
            r.fail(case, err)
            continue
        if not torch.is_tensor(out) or tuple(out.shape) != (n, 1, 28, 28):
            r.fail(case, _("expected images of shape ({n}, 1, 28, 28), got {got}").format(
                n=n, got=tuple(out.shape) if torch.is_tensor(out) else type(out).__name__))
            continue
        if out.requires_grad:
            r.fail(case, _("the images still carry gradients: draw under torch.no_grad() (they are for looking at and "
                           "for the classifier, not for training)"))
            continue
        out = out.detach().double()
        if out.min() < 0 or out.max() > 1:
            r.fail(case, _("values outside [0, 1]: decode returns logits; apply torch.sigmoid to get pixel "
                           "probabilities you can show"))
            continue
        logit = torch.logit(out.clamp(1e-12, 1 - 1e-12))
        mean, std, off = logit.mean().item(), logit.std().item(), model.offset(digit)

        def near(a, b, tol=0.06):
            return abs(a - b) <= tol * max(1.0, abs(b))

        if near(mean, off) and near(std, T):
            r.ok(case)
        elif near(mean, off / T) and near(std, 1 / T) and T != 1:
            r.fail(case, _("the temperature divides the logits (as in a softmax); here it scales the code: z = "
                           "temperature * randn, then decode"))
        elif near(std, 1 / T) and T != 1:
            r.fail(case, _("z is divided by the temperature; multiply: z ~ N(0, T^2 I) has standard deviation T"))
        elif near(std, T * T) and T != 1:
            r.fail(case, _("the noise has standard deviation T^2; T is the standard deviation: z = T * randn"))
        elif near(std, 1.0) and T != 1:
            r.fail(case, _("the temperature is ignored: the samples have the prior's spread (T = 1)"))
        elif not near(mean, off):
            r.fail(case, _("these are not images of a {digit}: give decode n labels, all equal to `digit`").format(
                digit=digit))
        else:
            r.fail(case, _("the pixels' spread does not match z ~ N(0, T^2 I) (measured {std:.2f}, expected "
                           "{T})").format(std=std, T=T))
    return r.finish()



def _cvae_step_setup():
    """A small ConditionalVAE with stale gradients (a right step clears them), its copy, SGD and a batch."""
    import copy

    from ..conditional import ConditionalVAE

    g = torch.Generator().manual_seed(55)
    x = (torch.rand(8, 1, 28, 28, generator=g) < 0.3).float()
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 9])
    torch.manual_seed(0)
    model = ConditionalVAE(latent_dim=4, width=4, hidden=16)
    with torch.no_grad():  # a posterior away from the prior, so that the KL term weighs in the loss
        model.to_latent[-1].bias.copy_(torch.rand(8, generator=g) * 2 - 1)
    ref_model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for p in model.parameters():  # left over from an earlier step: a step must clear them first
        p.grad = torch.full_like(p, 50.0)
    return model, ref_model, opt, x, y


def _run_cvae_step(fn, model, opt, x, y, case: str, r: Report):
    """Build the step and run it on (x, y) with seed 1; its dict of losses, or None (and a failure)."""
    step, err = call(fn, model, opt)
    if err or not callable(step):
        r.fail(case, err or _("cvae_step(model, opt) must return the step function (def step(batch): ...)"))
        return None
    torch.manual_seed(1)
    out, err = call(step, (x, y))
    if err:
        if "required positional argument" in err or "unpack" in err:
            err += (_(": the batch is a tuple (images, labels), and the conditional model is called as model(x, y)"))
        r.fail(case, err)
        return None
    if not isinstance(out, dict) or "loss" not in out:
        r.fail(case, _("return a dict of the losses, e.g. {\"loss\": loss, ...}: gh.fit logs it"))
        return None
    return out


def _cvae_reference_step(ref_model, x, y):
    """The right step on the copy (same seed, so the same z): its loss and the typical wrong losses."""
    import torch.nn.functional as F

    from ..losses import bernoulli_nll, gaussian_kl

    torch.manual_seed(1)
    logits, mu, logvar = ref_model(x, y)
    rec, kl = bernoulli_nll(logits, x), gaussian_kl(mu, logvar)
    loss = (rec + kl).mean()
    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=1e-3)
    ref_opt.zero_grad()
    loss.backward()
    ref_opt.step()
    pixel_mean = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).mean(1)
    twice = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)
    wrong = {
        _("the KL term is missing: the negative ELBO is reconstruction + KL"): rec.mean(),
        _("the KL enters with the wrong sign: the negative ELBO is reconstruction + KL"): (rec - kl).mean(),
        _("the reconstruction is averaged over the pixels: sum it over the 784 pixels (nats per image), as in chapter "
          "02, or the KL overwhelms it"): (pixel_mean + kl).mean(),
        _("the losses are summed over the batch: take the mean over the images"): (rec + kl).sum(),
        _("the sigmoid is applied twice: the model returns logits, and binary_cross_entropy_with_logits applies the "
          "sigmoid itself"): (twice + kl).mean(),
    }
    return loss, wrong


def _check_cvae_update(model, ref_model, r: Report) -> None:
    """Compare the student's parameters with one SGD step on the batch loss, naming the usual slips."""
    case = _("the parameters take one optimiser step on that loss")
    lr = 1e-3
    after = [p.detach() for p in model.parameters()]
    before = [q.detach() + lr * q.grad for q in ref_model.parameters()]  # SGD: after = before - lr * grad
    right = [q.detach() for q in ref_model.parameters()]

    def same(a, b):
        return all(torch.allclose(u, v, atol=1e-6) for u, v in zip(a, b))

    if same(after, right):
        r.ok(case)
    elif same(after, before):
        r.fail(case, _("the parameters did not move: after loss.backward(), call opt.step()"))
    elif same(after, [b - lr * 50.0 for b in before]):
        r.fail(case, _("the parameters moved by the old gradients only: call loss.backward() before opt.step()"))
    elif same(after, [q - lr * 50.0 for q in right]):
        r.fail(case, _("the old gradients were not cleared, so they were added to this batch's: call opt.zero_grad() "
                       "before loss.backward()"))
    else:
        r.fail(case, _("the parameters moved differently from one step on this batch's loss: opt.zero_grad(), "
                       "loss.backward(), opt.step(), in that order"))


def check_cvae_step(fn) -> None:
    """Exercise 5.3 (build): cvae_step(model, opt) -> step(batch) for gh.fit: one optimiser step on the
    mean negative ELBO (Bernoulli reconstruction summed over pixels + KL) of a batch (x, y), returning
    {"loss": ..., ...}."""
    _require_callable(fn, "cvae_step", "check_cvae_step(cvae_step)")
    r = Report("cvae_step")
    model, ref_model, opt, x, y = _cvae_step_setup()
    case = _("one step on a batch of 8 images and labels")
    out = _run_cvae_step(fn, model, opt, x, y, case, r)
    if out is None:
        return r.finish()
    loss, wrong = _cvae_reference_step(ref_model, x, y)
    value = float(out["loss"].detach()) if torch.is_tensor(out["loss"]) else float(out["loss"])
    if abs(value - loss.item()) > 1e-4 * max(1.0, abs(loss.item())):
        why = next((w for w, v in wrong.items() if abs(value - v.item()) <= 1e-4 * max(1.0, abs(v.item()))),
                   _("the loss is {value:.3f}, the mean negative ELBO of this batch is {loss:.3f}").format(
                       value=value, loss=loss.item()))
        r.fail(case, why)
        return r.finish()
    r.ok(case)
    _check_cvae_update(model, ref_model, r)
    return r.finish()
