"""Chapter 00's warm-up exercise."""
from __future__ import annotations

import torch

from .framework import Report, call, compare, _require_callable
from ..i18n import N_, _

HINTS = {
    "0.1": (N_("Two things must change: the type (bytes cannot hold 0.5) and the range (the largest byte, white, must "
               "land exactly on 1.0)."),
            N_("Tensors have a method that converts them to float32; after that, ordinary division by the largest byte "
               "value does the rest. Keep the shape.")),
}


def check_to_unit(fn) -> None:
    """Exercise 0.1: to_unit(uint8 images) -> float32 images in [0, 1], same shape."""
    _require_callable(fn, "to_unit", "check_to_unit(to_unit)")
    r = Report("to_unit")
    g = torch.Generator().manual_seed(0)
    cases = {_("a batch of 4 random byte images"): torch.randint(0, 256, (4, 1, 28, 28), generator=g,
                                                             dtype=torch.uint8),
             _("black and white extremes"): torch.tensor([[0, 255], [255, 0]], dtype=torch.uint8)}
    for case, x in cases.items():
        out, err = call(fn, x.clone())
        if err:
            r.fail(case, err)
            continue
        ref = x.float() / 255
        why = compare(out.float() if torch.is_tensor(out) else out, ref, {
            _("divide by 255, the largest byte value, not 256 (white must become exactly 1.0)"):
                x.float() / 256,
            _("integer division (//) rounds everything down to 0 or 1: divide floats with /"):
                (x // 255).float(),
            _("the values are still 0..255: divide by 255"): x.float(),
        }, _("same shape as the input"), atol=1e-6)
        if why is None and out.dtype != torch.float32:
            why = _("the values are right but the dtype is {out_dtype}; use .float() (float32)").format(
                out_dtype=out.dtype)
        r.fail(case, why) if why else r.ok(case)
    return r.finish()
