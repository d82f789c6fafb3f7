"""Training that explains itself: a watcher that recognises the usual failures of generative
models in a run's logged numbers and says, in plain words, what is happening and what to try.

`Diagnostics` is fed what a training loop already has: each step's losses (`after_step`), each
evaluation's metrics (`after_eval`) and the end of the run (`at_end`). Each method returns the
diagnoses that START there (a `Diagnosis`: kind, step, message), and those whose condition
CLEARED there (the same `Diagnosis`, now with `recovered`: the step it cleared at; a state that
comes back after that starts a new one). A kind is reported once per episode. `gh.fit` creates one
(turn it off with `fit(..., diagnose=False)`), shows the diagnoses in its progress bar, lists them
in its closing report (⚠ open, ✓ recovered) and keeps them in `History.diagnoses`.

What it reads (all optional; a detector whose signal is absent stays silent):
- steps: `loss` (divergence, oscillation), any `X` that an evaluation also reports on held-out
  data as `test_X` / `val_X` (overfitting's training side: like is compared with like), `kl_active` (share of
  latent dimensions with a batch-mean KL above `KL_ACTIVE_NATS`, logged by `gh.vae.vae_step`) or
  `kl` (nats per example, summed over dimensions) with a reconstruction term, `D(x)` / `D(G(z))`
  (mean discriminator outputs on real and fake, logged by `gh.gan`'s steps; `d_real` / `d_fake`
  also work) or `loss_D`, and `loss_G`;
- evaluations: held-out losses (`test_...`, `val_...`), `modes` (the ring monitor's covered
  modes), `class_shares` / `min_class_share` (the MNIST monitor's classifier shares), `variety`
  (mean pairwise distance of samples relative to the data's, see `variety`).
A `monitor` (gh.gan.RingMonitor or gh.gan.MnistMonitor) may be given: the watcher then names the
missing modes or digits, and reads an MNIST monitor's records, which fit does not see.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch

from .i18n import LANGUAGES, N_, _

# --- thresholds: each with the reason for its value -------------------------------------------

# A latent dimension whose KL(q(z_i|x) || N(0, 1)), averaged over a batch, is under 0.01 nats
# carries (almost) no information about x: the "active units" cut-off of Burda et al. (2016).
KL_ACTIVE_NATS = 0.01
# Posterior collapse when at least this share of the dimensions is inactive. Healthy MNIST VAEs
# leave a few of 16 dimensions unused (the data need fewer), so "some inactive" is normal; when
# three quarters are silent the decoder works from (almost) no code at all.
COLLAPSE_INACTIVE_SHARE = 0.75
# ... at every one of at least COLLAPSE_STEPS steps in a row (a few batches are noise) ...
COLLAPSE_STEPS = 50
# ... and only once training is past COLLAPSE_WARMUP steps, or when the run ENDS collapsed. VAEs
# often pass through a collapse early: the KL term pulls q(z|x) onto the prior before the decoder
# has learnt to use z, then the code comes back (the "lagging inference network" of He et al.
# 2019). Chapter 05's conditional VAE in fp32 has all 16 dimensions inactive from step 34 to 125
# (KL 0.015-0.02 nats in all) and all 16 active from step 143 on (in bf16 the dip lasts 31 steps);
# chapter 02's reference VAE dips for 30-odd steps around step 40. Calling that a failure would
# alarm students about healthy runs, so a collapse counts once it outlasts twice the longest such
# transient measured, or if the model is still collapsed when training ends (the model a student
# will use). The article's mean-MSE VAE is collapsed from step 1 on: reported at step 300, or at
# the end of a shorter run (quick mode).
COLLAPSE_WARMUP = 300
# Without per-dimension KL: a total KL under 0.05 nats per example (5 dims' worth of the cut-off)
# means the encoder's output is (almost) the prior for every input, i.e. every dimension collapsed.
COLLAPSE_TOTAL_KL = 0.05
# Per-step detectors look at means over this many steps (single steps are noisy), and wait until
# that many steps are logged: the first steps of any run are transients (random weights).
WINDOW = 30
# ... and are evaluated every CHECK_EVERY steps, which keeps the watcher's cost negligible.
CHECK_EVERY = 10
# Recovery: a reported state (posterior collapse, a winning discriminator, lost modes, no variety)
# is marked recovered when its condition is absent at RECOVER_STEPS steps in a row or at
# RECOVER_EVALS evaluations in a row, as of the first of them. One good batch or one good
# evaluation is noise; as many as it takes to see a problem is not.
RECOVER_STEPS = WINDOW
RECOVER_EVALS = 2

# The discriminator wins: on average over a stretch of D_WINS_STEPS steps it scores real data above
# 0.9 and fakes below 0.1 (its loss under 2 * -log(0.9) = 0.21 nats), and G's loss stopped
# falling. At the equilibrium both are 0.5; a healthy GAN passes through such scores briefly at
# the start, not for 100 consecutive steps.
D_REAL_HIGH = 0.9
D_FAKE_LOW = 0.1
D_WINS_LOSS = 2 * -math.log(D_REAL_HIGH)
D_WINS_STEPS = 100

# Mode collapse: a mode counts as lost when it was covered at an earlier evaluation and is not
# now, for MODE_PERSIST evaluations in a row (modes come and go for one evaluation while a
# healthy GAN's samples slide around the ring, chapter 03). At least MODE_LOST_MIN must be lost.
MODE_PERSIST = 2
MODE_LOST_MIN = 1
# A digit is covered when it gets at least a fifth of its fair share of the samples (1/10 / 5),
# the same rule as the ring's modes (gh.metrics.mode_coverage).
DIGIT_SHARE_FLOOR = 0.02
# Floor: at the end of training, fewer than half of the modes covered at the last two evaluations
# while at least half of the samples are already high quality (sharp points on some modes) is
# mode collapse even if the others were never covered (a 16-D ring GAN stuck on 3 of 8). Without
# the quality condition, an undertrained run (quick mode: 0/8 modes, 0% high quality) would count.
MODE_FLOOR_SHARE = 0.5
MODE_FLOOR_QUALITY = 0.5

# No variety: samples' mean pairwise distance under a fifth of the data's, for two evaluations
# in a row, after it had been at least twice as high ("stopped producing variety": an undertrained
# model, e.g. the reference VAE after 120 quick steps at 0.11, has not started yet, and a VAE that
# never had any is reported as posterior collapse). A generator stuck on one point or one mode,
# or a decoder that ignores z, falls to a few percent.
VARIETY_FLOOR = 0.2
VARIETY_DROP = 0.5
VARIETY_PERSIST = 2

# Divergence: the loss's block means (blocks of BLOCK steps) rose DIVERGE_BLOCKS times in a row,
# by DIVERGE_RISE of their level in all. Noise makes two or three rises in a row common; five
# rises adding up to +50% is a trend.
BLOCK = 10
DIVERGE_BLOCKS = 5
DIVERGE_RISE = 0.5
# Held-out losses: rising at DIVERGE_EVALS evaluations in a row together with the same quantity on
# training data AND the loss the steps optimise (`loss`): a quantity the model does not optimise
# may rise while training goes well (chapter 02's autoencoder, beta = 0: its -ELBO grows with the
# KL of codes that nothing holds back, while its reconstruction loss falls).
DIVERGE_EVALS = 3
# Oscillation: over the last OSC_BLOCKS block means, the direction changes at least OSC_TURNS
# times and the mean jump is over OSC_AMPLITUDE of the level. Plateau noise also changes direction
# but by a few percent; a learning rate too high for the curvature bounces by tens of percent.
OSC_BLOCKS = 9
OSC_TURNS = 6
OSC_AMPLITUDE = 0.25
# Neither trend is judged once the loss's block mean is below SOLVED_SHARE of the run's first
# block: a loss that fell that far has learned most of what it can, and its bounces are batch noise
# that is large only relative to a tiny level (chapter 04's translator at 0.002 from 3.7, its
# batches grouped by input length), not a learning rate too high for the curvature, which keeps
# the loss from falling that far in the first place.
SOLVED_SHARE = 0.05
# A spike before a NaN: a logged value over SPIKE_FACTOR times the median of the run's preceding
# values in the last SPIKE_LOOKBACK steps before the loss stopped being finite.
SPIKE_FACTOR = 5.0
SPIKE_LOOKBACK = 20

# Overfitting compares like with like: a held-out quantity (`test_X`, `val_X`, ...) with the SAME
# quantity on training data: `train_X` in the same evaluation, else the mean of the `X` the steps
# logged since the last evaluation; never with a training loss of another name (chapter 02's
# autoencoder trains on reconstruction alone, while its held-out -ELBO adds a KL term). It is
# overfitting when the gap (held-out minus training) grew at OVERFIT_EVALS evaluations in a row,
# by OVERFIT_GROWTH of the held-out value in all, the held-out value is above its best, and the
# training value fell at each of them (a model getting worse on its training data too is not
# memorising it). Gaps wobble by a percent from one evaluation to the next; three growths adding
# up to 2% is a trend.
OVERFIT_EVALS = 3
OVERFIT_GROWTH = 0.02

TITLES = {  # kind -> its title (shown with `_()`, in the language of the moment)
    "posterior_collapse": N_("posterior collapse"),
    "discriminator_wins": N_("the discriminator wins"),
    "mode_collapse": N_("mode collapse"),
    "divergence": N_("divergence"),
    "instability": N_("unstable loss"),
    "overfitting": N_("overfitting"),
    "no_variety": N_("no variety"),
}
# What a mode-collapse message counts: the ring's modes, or MNIST's digits (a monitor's classes).
COUNTED = {"modes": N_("modes"), "digits": N_("digits")}

_HELD_OUT = ("test_", "val_", "valid_", "validation_", "held_out_", "heldout_")
_NOT_LOSSES = ("acc", "accuracy", "bleu", "match", "exact", "chars", "score", "share", "modes",
               "quality", "variety", "inception", "precision", "recall")


NO_DIAGNOSIS = N_("no diagnosis: fit saw none of the failures it watches for")
# How fit says that it stopped because a loss was NaN or inf (`History.stopped`, written by
# `gh.train`); `at_end` recognises it in any language of the course (`stopped_not_finite`).
NOT_FINITE = N_("the loss is not finite at step {step} ({detail})")


def title(kind: str) -> str:
    """The title of a diagnosis kind, in the current language (an unknown kind: itself)."""
    return _(TITLES[kind]) if kind in TITLES else kind


def _template(message: str) -> re.Pattern:
    """A message with placeholders as a pattern that matches what it formats to (from the start)."""
    return re.compile(".*?".join(re.escape(part) for part in re.split(r"\{[^{}]*\}", message)), re.S)


def stopped_not_finite(stopped: str | None) -> bool:
    """Whether a run stopped because a loss was not finite (NOT_FINITE, in whichever language the
    run was in: a History saved in Chinese may be diagnosed again in English)."""
    return bool(stopped) and any(_template(_(NOT_FINITE, lang)).match(stopped) for lang in LANGUAGES)


@dataclass
class Diagnosis:
    """One diagnosis: what (`kind`, a key of TITLES), from which step, what to try, and the step
    where its condition cleared (`recovered`, None while it lasts)."""

    kind: str
    step: int
    message: str
    recovered: int | None = None

    @property
    def title(self) -> str:
        return title(self.kind)

    def __str__(self) -> str:
        if self.recovered is not None:
            return _("✓ {title}, recovered (from step {step} to step {recovered}): {message}").format(
                title=self.title, step=self.step, recovered=self.recovered, message=self.message)
        return _("⚠ {title} (from step {step}): {message}").format(
            title=self.title, step=self.step, message=self.message)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Diagnosis":
        return cls(d["kind"], int(d["step"]), d["message"], d.get("recovered"))


def variety(samples: torch.Tensor, data: torch.Tensor, n: int = 256) -> float:
    """Mean pairwise distance of up to n samples over that of up to n data points (rows
    flattened): about 1 for samples as varied as the data, near 0 for near-identical samples."""
    def spread(x):
        x = x[:n].detach().float().flatten(1).cpu()
        return torch.pdist(x).mean().item() if len(x) > 1 else 0.0

    ref = spread(data)
    return spread(samples) / ref if ref > 0 else 0.0


def _mean(xs) -> float:
    return sum(xs) / len(xs)


class Diagnostics:
    """Watches a run; `after_step`, `after_eval` and `at_end` return the diagnoses that start or
    recover there.

    seen: kinds already reported (e.g. from a resumed History), which are not reported again.
    monitor: a RingMonitor or MnistMonitor, for the names of missing modes or digits.
    """

    def __init__(self, monitor=None, seen=()):
        self.monitor = monitor
        self.found: list[Diagnosis] = []
        self.kinds = set(seen)
        self.reported: dict[str, Diagnosis] = {}  # kind -> its latest diagnosis (may recover)
        self.clearing: dict[str, tuple] = {}  # kind -> (first step, count) of its condition's absence
        self.collapse: tuple | None = None  # (first step, length) of the current collapsed stretch
        self.log: dict[str, list] = {}  # per-step values
        self.steps: list[int] = []
        self.evals: list[dict] = []
        self.covered: dict[str, set] = {}  # "modes"/"digits" -> ever covered
        self.lost_streak: dict[str, int] = {}
        self.low_variety = 0
        self.monitor_step = 0  # last MNIST monitor record read
        self.train_since_eval: dict[str, list] = {}  # per-step values since the last evaluation

    # --- the three entry points ---------------------------------------------------------------

    def after_step(self, step: int, losses: dict) -> list[Diagnosis]:
        out: list[Diagnosis] = []
        self.steps.append(step)
        for k, v in losses.items():
            self.log.setdefault(k, []).append(float(v))
            self.train_since_eval.setdefault(k, []).append(float(v))
        out += self._track_collapse(step, losses) + self._track_discriminator(step, losses)
        records = getattr(self.monitor, "records", None)
        if records and isinstance(records[-1], dict) and records[-1].get("step", 0) > self.monitor_step:
            rec = records[-1]
            self.monitor_step = rec["step"]
            out += self.after_eval(rec["step"], rec, _from_monitor=True)
        if len(self.steps) >= WINDOW and len(self.steps) % CHECK_EVERY == 0:
            out += self._posterior_collapse(step) + self._discriminator_wins(step)
            out += self._loss_trend(step)
        return out

    def after_eval(self, step: int, metrics: dict, _from_monitor: bool = False) -> list[Diagnosis]:
        out: list[Diagnosis] = []
        m = dict(metrics)
        if not _from_monitor:
            for k, v in self.train_since_eval.items():  # the training side of each held-out X
                if v:
                    m.setdefault(f"_train_{k}", _mean(v))
            self.train_since_eval = {}
        m["_step"] = step
        snaps = getattr(self.monitor, "snapshots", None)  # a RingMonitor: variety of its samples
        if "variety" not in m and "modes" in m and snaps and "samples" in snaps[-1]:
            x, centres = snaps[-1]["samples"], self.monitor.centres
            m["variety"] = variety(x, centres[torch.arange(min(len(x), 256)) % len(centres)])
        self.evals.append(m)
        out += self._mode_collapse(step, m) + self._no_variety(step, m)
        if not _from_monitor:
            out += self._overfitting(step) + self._eval_divergence(step)
        return out

    def at_end(self, step: int, stopped: str | None = None) -> list[Diagnosis]:
        out: list[Diagnosis] = []
        if stopped_not_finite(stopped):
            out += self._nan(step)
        out += self._mode_floor(step) + self._posterior_collapse(step, end=True)
        return out

    # --- helpers ------------------------------------------------------------------------------

    def _new(self, kind: str, step: int, message: str) -> list[Diagnosis]:
        """A diagnosis that starts at `step`: new, or back after it had recovered (a new episode,
        only when the evidence for it begins after the recovery)."""
        last = self.reported.get(kind)
        back = last is not None and last.recovered is not None and step >= last.recovered
        if kind in self.kinds and not back:
            return []
        self.kinds.add(kind)
        d = self.reported[kind] = Diagnosis(kind, int(step), message)
        self.found.append(d)
        return [d]

    def _settle(self, kind: str, cleared: bool, at: int, need: int = 1) -> list[Diagnosis]:
        """Count a reported state's condition as absent (`cleared`) at step `at`, or present; after
        `need` absences in a row, it is recovered as of the first of them."""
        d = self.reported.get(kind)
        if d is None or d.recovered is not None:
            return []
        if not cleared:
            self.clearing.pop(kind, None)
            return []
        first, n = self.clearing.get(kind, (at, 0))
        self.clearing[kind] = (first, n + 1)
        if n + 1 < need:
            return []
        del self.clearing[kind]
        d.recovered = int(first)
        return [d]

    def _window(self, key: str, n: int = WINDOW):
        v = self.log.get(key)
        return v[-n:] if v is not None and len(v) >= n else None

    def _step_at(self, back: int) -> int:
        return self.steps[max(0, len(self.steps) - back)]

    # --- detectors on steps -------------------------------------------------------------------

    def _track_collapse(self, step, losses) -> list[Diagnosis]:
        """Follow the collapsed stretch step by step (a VAE's step logs `kl_active`, or `kl` with a
        reconstruction term); a reported collapse recovers after RECOVER_STEPS steps without it."""
        if "kl_active" in losses:
            collapsed = 1 - float(losses["kl_active"]) >= COLLAPSE_INACTIVE_SHARE
        elif "kl" in losses and any(k in losses for k in ("reconstruction", "rec", "recon")):
            collapsed = float(losses["kl"]) < COLLAPSE_TOTAL_KL
        else:
            return []
        if collapsed:
            since, n = self.collapse or (step, 0)
            self.collapse = (since, n + 1)
        else:
            self.collapse = None
        return self._settle("posterior_collapse", not collapsed, step, RECOVER_STEPS)

    def _posterior_collapse(self, step, end: bool = False) -> list[Diagnosis]:
        if self.collapse is None or self.collapse[1] < COLLAPSE_STEPS or not (end or step >= COLLAPSE_WARMUP):
            return []
        since, n = self.collapse
        if "kl_active" in self.log:
            inactive = 1 - max(self.log["kl_active"][-n:])
            share = (_("all the latent dimensions are inactive") if inactive >= 1 else
                     _("at least {share:.0%} of the latent dimensions are inactive").format(share=inactive))
        else:
            kl = _mean(self.log["kl"][-n:])
            share = _("the KL term is {kl:.2g} nats per example: (almost) all latent dimensions are inactive").format(
                kl=kl)
        return self._new("posterior_collapse", since, _(
            "{share} (KL under {cutoff} nats each) at every one of the {n} steps since step {since}{end}: the "
            "encoder says the same thing for every input and the decoder ignores z, so samples will not vary "
            "with z. Usual causes: a reconstruction term averaged over pixels instead of summed (the "
            "article's mean-MSE loss, ERRATA 5: it is 784 times too weak against the KL), a too-strong "
            "KL weight (beta > 1, or no KL warm-up), a decoder powerful enough to ignore z. Try: sum the "
            "reconstruction over pixels (gh.losses.bernoulli_nll), beta = 1 or a warm-up from 0.").format(
            share=share, cutoff=KL_ACTIVE_NATS, n=n, since=since, end=_(" (the end of training)") if end else ""))

    def _track_discriminator(self, step, losses) -> list[Diagnosis]:
        """A reported winning discriminator recovers after RECOVER_STEPS steps in a row at which it
        did not win (its scores, or its loss, on the wrong side of the thresholds)."""
        real = next((losses[k] for k in ("D(x)", "d_real") if k in losses), None)
        fake = next((losses[k] for k in ("D(G(z))", "d_fake") if k in losses), None)
        if real is not None and fake is not None:
            wins = float(real) > D_REAL_HIGH and float(fake) < D_FAKE_LOW
        elif "loss_D" in losses:
            wins = float(losses["loss_D"]) < D_WINS_LOSS
        else:
            return []
        return self._settle("discriminator_wins", not wins, step, RECOVER_STEPS)

    def _d_verdict(self, n: int):
        """(whether D won on average over the last n steps, its scores in words), or None without
        the signal: D(x) and D(G(z)) (or d_real and d_fake), else D's loss."""
        real = self._window("D(x)", n) or self._window("d_real", n)
        fake = self._window("D(G(z))", n) or self._window("d_fake", n)
        if real is not None and fake is not None:
            return (_mean(real) > D_REAL_HIGH and _mean(fake) < D_FAKE_LOW,
                    _("D(x) = {real:.2f} on real data and D(G(z)) = {fake:.3f} on fakes").format(
                        real=_mean(real), fake=_mean(fake)))
        loss_d = self._window("loss_D", n)
        if loss_d is None:
            return None
        return (_mean(loss_d) < D_WINS_LOSS,
                _("D's loss is {loss:.3f} nats (it tells real from fake almost perfectly)").format(loss=_mean(loss_d)))

    def _discriminator_wins(self, step) -> list[Diagnosis]:
        n = D_WINS_STEPS
        verdict = self._d_verdict(n)
        if verdict is None or not verdict[0]:
            return []
        scores = verdict[1]
        loss_g = self._window("loss_G", n)
        if loss_g is not None and _mean(loss_g[n // 2:]) < _mean(loss_g[:n // 2]) - 0.01 * abs(_mean(loss_g)):
            return []  # G is catching up
        climbs = _(", while G's loss climbs or stays high") if loss_g is not None else ""
        return self._new("discriminator_wins", self._step_at(n), _(
            "over the {n} steps from step {first} to step {step}, {scores}{climbs}: the discriminator wins and G "
            "gets almost no useful gradient (its samples stop improving). Try: the non-saturating generator loss "
            "-log D(G(z)) (ERRATA 11), update G at every step (never only when D is fooled: the "
            "article's flowchart, ERRATA 3), fewer D steps per G step, a lower learning rate for D, "
            "one-sided label smoothing (real labels 0.9), dropout or noise in D.").format(
            n=n, first=self._step_at(n), step=step, scores=scores, climbs=climbs))

    def _blocks(self, key: str) -> list[float]:
        v = self.log.get(key, [])
        return [_mean(v[i:i + BLOCK]) for i in range(0, len(v) - len(v) % BLOCK, BLOCK)]

    def _loss_trend(self, step) -> list[Diagnosis]:
        if "loss" not in self.log or len(self.log["loss"]) % BLOCK:
            return []
        b = self._blocks("loss")
        if abs(b[-1]) < SOLVED_SHARE * abs(b[0]):
            return []
        out: list[Diagnosis] = []
        last = b[-DIVERGE_BLOCKS - 1:]
        if (len(last) == DIVERGE_BLOCKS + 1 and all(y > x for x, y in zip(last, last[1:]))
                and last[-1] - last[0] > DIVERGE_RISE * max(abs(last[0]), 1e-8)):
            out += self._new("divergence", self._step_at(BLOCK * (DIVERGE_BLOCKS + 1)), _(
                "the training loss rose over the last {n} steps, from {first:.4g} to {last:.4g}: training is "
                "diverging. Try: a lower learning rate (divide it by 3 to 10), gradient clipping "
                "(torch.nn.utils.clip_grad_norm_), check the loss's sign and that the optimiser steps the right "
                "parameters.").format(n=BLOCK * DIVERGE_BLOCKS, first=last[0], last=last[-1]))
        last = b[-OSC_BLOCKS:]
        if len(last) == OSC_BLOCKS:
            d = [y - x for x, y in zip(last, last[1:])]
            turns = sum(1 for x, y in zip(d, d[1:]) if x * y < 0)
            level = _mean([abs(x) for x in last])
            if turns >= OSC_TURNS and _mean([abs(x) for x in d]) > OSC_AMPLITUDE * max(level, 1e-8):
                out += self._new("instability", self._step_at(BLOCK * OSC_BLOCKS), _(
                    "the training loss oscillates: over the last {n} steps it changed direction {turns} times, by "
                    "{jump:.3g} on average around {level:.3g}: the learning rate is too high for this model. Try: a "
                    "learning rate 3 to 10 times lower, a larger batch, or a schedule that decays the learning "
                    "rate.").format(n=BLOCK * OSC_BLOCKS, turns=turns, jump=_mean([abs(x) for x in d]), level=level))
        return out

    def _nan(self, step) -> list[Diagnosis]:
        for key, v in self.log.items():
            if len(v) < 3:
                continue
            recent = v[-SPIKE_LOOKBACK:]
            before = v[:-SPIKE_LOOKBACK] or v[:max(1, len(v) // 2)]
            med = sorted(abs(x) for x in before)[len(before) // 2]
            top = max(range(len(recent)), key=lambda i: abs(recent[i]))
            if abs(recent[top]) > SPIKE_FACTOR * max(med, 1e-8):
                at = self.steps[len(self.steps) - len(recent) + top]
                return self._new("divergence", at, _(
                    "{key} spiked to {value:.4g} at step {step} (its usual level was about {usual:.3g}) and then "
                    "stopped being a number (NaN or inf) after step {last}: the updates grew until they "
                    "overflowed. Try: a learning rate 3 to 10 times lower, gradient clipping "
                    "(torch.nn.utils.clip_grad_norm_), and in a loss written by hand log-probabilities from "
                    "logits (log_softmax, BCE with logits) instead of log(p).").format(
                    key=key, value=recent[top], step=at, usual=med, last=self.steps[-1]))
        return self._new("divergence", step, _(
            "the loss stopped being a number (NaN or inf) after step {step} without rising first: "
            "usually log(0), a division by zero, sqrt or log of a negative number in the loss, or a "
            "NaN in the data. Try: compute log-probabilities from logits (log_softmax, BCE with logits), "
            "add a small epsilon, check the data with torch.isfinite.").format(step=step))

    # --- detectors on evaluations -------------------------------------------------------------

    def _coverage(self, m: dict):
        """(what, covered set, total) from an evaluation, or None."""
        shares = m.get("class_shares")
        if shares is not None:
            shares = [float(s) for s in (shares.tolist() if torch.is_tensor(shares) else shares)]
            return "digits", {i for i, s in enumerate(shares) if s >= DIGIT_SHARE_FLOOR}, len(shares)
        if "modes" in m:
            snaps = getattr(self.monitor, "snapshots", None)
            if snaps and "counts" in snaps[-1] and len(snaps[-1]["counts"]) and "samples" in snaps[-1]:
                counts = snaps[-1]["counts"]
                k = len(counts)
                min_count = max(1, len(snaps[-1]["samples"]) // (5 * k))  # gh.metrics.mode_coverage's rule
                covered = {i for i in range(k) if int(counts[i]) >= min_count}
                if len(covered) == int(m["modes"]):
                    return "modes", covered, k
            return "modes", set(range(int(m["modes"]))), None  # which ones unknown: count only
        return None

    def _mode_collapse(self, step, m) -> list[Diagnosis]:
        cov = self._coverage(m)
        if cov is None:
            return []
        what, covered, total = cov
        m["_covered"], m["_total"], m["_what"] = covered, total, what
        ever = self.covered.setdefault(what, set())
        if total is None:  # counts only: compare numbers
            lost = max(0, len(ever) - len(covered))
            lost_names = None
            ever |= set(range(max(len(ever), len(covered))))
        else:
            lost_set = ever - covered
            lost, lost_names = len(lost_set), sorted(lost_set)
            ever |= covered
        if lost >= MODE_LOST_MIN:
            self.lost_streak[what] = self.lost_streak.get(what, 0) + 1
        else:
            self.lost_streak[what] = 0
        out = self._settle("mode_collapse", lost < MODE_LOST_MIN, step, RECOVER_EVALS)
        if self.lost_streak[what] < MODE_PERSIST:
            return out
        since = self.evals[-MODE_PERSIST]["_step"]
        counted = _(COUNTED[what])
        if lost_names:
            names = _(" ({what}: {names})").format(
                what=counted, names=", ".join(map(str, lost_names)))
        else:
            names = _(": {n} fewer {what} than before").format(n=lost, what=counted)
        return out + self._new("mode_collapse", since, _(
            "at step {step} the generator covered {covered} {what} and had lost {lost} it covered earlier{names}, "
            "for {evals} evaluations in a row. Its samples may each look fine, but it stopped producing part of the "
            "data. "
            "Try: PacGAN (gh.gan.Packed, D judges packs of samples), a lower learning rate or a decay at the end, "
            "the non-saturating loss; a smaller latent space also helps on toy data.").format(
            step=step, covered=f"{len(covered)}/{total}" if total else len(covered), what=counted, lost=lost,
            names=names, evals=MODE_PERSIST))

    def _mode_floor(self, step) -> list[Diagnosis]:
        last = [e for e in self.evals if "_covered" in e][-2:]
        if len(last) < 2 or last[-1]["_total"] is None:
            return []
        total, what = last[-1]["_total"], last[-1]["_what"]
        if all(len(e["_covered"]) < MODE_FLOOR_SHARE * total
               and e.get("high_quality", 0.0) >= MODE_FLOOR_QUALITY for e in last):
            missing = sorted(set(range(total)) - last[-1]["_covered"])
            return self._new("mode_collapse", last[0]["_step"], _(
                "at the end the generator covers only {covered}/{total} {what} although {sharp:.0%} of its "
                "samples are sharp (missing: {missing}): mode collapse. Try: PacGAN (gh.gan.Packed), a lower "
                "learning rate or a decay at the end, the non-saturating loss.").format(
                covered=len(last[-1]["_covered"]), total=total, what=_(COUNTED[what]),
                sharp=last[-1]["high_quality"], missing=", ".join(map(str, missing))))
        return []

    def _no_variety(self, step, m) -> list[Diagnosis]:
        v = m.get("variety")
        if v is None or step == 0:
            return []
        best = max([float(e["variety"]) for e in self.evals[:-1] if "variety" in e and e["_step"] > 0],
                   default=0.0)
        low = float(v) < VARIETY_FLOOR and float(v) < VARIETY_DROP * best
        self.low_variety = self.low_variety + 1 if low else 0
        out = self._settle("no_variety", not low, step, RECOVER_EVALS)
        if self.low_variety < VARIETY_PERSIST:
            return out
        since = self.evals[-VARIETY_PERSIST]["_step"]
        return out + self._new("no_variety", since, _(
            "the samples are nearly identical: their mean distance to each other is {now:.0%} of the data's, "
            "down from {best:.0%} ({evals} evaluations in a row). A generator stuck on one output (complete mode "
            "collapse) or a decoder that ignores z (posterior collapse) does this. Try: for a GAN, PacGAN and a "
            "lower learning rate; for a VAE, a summed reconstruction and beta = 1.").format(
            now=float(v), best=best, evals=VARIETY_PERSIST))

    def _paired(self):
        """Each held-out quantity of the last evaluation with the same quantity on training data:
        (held-out key, the quantity's name, [(step, held-out, training), ...] over the evaluations)."""
        e = self.evals[-1]
        for key in e:
            prefix = next((p for p in _HELD_OUT if key.startswith(p)), None)
            if prefix is None or any(w in key for w in _NOT_LOSSES):
                continue
            rest = key[len(prefix):]
            train_key = next((k for k in ("train_" + rest, "_train_" + rest) if k in e), None)
            if train_key is not None:
                yield key, rest, [(x["_step"], x[key], x[train_key]) for x in self.evals
                                  if key in x and train_key in x]

    def _overfitting(self, step) -> list[Diagnosis]:
        out: list[Diagnosis] = []
        for key, rest, pts in self._paired():
            if len(pts) < OVERFIT_EVALS + 1:
                continue
            last = pts[-OVERFIT_EVALS - 1:]
            gaps = [h - t for s, h, t in last]
            trains = [t for s, h, t in last]
            held = [h for s, h, t in pts]
            grew = all(y > x for x, y in zip(gaps, gaps[1:]))
            learning = all(y < x for x, y in zip(trains, trains[1:]))
            if (grew and learning and gaps[-1] - gaps[0] > OVERFIT_GROWTH * abs(held[-1])
                    and held[-1] > min(held)):
                best = min(range(len(held)), key=held.__getitem__)
                out += self._new("overfitting", last[0][0], _(
                    "the gap between {key} on held-out data and {rest} on the training data grew at each of "
                    "{evals} evaluations in a row (from {gap_first:.4g} at step {step_first} to {gap_last:.4g} at step "
                    "{step_last}) while the training value kept falling ({train_first:.4g} -> {train_last:.4g}); the "
                    "held-out value was best at step {best_step} ({best:.4g}) and was {now:.4g} at step {step_last}: "
                    "the model is memorising its training data. Try: stop at the best step (its checkpoint), more "
                    "data or augmentation (e.g. gh.classifier.random_shift), a smaller model, weight decay or dropout. "
                    "Chapter 06 shows what a memorising model leaks.").format(
                    key=key, rest=rest, evals=OVERFIT_EVALS, gap_first=gaps[0], step_first=last[0][0],
                    gap_last=gaps[-1], step_last=last[-1][0], train_first=trains[0], train_last=trains[-1],
                    best_step=pts[best][0], best=held[best], now=held[-1]))
        return out

    def _eval_divergence(self, step) -> list[Diagnosis]:
        out: list[Diagnosis] = []
        n = DIVERGE_EVALS + 1
        optimised = [x["_train_loss"] for x in self.evals if "_train_loss" in x][-n:]
        for key, rest, pts in self._paired():
            rising = [h for s, h, t in pts[-n:]]
            trains = [t for s, h, t in pts[-n:]]
            loss = optimised if len(optimised) == n else trains
            if len(rising) == n and all(all(y > x for x, y in zip(v, v[1:])) for v in (rising, trains, loss)):
                out += self._new("divergence", pts[-n][0], _(
                    "{key} on held-out data, {rest} on the training data and the training loss all rose at each of "
                    "the last {evals} evaluations ({key}: {first:.4g} -> {last:.4g}): training is diverging. Try: a "
                    "learning rate 3 to 10 times lower, gradient clipping.").format(
                    key=key, rest=rest, evals=DIVERGE_EVALS, first=rising[0], last=rising[-1]))
        return out


def watcher(diagnose, history, eval_fn=None) -> Diagnostics | None:
    """The Diagnostics for a fit call: None when `diagnose` is False, the given one, or a new one
    that knows what the history already reported (a resumed run does not repeat it, and a state
    still open there can recover)."""
    if not diagnose:
        return None
    earlier = [Diagnosis.from_dict(d) for d in getattr(history, "diagnoses", [])]
    w = diagnose if isinstance(diagnose, Diagnostics) else Diagnostics(
        monitor=eval_fn if hasattr(eval_fn, "snapshots") else None)
    w.kinds |= {d.kind for d in earlier}
    w.reported.update({d.kind: d for d in earlier})  # the latest of each kind
    return w


def rediagnose(history) -> None:
    """Diagnose a run again from its History (per-step losses, evaluations, how it stopped) by the
    current rules, in place: a model loaded from a cached checkpoint then shows what fit says about
    it now, not what the version of the course that trained it said."""
    w, found = Diagnostics(), []
    evals = sorted(history.evals, key=lambda e: e["step"])
    for i in range(max((len(v) for v in history.losses.values()), default=0)):
        found += w.after_step(i + 1, {k: v[i] for k, v in history.losses.items() if i < len(v)})
        while evals and evals[0]["step"] <= i + 1:
            e = evals.pop(0)
            found += w.after_eval(e["step"], e)
    for e in evals:
        found += w.after_eval(e["step"], e)
    history.diagnoses = []
    report(found + w.at_end(history.step, history.stopped), history)


def report(found: list[Diagnosis], history, bar=None, desc: str = "") -> None:
    """Record diagnoses that started (new entries) or recovered (their entry updated) in the
    history, and show every diagnosis of the run in the progress bar (⚠ open, ✓ recovered)."""
    for d in found:
        entry = next((e for e in history.diagnoses if e["kind"] == d.kind and e["step"] == d.step), None)
        if entry is None:
            history.diagnoses.append(d.to_dict())
        else:
            entry.update(d.to_dict())
    if found and bar is not None:
        titles = _(", ").join(_("✓ {title} (recovered)").format(title=title(e["kind"]))
                              if e.get("recovered") is not None else f"⚠ {title(e['kind'])}"
                              for e in history.diagnoses)
        bar.set_description(f"{desc} {titles}", refresh=False)


def describe(history) -> str:
    """Every diagnosis of a run, one per line (⚠ open, ✓ recovered), or NO_DIAGNOSIS: what a
    chapter prints to show what fit saw in one of its runs."""
    return "\n".join(str(Diagnosis.from_dict(d)) for d in history.diagnoses) or _(NO_DIAGNOSIS)


def closing_report(history) -> str:
    """The lines fit prints at the end: every diagnosis of the run, with its step."""
    return "".join(f"\n{Diagnosis.from_dict(d)}" for d in history.diagnoses)
