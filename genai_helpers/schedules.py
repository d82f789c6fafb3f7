"""Learning-rate schedules that live inside a step function (the loop knows nothing of them)."""
from __future__ import annotations

from .i18n import _


class LinearDecay:
    """Call once per step: learning rates stay at their start values, then fall linearly to 0
    over the last `fraction` of `total_steps` (fraction 0: they stay; the schedule only counts).

    The step count is read once from the first optimiser's state (Adam keeps one), so a run
    resumed from a checkpoint continues the schedule where it stopped.
    """

    def __init__(self, optimizers, total_steps: int, fraction: float = 0.5):
        if not 0 <= fraction <= 1 or total_steps < 1:
            raise ValueError(_("need 0 <= fraction <= 1 and total_steps >= 1, got {fraction}, {total_steps}").format(
                fraction=fraction, total_steps=total_steps))
        self.opts = list(optimizers)
        self.base = [[g["lr"] for g in o.param_groups] for o in self.opts]
        self.total, self.fraction = total_steps, fraction
        self.done: int | None = None  # steps taken, read from the optimiser at the first call

    def __call__(self) -> float:
        if self.done is None:
            self.done = int(next(iter(self.opts[0].state.values()), {}).get("step", 0))
        self.done += 1
        if not self.fraction:
            return 1.0
        f = min(1.0, max(0.0, (self.total - self.done) / (self.fraction * self.total)))
        for o, lrs in zip(self.opts, self.base):
            for g, lr in zip(o.param_groups, lrs):
                g["lr"] = lr * f
        return f
