"""`python -m genai_helpers bench`: the course's training loop against the textbook loop.

The textbook loop is what the PyTorch examples and d2l teach: a `DataLoader` over a `Dataset`
that converts one item at a time (as torchvision's ToTensor does), `.to(device)` per batch,
fp32, `torch.optim.Adam` with its defaults, `loss.item()` every step and, for the Seq2Seq, a
Python-level decoder loop that projects the keys again at every step and pads every batch to
the longest input. The course loop is `gh.fit`: data resident on the device, batches by index,
foreach/fused Adam, no host sync inside the loop, bf16 autocast on CUDA, channels-last
convolutions, length-bucketed Seq2Seq batches and precomputed attention keys. Both run in one
process, interleaved, on the same model (same initial weights), batch size, data and step count;
each reports samples/s and the quality it reached, so speed is never bought with worse results.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import time

import torch
from torch.utils.data import DataLoader, Dataset

from .data import load_mnist
from .gan import REFERENCE as GAN_REFERENCE
from .gan import build_dcgan, scaled
from .i18n import _
from .classifier import mnist_classifier
from .metrics import classifier_features, evaluate_images
from .runtime import evaluating, is_quick, pick
from .session import setup
from .seq2seq import REFERENCE, build_seq2seq, date_data, exact_match_rate, length_buckets
from .train import fit
from .vae import build_vae, neg_elbo

DCGAN_STEPS = GAN_REFERENCE["gan_dcgan"]["steps"]["full"]  # the chapter's full training length


class ItemDataset(Dataset):
    """Rows of tensors kept on the CPU; images are stored as uint8 and converted per item."""

    def __init__(self, *tensors):
        self.tensors = [t.cpu() for t in tensors]

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, i):
        row = [t[i] for t in self.tensors]
        return [r.float().div(255) if r.dtype == torch.uint8 else r for r in row]


def textbook_loop(step, dataset: Dataset, batch_size: int, steps: int, device, seed: int = 0) -> list[float]:
    """`steps` steps of the textbook loop; returns the per-step losses it read with `.item()`."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    losses = []
    while len(losses) < steps:
        for batch in loader:
            batch = [t.to(device) for t in batch]
            out = step(batch[0] if len(batch) == 1 else batch)
            losses.append(next(iter(out.values())).item())
            if len(losses) == steps:
                break
    return losses


def course_loop(step, data, state: dict, batch_size: int, steps: int, shuffle: bool = True):
    """`steps` steps of `gh.fit` on the first rows of `data` (a tensor or a tuple of tensors on the
    device), without checkpoint or display."""
    data, rows = (data if isinstance(data, tuple) else (data,)), steps * batch_size
    if len(data[0]) < rows:
        raise ValueError(_("need {rows} rows for {steps} steps of {batch_size}, have {have}").format(
            rows=rows, steps=steps, batch_size=batch_size, have=len(data[0])))
    with contextlib.redirect_stdout(io.StringIO()):  # fit's start and end lines
        return fit(step, tuple(t[:rows] for t in data), state=state, epochs=1, batch_size=batch_size,
                   plot=False, progress=False, shuffle=shuffle)


# --- the three models: one step function each, shared by both loops -----------------------------

def vae_parts(seed: int = 0, latent_dim: int = 16, device="cpu", fast: bool = True):
    state, step = build_vae(device, latent_dim, seed=seed, fast=fast)
    return state["model"], state["opt"], step


def dcgan_parts(seed: int = 0, device="cpu", fast: bool = True, total_steps: int = DCGAN_STEPS):
    """The chapter's DCGAN recipe (lr 1e-3, its learning-rate decay over `total_steps`)."""
    state, step = build_dcgan(device, total_steps, fast=fast)
    return (state["G"], state["D"], state["opt_g"], state["opt_d"]), step


def textbook_decoder(model, src, lengths, tgt_in):
    """Teacher-forced logits (B, L, V) the textbook way: one decoder step at a time in Python,
    the attention keys projected again at every step, the output layer applied per step."""
    memory = model.encode(src, lengths)
    h = model.start(memory)
    logits = []
    for t in range(tgt_in.size(1)):
        if model.attn is not None:
            memory = dataclasses.replace(memory, keys=model.attn.keys(memory.states))
        out, h, __ = model.step(tgt_in[:, t], h, memory)
        logits.append(out)
    return torch.stack(logits, 1)


def seq2seq_parts(data, seed: int = 0, fast: bool = True):
    state, step = build_seq2seq(data, size=REFERENCE["size"], seed=seed, fast=fast,
                                decoder=None if fast else textbook_decoder)
    return state["model"], state["opt"], step


# --- the benchmark -----------------------------------------------------------------------------

