"""Does the date translator know when it is wrong? Its confidence, measured: the expected
calibration error, a reliability diagram, and the share of wrong answers that carry a warning.

    model, _ = gh.seq2seq.reference_translator()
    report = gh.confidence.calibration(model, gh.seq2seq.reference_data()["test_typed"])
    report.ece, report.wrong_flagged, report.right_flagged
    gh.confidence.reliability_plot(report)

The confidence is the probability the model gives its own answer, p(y | x) = prod_t p(y_t | y_<t, x):
the score of greedy decoding (or of beam search's best beam), the number `gh.translator.translate`
reports. It is calibrated when, among the answers given with probability about p, a share of about
p is right; the expected calibration error (ECE) is the average gap, weighted by how many answers
fall in each bin of probability. `translate` warns when the probability is below UNSURE.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from .i18n import _
from .plot import cjk_fallback
from .runtime import evaluating
from .seq2seq import Seq2Seq, exact_match, predict

# `translate` warns below this probability for its answer: if the probabilities are calibrated (chapter
# 04 measures it), an answer below it is wrong at least one time in 33. A policy set by hand from
# trial runs of the reference model (at 0.95 about a quarter of the wrong typed answers went unwarned):
# higher warns about more right answers, lower lets more wrong ones through; chapter 04 prints both
# shares on the typed test dates.
UNSURE = 0.97
ECE_BINS = 15  # equal-width bins of probability (torchmetrics' default)
# The bars chapter 04 checks in full mode, on the typed test dates: the probabilities are calibrated
# (ECE at most ECE_BAR) and the warning catches most wrong answers (at least FLAGGED_BAR of them).
ECE_BAR = 0.05
FLAGGED_BAR = 0.9


def expected_calibration_error(prob, correct, n_bins: int = ECE_BINS) -> float:
    """ECE = sum over bins of (share of answers in the bin) x |accuracy - mean probability|, with
    torchmetrics' `binary_calibration_error` (L1 norm)."""
    from torchmetrics.functional.classification import binary_calibration_error  # slow to import

    prob = torch.as_tensor(prob, dtype=torch.float32).cpu()
    correct = torch.as_tensor(correct).cpu().long()
    if prob.numel() == 0:
        raise ValueError(_("no answers to measure: give at least one probability and its correctness"))
    return float(binary_calibration_error(prob.clamp(0, 1), correct, n_bins=n_bins, norm="l1"))


@dataclass
class Calibration:
    """The model's probability for each answer and whether the answer is right."""

    prob: torch.Tensor  # (N,) probability of the model's answer
    correct: torch.Tensor  # (N,) bool: exact match
    threshold: float = UNSURE  # answers below it carry a warning
    pred: torch.Tensor | None = None  # (N, L) the answers' symbol ids

    @property
    def exact_match(self) -> float:
        return self.correct.float().mean().item()

    @property
    def flagged(self) -> torch.Tensor:
        return self.prob < self.threshold

    @property
    def n_wrong(self) -> int:
        return int((~self.correct).sum())

    @property
    def wrong_flagged(self) -> float:
        """Share of the wrong answers that carry a warning (NaN when no answer is wrong)."""
        return self.flagged[~self.correct].float().mean().item() if self.n_wrong else float("nan")

    @property
    def right_flagged(self) -> float:
        """Share of the right answers that carry a warning anyway (the price of the warning)."""
        return self.flagged[self.correct].float().mean().item() if bool(self.correct.any()) else float("nan")

    @property
    def ece(self) -> float:
        return expected_calibration_error(self.prob, self.correct)

    def bins(self, n_bins: int = ECE_BINS) -> list:
        """Per non-empty bin of probability: (mean probability, accuracy, number of answers)."""
        edges = torch.linspace(0, 1, n_bins + 1)
        which = torch.bucketize(self.prob.clamp(0, 1), edges[1:-1], right=True)
        return [(self.prob[which == b].mean().item(), self.correct[which == b].float().mean().item(),
                 int((which == b).sum())) for b in range(n_bins) if bool((which == b).any())]


@torch.no_grad()
def calibration(model: Seq2Seq, data: tuple, beam: int = 1, threshold: float = UNSURE) -> Calibration:
    """Translate every (src, lengths, tgt) row and keep each answer's probability and correctness."""
    src, lengths, tgt = data
    with evaluating(model):
        pred, score = predict(model, src, lengths, beam, max_len=tgt.size(1), with_score=True)
    return Calibration(score.exp().float().cpu(), exact_match(pred, tgt).cpu(), threshold, pred.cpu())


def reliability_plot(report: Calibration, axes=None, title: str = ""):
    """Left: accuracy against probability per bin (a calibrated model sits on the diagonal), the
    number of answers written at each point. Right: how many right and wrong answers get each
    probability (log scale), and the warning threshold. Its words are in the course's language."""
    cjk_fallback()  # Chinese labels need the CJK font
    if axes is None:
        __, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    ax = axes[0]
    conf, acc, count = map(np.array, zip(*report.bins()))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label=_("calibrated"))
    ax.scatter(conf, acc, s=20 + 80 * np.log10(count) / max(np.log10(count.max()), 1), zorder=3,
               label=_("one bin of answers"))
    for c, a, n in zip(conf, acc, count):
        ax.annotate(f"{n:,}", (c, a), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(xlim=(0, 1.02), ylim=(0, 1.05), xlabel=_("probability of the answer"), ylabel=_("share right"),
           title=_("reliability: ECE {ece:.4f}").format(ece=report.ece))
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    edges = np.linspace(0, 1, 41)
    ax.hist(report.prob[report.correct].numpy(), bins=edges, log=True, alpha=0.7, label=_("right answers"))
    ax.hist(report.prob[~report.correct].numpy(), bins=edges, log=True, alpha=0.8, label=_("wrong answers"))
    ax.axvline(report.threshold, color="black", lw=1, ls=":",
               label=_("warning below {threshold}").format(threshold=report.threshold))
    ax.set(xlabel=_("probability of the answer"), ylabel=_("answers (log scale)"),
           title=_("{wrong:.0%} of wrong answers warned, {right:.1%} of right ones").format(
               wrong=report.wrong_flagged, right=report.right_flagged))
    ax.legend(loc="best", fontsize=8)  # where the bars sit differs between a short and a long run
    if title:
        axes[0].figure.suptitle(title)
    return axes
