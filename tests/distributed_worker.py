"""Short training runs of the course's own models for tests/test_distributed.py, under torchrun or alone:

    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py IMAGES.pt vae mlp-gan --out W.pt
        [--then-fail C.pt]

Each model (chapter 02's VAE from `build_vae`, chapter 03's MLP GAN from `build_mlp_gan`) trains with
`gh.fit` for STEPS steps of BATCH of the EXAMPLES digits in IMAGES.pt (float, [0, 1]), in fp32; rank 0
writes the modules' weights to W.pt. With --then-fail, the VAE then trains once more, with a
checkpoint C.pt every CHECKPOINT_EVERY steps, and rank 1 raises at step FAIL_AT (one launch of
torchrun costs seconds, so the tests make one).
"""
import argparse
import os

import torch
from torch import nn

import genai_helpers as gh
from genai_helpers import distributed

STEPS, BATCH, EXAMPLES = 20, 32, 320  # 2 epochs of 10 steps
CHECKPOINT_EVERY = 5  # steps
FAIL_AT = 13  # the step at which rank 1 fails (after the checkpoint of step 10)
MODELS = ("vae", "mlp-gan")


def data(model: str, images: torch.Tensor) -> torch.Tensor:
    """Real digits: on random pixels the VAE is so ill-conditioned that 1 and 2 CPU threads
    already end 1e-4 apart after 20 steps (on digits, 1e-6)."""
    return images if model == "vae" else images * 2 - 1  # the GAN's tanh range


def build(model: str):
    cpu = torch.device("cpu")
    return gh.vae.build_vae(cpu) if model == "vae" else gh.gan.build_mlp_gan(cpu, total_steps=STEPS)


def weights(state: dict) -> dict:
    return {k: {n: t.detach().clone() for n, t in v.state_dict().items()}
            for k, v in state.items() if isinstance(v, nn.Module)}


def train(model: str, images: torch.Tensor, checkpoint=None, fail_at: int | None = None,
          initial: bool = False) -> dict:
    """The modules' weights after training (or, with initial, before it)."""
    state, step = build(model)
    if initial:
        return weights(state)
    calls = []

    def failing_step(batch):
        calls.append(1)
        if int(os.environ.get("RANK", 0)) == 1 and len(calls) == fail_at:
            raise RuntimeError("rank 1 fails on purpose")
        return step(batch)

    gh.fit(failing_step, data(model, images), state=state, epochs=STEPS * BATCH // EXAMPLES, batch_size=BATCH,
           checkpoint=checkpoint, checkpoint_every=CHECKPOINT_EVERY, config={"model": model}, amp=False,
           plot=False, progress=False, diagnose=False, desc=model)
    return weights(state)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("images")
    p.add_argument("models", nargs="+", choices=MODELS)
    p.add_argument("--out", required=True)
    p.add_argument("--then-fail", metavar="CHECKPOINT")
    args = p.parse_args()
    images = torch.load(args.images, weights_only=True)
    result = {m: train(m, images) for m in args.models}
    if distributed.is_main():
        torch.save(result, args.out)
    if args.then_fail:
        train("vae", images, args.then_fail, fail_at=FAIL_AT)
    distributed.leave()
