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
import io
import time

import torch
from torch.utils.data import DataLoader, Dataset

from .train import adam, fit


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
    """`steps` steps of `gh.fit` on data resident on the device (no checkpoint, no display)."""
    n = len(data[0] if isinstance(data, tuple) else data)
    rows = steps * batch_size
    data = tuple(t[:rows] for t in data) if isinstance(data, tuple) else data[:rows]
    assert n >= rows, f"need {rows} rows for {steps} steps of {batch_size}, have {n}"
    with contextlib.redirect_stdout(io.StringIO()):  # fit's start and end lines
        return fit(step, data, state=state, epochs=1, batch_size=batch_size, plot=False, progress=False,
                   shuffle=shuffle)


# --- the three models: one step function each, shared by both loops -----------------------------

def vae_parts(seed: int = 0, latent_dim: int = 16, device="cpu", fast: bool = True):
    from .vae import VAE, vae_step

    torch.manual_seed(seed)
    model = VAE(latent_dim).to(device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
    opt = adam(model.parameters()) if fast else torch.optim.Adam(model.parameters())
    return model, opt, vae_step(model, opt)


def dcgan_parts(seed: int = 0, device="cpu", fast: bool = True):
    from .gan import DCGANDiscriminator, DCGANGenerator, make_step

    torch.manual_seed(seed)
    G, D = DCGANGenerator(32, 32).to(device), DCGANDiscriminator(32).to(device)
    if fast:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    make = adam if fast else torch.optim.Adam
    opt_g, opt_d = (make(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (G, D))
    return (G, D, opt_g, opt_d), make_step(G, D, opt_g, opt_d)


def textbook_decoder(model, src, lengths, tgt_in):
    """Teacher-forced logits (B, L, V) the textbook way: one decoder step at a time in Python,
    the attention keys projected again at every step, the output layer applied per step."""
    memory = model.encode(src, lengths)
    h = model.start(memory)
    logits = []
    for t in range(tgt_in.size(1)):
        e = model.embed(tgt_in[:, t])
        if model.attn is not None:
            ctx, _ = model.attn(h, model.attn.keys(memory.states), memory.states, memory.mask)
        else:
            ctx = memory.summary
        h = model.cell(torch.cat([e, ctx], -1), h)
        logits.append(model.out(torch.cat([h, ctx, e], -1)))
    return torch.stack(logits, 1)


def seq2seq_parts(data, seed: int = 0, fast: bool = True, lr: float = 3e-3):
    from .seq2seq import REFERENCE, Seq2Seq, seq2seq_step

    torch.manual_seed(seed)
    model = Seq2Seq(data.src_vocab, data.tgt_vocab, attention=True, **REFERENCE["size"]).to(data["train"][0].device)
    opt = adam(model.parameters(), lr=lr) if fast else torch.optim.Adam(model.parameters(), lr=lr)
    return model, opt, seq2seq_step(model, opt, trim=fast, decoder=None if fast else textbook_decoder)


# --- the benchmark -----------------------------------------------------------------------------

def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(name: str, textbook, course, steps: int, batch_size: int, quality, rounds: int = 3) -> dict:
    """Run both loops `rounds` times, interleaved, `steps` steps each round; then their quality.

    textbook / course: function(steps) that trains its own model `steps` more steps.
    quality: function(which) -> dict of numbers for "textbook" or "course".
    """
    textbook(2), course(2)  # warm-up: allocations, kernels, thread pools
    times = {"textbook": 0.0, "course": 0.0}
    for _ in range(rounds):
        times["textbook"] += _timed(lambda: textbook(steps))
        times["course"] += _timed(lambda: course(steps))
    samples = rounds * steps * batch_size
    row = {"model": name, "steps": rounds * steps + 2, "batch_size": batch_size,
           "textbook_samples_per_s": samples / times["textbook"], "course_samples_per_s": samples / times["course"]}
    row["speedup"] = row["course_samples_per_s"] / row["textbook_samples_per_s"]
    row["quality"] = {"textbook": quality("textbook"), "course": quality("course")}
    return row


def bench_vae(mnist, steps: int, batch_size: int = 128) -> dict:
    from .vae import neg_elbo

    dev = mnist.device
    tb_model, _, tb_step = vae_parts(device=dev, fast=False)
    co_model, co_opt, co_step = vae_parts(device=dev, fast=True)
    dataset = ItemDataset(mnist.train_images)
    data = mnist.train_x.repeat(-(-(steps * batch_size) // len(mnist.train_x)), 1, 1, 1)
    models = {"textbook": tb_model, "course": co_model}

    def quality(which):
        models[which].eval()
        with torch.no_grad():
            v = neg_elbo(models[which], mnist.test_x[:1000]).mean().item()
        models[which].train()
        return {"test_neg_elbo": round(v, 2)}

    return compare("VAE (ch. 02)",
                   lambda k: textbook_loop(tb_step, dataset, batch_size, k, dev),
                   lambda k: course_loop(co_step, data, {"model": co_model, "opt": co_opt}, batch_size, k),
                   steps, batch_size, quality)


def bench_dcgan(mnist, steps: int, batch_size: int = 64) -> dict:
    from .gan import scaled
    from .metrics import classifier_features, evaluate_images, mnist_classifier

    dev = mnist.device
    (tg, *_), tb_step = dcgan_parts(device=dev, fast=False)
    (cg, cd, cog, cod), co_step = dcgan_parts(device=dev, fast=True)
    dataset = _Scaled(mnist.train_images)
    data = scaled(mnist).repeat(-(-(steps * batch_size) // len(mnist.train_x)), 1, 1, 1)
    classifier = mnist_classifier(mnist)
    reference = classifier_features(classifier, mnist.test_x[:1000])
    gens = {"textbook": tg, "course": cg}

    def quality(which):
        g = gens[which]
        with torch.no_grad():
            x = g.sample(1000, torch.Generator().manual_seed(1)).float()
        return {"classifier_fid": round(evaluate_images(classifier, x, reference)["fid"], 1)}

    return compare("DCGAN (ch. 03)",
                   lambda k: textbook_loop(tb_step, dataset, batch_size, k, dev),
                   lambda k: course_loop(co_step, data, {"G": cg, "D": cd, "opt_g": cog, "opt_d": cod},
                                         batch_size, k),
                   steps, batch_size, quality)


class _Scaled(ItemDataset):
    """MNIST images in [-1, 1], converted per item (torchvision's ToTensor + Normalize(0.5, 0.5))."""

    def __getitem__(self, i):
        return [self.tensors[0][i].float().div(127.5).sub(1)]


def bench_seq2seq(steps: int, batch_size: int = 128, n_train: int = 40_000) -> dict:
    from .seq2seq import accuracy, date_data, length_buckets

    data = date_data(n_train, n_test=2000)
    tb_model, _, tb_step = seq2seq_parts(data, fast=False)
    co_model, co_opt, co_step = seq2seq_parts(data, fast=True)
    src, lengths, tgt = data["train"]
    dataset = ItemDataset(src, lengths, tgt)
    order = length_buckets(lengths, batch_size)
    bucketed = tuple(t[order] for t in data["train"])
    valid = tuple(t[:2000] for t in data["valid"])
    models = {"textbook": tb_model, "course": co_model}
    done = [0]

    def course(k):
        start = done[0] * batch_size % (len(src) - k * batch_size)
        done[0] += k
        return course_loop(co_step, tuple(t[start:] for t in bucketed), {"model": co_model, "opt": co_opt},
                           batch_size, k, shuffle=False)

    def quality(which):
        return {"valid_exact_match": round(accuracy(models[which], valid), 4)}

    return compare("Seq2Seq with attention (ch. 04)",
                   lambda k: textbook_loop(tb_step, dataset, batch_size, k, src.device),
                   course, steps, batch_size, quality)


def time_to_quality(mnist) -> list[dict]:
    """Seconds each cached reference model took to reach its chapter's bar (from its history)."""
    from .gan import reference_dcgan
    from .seq2seq import reference_translator
    from .vae import reference_vae

    rows = []

    def first(evals, key, ok, total_steps, seconds):
        for e in evals:
            if key in e and ok(e[key]):
                s = e.get("seconds", seconds * e["step"] / max(total_steps, 1))
                return {"reached": round(e[key], 4), "step": e["step"], "seconds": round(s, 1)}
        return {"reached": None, "step": None, "seconds": None}

    _, h = reference_vae(mnist, plot=False)
    rows.append({"model": "VAE (ch. 02)", "bar": "test -ELBO <= 110 nats", "total_seconds": round(h.seconds, 1),
                 **first(h.evals, "test_neg_elbo", lambda v: v <= 110, h.step, h.seconds)})
    gan = reference_dcgan(mnist, plot=False)
    evals = gan.monitor.records
    rows.append({"model": "DCGAN (ch. 03)", "bar": "classifier-FID <= 125 (the VAE's samples)",
                 "total_seconds": round(gan.history.seconds, 1),
                 **first(evals, "fid", lambda v: v <= 125, gan.history.step, gan.history.seconds)})
    _, h = reference_translator(attention=True, plot=False)
    rows.append({"model": "Seq2Seq with attention (ch. 04)", "bar": "valid exact match >= 99.5%",
                 "total_seconds": round(h.seconds, 1),
                 **first(h.evals, "valid_exact_match", lambda v: v >= 0.995, h.step, h.seconds)})
    return rows


def epoch_seconds(mnist) -> list[dict]:
    """Seconds of the course loop for one epoch of 60,000 images (the training digits tiled when
    only the offline sample is here) for the VAE and the DCGAN, and of 100,000 date pairs for the
    Seq2Seq, each after a short warm-up, at the chapters' batch sizes."""
    from .gan import scaled
    from .seq2seq import date_data, length_buckets

    def tile(x, n):
        return x.repeat(-(-n // len(x)), *[1] * (x.dim() - 1))[:n]

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
                 "seconds": timed(step, (tile(mnist.train_x, 60_000),), {"model": model, "opt": opt}, 128)})
    (G, D, og, od), step = dcgan_parts(device=mnist.device)
    rows.append({"model": "DCGAN (ch. 03)", "what": "60,000 images, batch 64",
                 "seconds": timed(step, (tile(scaled(mnist), 60_000),), {"G": G, "D": D, "opt_g": og, "opt_d": od},
                                  64)})
    data = date_data(100_000, n_test=1000)
    order = length_buckets(data["train"][1], 128)
    model, opt, step = seq2seq_parts(data)
    rows.append({"model": "Seq2Seq with attention (ch. 04)", "what": "100,000 date pairs, batch 128",
                 "seconds": timed(step, tuple(t[order] for t in data["train"]), {"model": model, "opt": opt}, 128,
                                  shuffle=False)})
    return rows


def run(steps: int | None = None, models=("vae", "dcgan", "seq2seq"), out=print) -> dict:
    """The whole benchmark; prints a table and returns the numbers."""
    from .data import load_mnist
    from .runtime import env, pick

    steps = steps or pick(full=60, quick=8)
    out(f"{env()} | {time.strftime('%Y-%m-%d')}")
    mnist = load_mnist()
    rows = []
    for name in models:
        row = {"vae": lambda: bench_vae(mnist, steps), "dcgan": lambda: bench_dcgan(mnist, steps),
               "seq2seq": lambda: bench_seq2seq(steps)}[name]()
        rows.append(row)
        q = row["quality"]
        out(f"{row['model']:32s} textbook {row['textbook_samples_per_s']:8.0f}/s   course "
            f"{row['course_samples_per_s']:8.0f}/s   x{row['speedup']:.2f}   after {row['steps']} steps: "
            f"textbook {q['textbook']}, course {q['course']}")
    return {"throughput": rows}
