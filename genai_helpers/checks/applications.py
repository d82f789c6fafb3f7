"""Chapter 05's exercises: conditioning, repair and its measures."""
from __future__ import annotations

import torch

from .framework import Report, call, compare, _require_callable


def check_one_hot(fn) -> None:
    """Exercise 5.1: one_hot(labels) -> (N, 10) float rows, a 1 in each label's column."""
    _require_callable(fn, "one_hot", "check_one_hot(one_hot)")
    r = Report("one_hot")
    cases = {"the digits 0..9 in order": torch.arange(10),
             "a batch of 7s and 3s (labels that never reach 9)": torch.tensor([7, 7, 3, 0, 3]),
             "a single label": torch.tensor([4])}
    for case, y in cases.items():
        out, err = call(fn, y.clone())
        if err:
            r.fail(case, err)
            continue
        ref = torch.nn.functional.one_hot(y, 10).float()
        why = compare(out.float() if torch.is_tensor(out) else out, ref, {
            "the number of columns is the number of classes (10), not the largest label + 1: "
            "pass num_classes=10": torch.nn.functional.one_hot(y).float(),
            "the 1 is one column off: digit d goes in column d (columns count from 0)":
                torch.nn.functional.one_hot((y + 1) % 10, 10).float(),
            "return one row per label (N, 10), not one column per label": ref.T,
            "return the one-hot rows, not the labels themselves": y.float(),
        }, "(N, 10), one row per label", atol=1e-6)
        if why is None and not out.dtype.is_floating_point:
            why = (f"the values are right but the dtype is {out.dtype}: the network concatenates it "
                   "with float features, so return .float()")
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def _masked_cases():
    g = torch.Generator().manual_seed(50)
    square = torch.zeros(3, 1, 6, 6, dtype=torch.bool)
    square[:, :, 1:4, 2:5] = True
    return {"a 3x3 square hidden in 6x6 images": square,
            "random pixels hidden (about half)": torch.rand(4, 1, 5, 5, generator=g) < 0.5}, g


def check_keep_observed(fn) -> None:
    """Exercise 5.3: keep_observed(guess, observed, mask): guess where mask is True, observed elsewhere."""
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
            "the mask is True where a pixel is *missing*: take the guess there, the observation elsewhere":
                torch.where(mask, observed, guess),
            "the observed pixels are lost: outside the mask the result must be the observation, not 0":
                guess * m,
            "the observed pixels are lost: outside the mask the result must be the observation, not "
            "the model's guess": guess,
            "the observation under the mask is unknown (junk): don't add it, multiply it by ~mask":
                guess * m + observed,
            "that blends the two everywhere: keep the observation exactly where it is known":
                (guess + observed) / 2,
        }, "the same shape as the images", atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_masked_psnr(fn) -> None:
    """Exercise 5.4: masked_psnr(restored, target, mask) -> PSNR per image in dB over the masked pixels."""
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
            "that averages the error over all pixels; the known pixels are right by construction and "
            "would flatter the repair: average over the masked pixels only": 10 * torch.log10(1 / err2.mean(1)),
            "divide the masked squared error by the number of masked pixels, not by all pixels":
                10 * torch.log10(1 / ((err2 * m).sum(1) / m.shape[1])),
            "PSNR is 10 log10(1 / MSE) with the *mean* squared error; 20 log10 goes with the root mean "
            "square": 20 * torch.log10(1 / mse),
            "use log10 (decibels), not the natural log": 10 * torch.log(1 / mse),
            "the sign is flipped: a smaller error must give a *larger* PSNR": 10 * torch.log10(mse),
            "return one PSNR per image (N,), not the batch average": 10 * torch.log10(1 / mse).mean(),
        }, "one PSNR per image, shape (N,)", atol=1e-3)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_downsample(fn) -> None:
    """Exercise 5.5: downsample(x) -> (N, 1, 14, 14), each pixel the mean of a 2x2 block."""
    _require_callable(fn, "downsample", "check_downsample(downsample)")
    import torch.nn.functional as F

    r = Report("downsample")
    g = torch.Generator().manual_seed(51)
    cases = {"random 28x28 images": torch.rand(3, 1, 28, 28, generator=g),
             "one image with a bright 2x2 block at (2, 4)": torch.zeros(1, 1, 28, 28).index_put_(
                 (torch.tensor([0]), torch.tensor([0]), torch.tensor([2]), torch.tensor([4])), torch.tensor(1.0))}
    for case, x in cases.items():
        out, err = call(fn, x.clone())
        if err:
            r.fail(case, err)
            continue
        why = compare(out, F.avg_pool2d(x, 2), {
            "that keeps every other pixel and throws away three of four: average each 2x2 block":
                x[..., ::2, ::2],
            "that is the block's sum; average it (divide by 4) so the grey levels stay in [0, 1]":
                4 * F.avg_pool2d(x, 2),
            "that is the block's maximum; the camera model averages the 4 pixels": F.max_pool2d(x, 2),
        }, "(N, 1, 14, 14)", atol=1e-5)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()


def check_accuracy_per_class(fn) -> None:
    """Exercise 5.2: accuracy_per_class(pred, requested) -> (10,) share of each requested digit read right."""
    _require_callable(fn, "accuracy_per_class", "check_accuracy_per_class(accuracy_per_class)")
    from ..conditional import accuracy_per_class

    r = Report("accuracy_per_class")
    g = torch.Generator().manual_seed(52)
    requested = torch.arange(10).repeat_interleave(6)
    noisy = torch.where(torch.rand(60, generator=g) < 0.3, torch.randint(0, 10, (60,), generator=g), requested)
    cases = {"every digit asked 6 times, some read wrong": (noisy, requested),
             "a model that draws only 1s": (torch.ones(60, dtype=torch.long), requested),
             "uneven requests (more 7s)": (torch.tensor([7, 7, 1, 7, 0, 2, 3, 4, 5, 6, 8, 9, 9]),
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
            "that divides by how often each digit was *read* (precision); the question is how often each "
            "*requested* digit came out right: divide by the requests": right / read.where(read > 0, torch.nan),
            "that is the count of right answers; divide by how often each digit was requested": right,
            "that is the overall accuracy repeated; compute it for each requested digit":
                (pred == req).double().mean().expand(10),
            "that counts how often each digit was read, not whether it was the one requested":
                read / len(pred),
        }, "(10,), one share per digit", atol=1e-6)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()
