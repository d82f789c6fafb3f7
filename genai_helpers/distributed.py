"""Past one machine: `gh.fit` under `torchrun`, data parallel, with the same result as one process.

    torchrun --standalone --nproc_per_node=2 -m genai_helpers train dcgan        # one machine
    torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_id=genai \\
             --rdzv_endpoint=HOST:29500 -m genai_helpers train dcgan             # on each node

torchrun starts one process per GPU (or per share of the CPUs) and tells each its RANK,
WORLD_SIZE and LOCAL_RANK in the environment. `fit` asks `join` what it trains with: outside
torchrun a `Solo`, whose every hook does nothing (the one-process course is untouched); under
torchrun this process's `Ranks`, which
- starts the process group: NCCL for tensors on a GPU (one GPU per process, cuda:LOCAL_RANK),
  gloo on CPUs; a process waits at most TIMEOUT_SECONDS for the others;
- gives every rank rank 0's state at the start (weights, optimisers, history, random
  generators): only rank 0 reads the checkpoint, so a run resumes with any number of processes;
- gives each rank its contiguous share of every batch of indices (batch_size / WORLD_SIZE rows
  of the data already on its device): the global batch is the one-process batch;
- averages each gradient over the ranks as soon as backward has accumulated it (before
  gradient clipping or the optimiser step read it), averages the logged losses and the
  evaluations, and leaves the progress bar, the printing and the checkpoints to rank 0.

Why gradient hooks and not DistributedDataParallel. DDP averages the gradients of a forward pass
that went through its wrapper: `DDP.forward` arms the reducer that backward then fires. The
course's step functions are closures over the bare modules their `build_*` made, and use them in
ways a wrapper would not see (the GAN's D called twice per step for two backward passes, its
G.noise, a Seq2Seq's encoder and decoder steps). Wrapping the modules in `fit` would leave the
closures calling the bare ones, and every rank would train on its own, silently. So `Ranks` does
what DDP's reducer does, at the same moment: a hook on each parameter
(`register_post_accumulate_grad_hook`) all-reduces its gradient as backward accumulates it. What
it leaves out is DDP's overlap (gradients packed into buckets and sent while backward goes on):
each all-reduce here waits. For the course's small models that is cheap (chapter 06 measures
it); a large model is better written for DDP or FSDP directly. A gradient accumulated over
several backward passes is averaged again each time; the parts already averaged are the same on
every rank, so averaging leaves them as they are.

Randomness. A one-process step draws its noise (the VAE's epsilon, random shifts, the GAN's z)
for the whole batch from one generator. Here every rank keeps rank 0's generator state, and
`per_example` draws the noise of the whole global batch on every rank, each keeping its own
rows: each example gets the noise it gets in a one-process run, the generators stay in step,
and N processes end with the one-process parameters up to the order of additions
(tests/test_distributed.py: within 1e-4 after 20 steps). Noise drawn otherwise (dropout) is the
same on every rank for the same row of each share: an example and its counterparts on the other
ranks share a dropout mask.

BatchNorm. On CUDA the BatchNorm layers become SyncBatchNorm (statistics of the global batch).
SyncBatchNorm needs a GPU; on CPUs each rank normalises with its own share's statistics, as DDP
does by default, so the DCGAN (BatchNorm in G, dropout in D) trained on CPU processes is a
slightly different training than on one; the VAEs, the MLP GAN and the Seq2Seq have neither. A
loss that is a mean over tokens (the Seq2Seq's) becomes a mean of the shares' means: the same up
to how tokens are weighted when the shares have different numbers of them.

Failure. When a process fails, torchrun stops the others; the failing one says which rank, at
which step and why (`Ranks.failing`). Ctrl-C under torchrun stops every process; a new launch
resumes from rank 0's last checkpoint.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import re
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .i18n import _

TIMEOUT_SECONDS = 300  # longest wait for the other processes in one collective: far above a course
#                        model's evaluation or checkpoint (seconds), so only a stuck process trips it

_share: tuple[int, int] | None = None  # (rank, world size) while a distributed step runs


def launched() -> bool:
    """Was this process started by torchrun (or another launcher that sets RANK and WORLD_SIZE)?"""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def local_rank() -> int:
    """This process's number on its machine (its GPU under torchrun); 0 outside torchrun."""
    return int(os.environ.get("LOCAL_RANK", 0))