def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _tile(x, rows: int):
    """x repeated along the first dimension to at least `rows` rows."""
    return x.repeat(-(-rows // len(x)), *[1] * (x.dim() - 1))[:max(rows, len(x))]


class Pair:
    """Two copies of one model (same initial weights): one trained by the textbook loop on
    `dataset`, one by the course loop on `data` (a tuple of tensors on the device)."""

    def __init__(self, name, batch_size, textbook_step, dataset, course_step, data: tuple, state, quality,
                 bar, shuffle: bool = True):
        self.name, self.batch_size, self.quality, self.bar = name, batch_size, quality, bar
        self.textbook_step, self.dataset, self.device = textbook_step, dataset, data[0].device
        self.course_step, self.data, self.state, self.shuffle = course_step, data, state, shuffle
        self.done = {"textbook": 0, "course": 0}

    def textbook(self, k: int):
        textbook_loop(self.textbook_step, self.dataset, self.batch_size, k, self.device, seed=self.done["textbook"])
        self.done["textbook"] += k

    def course(self, k: int):
        rows = k * self.batch_size
        start = self.done["course"] * self.batch_size % max(len(self.data[0]) - rows, 1)  # move on through the data
        course_loop(self.course_step, tuple(t[start:] for t in self.data), self.state, self.batch_size, k,
                    shuffle=self.shuffle)
        self.done["course"] += k

    def reached(self, q: dict) -> bool:
        key, sign, value, __ = self.bar
        return q[key] <= value if sign == "<=" else q[key] >= value


def compare(pair: Pair, steps: int, rounds: int = 3) -> dict:
    """Run both loops `rounds` times, interleaved, `steps` steps each round; then their quality."""
    pair.textbook(2), pair.course(2)  # warm-up: allocations, kernels, thread pools
    times = {"textbook": 0.0, "course": 0.0}
    for __ in range(rounds):
        times["textbook"] += _timed(lambda: pair.textbook(steps))
        times["course"] += _timed(lambda: pair.course(steps))
    samples = rounds * steps * pair.batch_size
    row = {"model": pair.name, "steps": rounds * steps + 2, "batch_size": pair.batch_size,
           "textbook_samples_per_s": samples / times["textbook"], "course_samples_per_s": samples / times["course"]}
    row["speedup"] = row["course_samples_per_s"] / row["textbook_samples_per_s"]
    row["quality"] = {"textbook": pair.quality("textbook"), "course": pair.quality("course")}
    return row


def race(pair: Pair, every: int, max_steps: int) -> dict:
    """Train each loop from scratch until its quality passes the bar (checked every `every`
    steps, not timed); the training seconds and steps each needed."""
    row = {"model": pair.name, "bar": pair.bar[3]}
    for which in ("textbook", "course"):
        seconds, steps, q = 0.0, 0, None
        while steps < max_steps:
            seconds += _timed(lambda: getattr(pair, which)(every))
            steps += every
            q = pair.quality(which)
            if pair.reached(q):
                break
        row[which] = {"seconds": round(seconds, 1), "steps": steps, "reached": pair.reached(q), **q}
    t, c = row["textbook"], row["course"]
    row["speedup"] = t["seconds"] / c["seconds"] if t["reached"] and c["reached"] else None
    return row


def vae_pair(mnist, batch_size: int = 128) -> Pair:
    tb_model, __, tb_step = vae_parts(device=mnist.device, fast=False)
    co_model, co_opt, co_step = vae_parts(device=mnist.device, fast=True)
    models = {"textbook": tb_model, "course": co_model}

    def quality(which):
        with evaluating(models[which]), torch.no_grad():
            v = neg_elbo(models[which], mnist.test_x).mean().item()
        return {"test_neg_elbo": round(v, 2)}

    return Pair("VAE (ch. 02)", batch_size, tb_step, ItemDataset(mnist.train_images), co_step,
                (_tile(mnist.train_x, 60_000),), {"model": co_model, "opt": co_opt}, quality,
                ("test_neg_elbo", "<=", 110.0, "test -ELBO <= 110 nats"))


class _Scaled(ItemDataset):
    """MNIST images in [-1, 1], converted per item (torchvision's ToTensor + Normalize(0.5, 0.5))."""

    def __getitem__(self, i):
        return [self.tensors[0][i].float().div(127.5).sub(1)]


def dcgan_pair(mnist, batch_size: int = 64) -> Pair:
    (tg, *__), tb_step = dcgan_parts(device=mnist.device, fast=False)
    (cg, cd, cog, cod), co_step = dcgan_parts(device=mnist.device, fast=True)
    classifier = mnist_classifier(mnist)
    reference = classifier_features(classifier, mnist.test_x)
    gens = {"textbook": tg, "course": cg}

    def quality(which):
        with torch.no_grad():
            x = gens[which].sample(len(mnist.test_x), torch.Generator().manual_seed(1)).float()
        return {"classifier_fid": round(evaluate_images(classifier, x, reference)["fid"], 1)}

    return Pair("DCGAN (ch. 03)", batch_size, tb_step, _Scaled(mnist.train_images), co_step,
                (_tile(scaled(mnist), 60_000),), {"G": cg, "D": cd, "opt_g": cog, "opt_d": cod}, quality,
                ("classifier_fid", "<=", 180.0, "classifier-FID <= 180 (mid-training, before the LR decay)"))


def seq2seq_pair(batch_size: int = 128, n_train: int = 40_000) -> Pair:
    data = date_data(n_train, n_test=2000)
    tb_model, __, tb_step = seq2seq_parts(data, fast=False)
    co_model, co_opt, co_step = seq2seq_parts(data, fast=True)
    src, lengths, tgt = data["train"]
    bucketed = tuple(t[length_buckets(lengths, batch_size)] for t in data["train"])
    valid = tuple(t[:2000] for t in data["valid"])
    models = {"textbook": tb_model, "course": co_model}

    def quality(which):
        return {"valid_exact_match": round(exact_match_rate(models[which], valid), 4)}

    return Pair("Seq2Seq with attention (ch. 04)", batch_size, tb_step, ItemDataset(src, lengths, tgt), co_step,
                bucketed, {"model": co_model, "opt": co_opt}, quality,
                ("valid_exact_match", ">=", 0.995, "valid exact match >= 99.5%"), shuffle=False)


def epoch_seconds(mnist) -> list[dict]:
    """Seconds of the course loop for one epoch of 60,000 images (the training digits tiled when
    only the offline sample is here) for the VAE and the DCGAN, and of 100,000 date pairs for the
    Seq2Seq, each after a short warm-up, at the chapters' batch sizes."""
    def timed(step, data: tuple, state, batch_size, shuffle=True):
        course_loop(step, tuple(t[:5 * batch_size] for t in data), state, batch_size, 5)  # warm-up
        sync = torch.cuda.synchronize if data[0].device.type == "cuda" else (lambda: None)
        sync()
        t = time.perf_counter()
        course_loop(step, data, state, batch_size, len(data[0]) // batch_size, shuffle=shuffle)
        sync()
        return time.perf_counter() - t

    rows = []
    model, opt, step = vae_parts(device=mnist.device)
    rows.append({"model": "VAE (ch. 02)", "what": "60,000 images, batch 128",
                 "seconds": timed(step, (_tile(mnist.train_x, 60_000),), {"model": model, "opt": opt}, 128)})
    (G, D, og, od), step = dcgan_parts(device=mnist.device)
    rows.append({"model": "DCGAN (ch. 03)", "what": "60,000 images, batch 64",
                 "seconds": timed(step, (_tile(scaled(mnist), 60_000),), {"G": G, "D": D, "opt_g": og, "opt_d": od},
                                  64)})
    data = date_data(100_000, n_test=1000)
    order = length_buckets(data["train"][1], 128)
    model, opt, step = seq2seq_parts(data)
    rows.append({"model": "Seq2Seq with attention (ch. 04)", "what": "100,000 date pairs, batch 128",
                 "seconds": timed(step, tuple(t[order] for t in data["train"]), {"model": model, "opt": opt}, 128,
                                  shuffle=False)})
    return rows


RACE = {"vae": (100, 3000), "dcgan": (250, 4000), "seq2seq": (50, 1000)}  # check every, give up after (steps)


def run(steps: int | None = None, models=("vae", "dcgan", "seq2seq"), races: bool = False, out=print) -> dict:
    """The whole benchmark; prints one line per measurement and returns the numbers."""
    steps = steps or pick(full=60, quick=8)
    out(f"{setup(quiet=True)} | {time.strftime('%Y-%m-%d')}")
    mnist = load_mnist()
    pairs = {"vae": lambda: vae_pair(mnist), "dcgan": lambda: dcgan_pair(mnist), "seq2seq": seq2seq_pair}
    numbers = {"throughput": [], "time_to_quality": []}
    for name in models:
        row = compare(pairs[name](), steps)
        numbers["throughput"].append(row)
        q = row["quality"]
        out(_("{model:32s} textbook {textbook:8.0f}/s   course {course:8.0f}/s   x{speedup:.2f}   after {steps} "
              "steps: textbook {textbook_quality}, course {course_quality}").format(
            model=row["model"], textbook=row["textbook_samples_per_s"], course=row["course_samples_per_s"],
            speedup=row["speedup"], steps=row["steps"], textbook_quality=q["textbook"], course_quality=q["course"]))
    for name in models if races else ():
        every, most = RACE[name] if not is_quick() else (max(1, steps), 3 * steps)
        row = race(pairs[name](), every, most)
        numbers["time_to_quality"].append(row)
        t, c = row["textbook"], row["course"]
        out(_("{model:32s} to {bar}: textbook {textbook} s ({textbook_steps} steps, {textbook_reached}), course "
              "{course} s ({course_steps} steps, {course_reached})").format(
            model=row["model"], bar=row["bar"], textbook=t["seconds"], textbook_steps=t["steps"],
            textbook_reached=_("reached") if t["reached"] else _("not reached"), course=c["seconds"],
            course_steps=c["steps"], course_reached=_("reached") if c["reached"] else _("not reached"))
            + (f"   x{row['speedup']:.2f}" if row["speedup"] else ""))
    return numbers