def world_size() -> int:
    """How many processes torchrun started in all (1 outside torchrun)."""
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def is_main() -> bool:
    """Rank 0, or a process on its own: the one that prints and writes files."""
    return not launched() or int(os.environ["RANK"]) == 0


def per_example(draw, n: int, dim: int = 0) -> torch.Tensor:
    """Random numbers for n examples along `dim`: draw(n); inside a distributed step, this rank's
    rows of draw(n * world size), i.e. the numbers a one-process run draws for the same examples
    of the global batch (and every rank's generator moves as far as the one process's)."""
    if _share is None:
        return draw(n)
    rank, world = _share
    return draw(n * world).narrow(dim, rank * n, n)


@dataclass
class Traffic:
    """What this process's gradient all-reduces cost since it started (`traffic`)."""

    calls: int = 0
    bytes: int = 0  # gradient bytes put into all-reduces
    seconds: float = 0.0  # spent in them on CPUs: sending, and waiting for the slowest process (on GPUs
    #                       only the time to queue them: NCCL runs them on its own stream)


traffic = Traffic()


class Solo:
    """One process: the hooks `fit` calls, each doing nothing."""

    rank, world, main = 0, 1, True

    def __str__(self) -> str:
        return ""

    def share(self, index):
        return index

    def average(self, values):
        return values

    def from_main(self, state: dict, history):
        return history

    def attach(self, modules) -> None:
        pass

    def detach(self) -> None:
        pass

    def stepping(self):
        return contextlib.nullcontext()

    def failing(self, history):
        return contextlib.nullcontext()

    def interrupted(self) -> None:
        pass  # fit keeps the model and the history; fit(..., history=hist) continues

    def say(self, *args) -> None:
        print(*args)

    def wait(self) -> None:
        pass


class Ranks(Solo):
    """This process among the `world` that torchrun started: the same hooks, distributed."""

    def __init__(self, device: torch.device):
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.main, self.device = self.rank == 0, device
        self.hooks: list = []

    def __str__(self) -> str:
        return _(", {world} processes ({backend})").format(
            world=self.world, backend="nccl" if self.device.type == "cuda" else "gloo")

    def share(self, index):
        """This rank's contiguous share of a batch of indices."""
        n = len(index) // self.world
        return index[self.rank * n:(self.rank + 1) * n]

    def average(self, values):
        """The mean over the ranks of a tensor, or of a dict of floats (the same on every rank)."""
        if isinstance(values, dict):
            mean = self.average(torch.tensor(list(values.values()), dtype=torch.float64, device=self.device))
            return dict(zip(values, mean.tolist()))
        total = values.detach().clone()
        dist.all_reduce(total)
        return total / self.world

    def from_main(self, state: dict, history):
        """Every rank takes rank 0's weights, optimiser states, history and random generators."""
        sent = ([{k: _cpu(v.state_dict()) for k, v in state.items()}, history.to_dict(), self._rng()]
                if self.main else [None, None, None])
        dist.broadcast_object_list(sent, src=0)
        if self.main:
            return history
        for name, obj in state.items():
            obj.load_state_dict(sent[0][name])
        torch.set_rng_state(sent[2]["cpu"])
        if sent[2]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(sent[2]["cuda"], self.device)
        return type(history).from_dict(sent[1])

    def _rng(self) -> dict:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {"cpu": torch.get_rng_state(), "cuda": cuda}

    def attach(self, modules) -> None:
        """Average every gradient over the ranks as backward accumulates it; on CUDA, BatchNorm
        over the global batch (SyncBatchNorm)."""
        seen: set = set()
        for m in modules:
            if self.device.type == "cuda":
                nn.SyncBatchNorm.convert_sync_batchnorm(m)  # replaces the layers inside m, same parameters
            elif self.main and any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.modules()):
                print(_("note: {module}'s BatchNorm normalises each process's share of the batch (SyncBatchNorm "
                        "needs CUDA): close to a one-process run, not the same").format(module=type(m).__name__))
            for p in m.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    self.hooks.append(p.register_post_accumulate_grad_hook(self._average_grad))

    def _average_grad(self, p: torch.Tensor) -> None:
        t = time.perf_counter()
        dist.all_reduce(p.grad)
        p.grad.div_(self.world)
        traffic.calls += 1
        traffic.bytes += p.grad.numel() * p.grad.element_size()
        traffic.seconds += time.perf_counter() - t

    def detach(self) -> None:
        for h in self.hooks:
            h.remove()
        self.hooks.clear()

    @contextlib.contextmanager
    def stepping(self):
        """While the step function runs: `per_example` draws for the global batch."""
        global _share
        _share = (self.rank, self.world)
        try:
            yield
        finally:
            _share = None

    @contextlib.contextmanager
    def failing(self, history):
        """An error leaving the loop is announced with this process's rank and the step."""
        try:
            yield
        except BaseException as e:
            print(failure_message(self.rank, self.world, history.step + 1, e), file=sys.stderr, flush=True)
            raise

    def interrupted(self) -> None:
        raise KeyboardInterrupt from None  # every process stops; a new launch resumes from the checkpoint

    def say(self, *args) -> None:
        if self.main:
            print(*args)

    def wait(self) -> None:
        dist.barrier()  # rank 0's checkpoint is on disk before any rank goes on


def failure_message(rank: int, world: int, step: int, error: BaseException) -> str:
    """What a process says when training stops with an error (the others are stopped by torchrun)."""
    who = f"[rank {rank} of {world}]"  # a tag, as torchrun's own lines have, kept in English to find it
    if isinstance(error, KeyboardInterrupt):
        return _("{who} interrupted at step {step}: every process stops; a new launch resumes from the last "
                 "checkpoint.").format(who=who, step=step)
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip())  # gloo's errors start with [file:line]
    text = text.splitlines()[0][:200] if text else ""
    if isinstance(error, dist.DistError) or "gloo" in text.lower() or "connection closed" in text.lower():
        return _("{who} stopped at step {step}: another process failed or stopped answering ({error}); its own "
                 "message says why.").format(who=who, step=step, error=text)
    return _("{who} failed at step {step} with {type}: {error}\n{who} torchrun stops the other processes; fix the "
             "cause and launch again: training resumes from rank 0's last checkpoint.").format(
        who=who, step=step, type=type(error).__name__, error=text)


def join(device: torch.device, batch_size: int) -> Solo:
    """What `fit` trains with on `device`: a Solo outside torchrun, else this process's Ranks
    (starting the process group at the first call)."""
    if not launched():
        return Solo()
    if device.type == "cuda" and device.index != local_rank():
        raise ValueError(_("under torchrun each process trains on its own GPU: this one (LOCAL_RANK={rank}) got "
                           "data on {device}; put it on gh.device() or cuda:{rank}").format(
            rank=local_rank(), device=device))
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo",
                                timeout=datetime.timedelta(seconds=TIMEOUT_SECONDS))
    ranks = Ranks(device)
    if batch_size % ranks.world:
        raise ValueError(_("batch_size={batch_size} does not split into {world} equal shares: use a multiple of "
                           "{world} (each process takes batch_size / {world} rows of every batch)").format(
            batch_size=batch_size, world=ranks.world))
    return ranks


def leave() -> None:
    """End this process's part in the process group (if any), e.g. at the end of a script."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def quiet():
    """Only rank 0 prints inside this block (the other ranks' output is dropped)."""
    if is_main():
        yield
    else:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            yield


def _cpu(obj):
    """A state dict with every tensor moved to the CPU (to send it to the other ranks)."""
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj
