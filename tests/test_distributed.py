"""gh.fit under torchrun, on 2 CPU processes (gloo): the one-process parameters after the same 20
steps of the same global batch (chapter 02's VAE and chapter 03's MLP GAN); a rank that fails
ends the run with a message instead of a hang, and the run resumes from rank 0's checkpoint with
another number of processes to the same parameters."""
import os
import subprocess
import sys
import time

import pytest
import torch

import distributed_worker as worker
import genai_helpers as gh
from genai_helpers import distributed
from genai_helpers.checkpoint import read_checkpoint
from genai_helpers.runtime import single_thread

TOLERANCE = 1e-4  # 2 processes vs 1 after 20 steps: only the order of additions differs (about 1e-6)
TRAINED = 100 * TOLERANCE  # how far 20 steps move the weights at least, so that a match means something
LAUNCH_SECONDS = 90  # a launch takes 10 to 20 s on 2 busy cores; longer is a hang


def torchrun(images, *args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(worker.__file__), str(images), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core each (torchrun's default, said aloud)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_SECONDS)


def largest_difference(a: dict, b: dict) -> float:
    return max((a[m][k].float() - b[m][k].float()).abs().max().item() for m in a for k in a[m])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "images.pt"
    torch.save(gh.load_mnist().train_x[:worker.EXAMPLES].clone(), path)
    return path


@pytest.fixture(scope="module")
def one_process(images):
    x = torch.load(images, weights_only=True)
    with single_thread():  # like each torchrun process
        return {m: worker.train(m, x) for m in worker.MODELS}


@pytest.fixture(scope="module")
def launch(images, tmp_path_factory):
    """One torchrun launch of 2 processes: the VAE and the MLP GAN trained 20 steps (their weights in
    weights.pt), then the VAE again with a checkpoint every 5 steps, whose rank 1 fails at step 13."""
    folder = tmp_path_factory.mktemp("launch")
    t = time.monotonic()
    run = torchrun(images, *worker.MODELS, "--out", str(folder / "weights.pt"),
                   "--then-fail", str(folder / "vae.pt"))
    return run, time.monotonic() - t, folder


def test_two_processes_end_with_the_one_process_parameters(images, one_process, launch):
    run, _, folder = launch
    assert (folder / "weights.pt").exists(), run.stderr[-3000:]
    assert run.stdout.count("2 processes (gloo)") == len(worker.MODELS) + 1  # rank 0 speaks, once per run
    two = torch.load(folder / "weights.pt", weights_only=True)
    x = torch.load(images, weights_only=True)
    for model in worker.MODELS:
        moved = largest_difference(one_process[model], worker.train(model, x, initial=True))
        assert moved > TRAINED, f"{model}: 20 steps moved the weights by {moved:.2g} only"
        diff = largest_difference(two[model], one_process[model])
        assert diff < TOLERANCE, f"{model}: 2 processes end {diff:.2g} away from 1 process"


def test_a_failing_rank_stops_every_process_with_a_message(launch):
    run, seconds, _ = launch
    assert run.returncode != 0
    step = f"failed at step {worker.FAIL_AT} with RuntimeError: rank 1 fails on purpose"
    assert f"[rank 1 of 2] {step}" in run.stderr, run.stderr[-3000:]
    assert "resumes from rank 0's last checkpoint" in run.stderr
    assert seconds < LAUNCH_SECONDS


def test_the_stopped_run_resumes_from_rank_0s_checkpoint_with_one_process(images, one_process, launch, capsys):
    ckpt = launch[2] / "vae.pt"
    saved = read_checkpoint(ckpt)["history"]["step"]
    assert saved == worker.FAIL_AT // worker.CHECKPOINT_EVERY * worker.CHECKPOINT_EVERY
    with single_thread():
        resumed = worker.train("vae", torch.load(images, weights_only=True), checkpoint=ckpt)
    assert f"at step {saved}" in capsys.readouterr().out
    diff = largest_difference(resumed, one_process["vae"])
    assert diff < TOLERANCE, f"resumed with 1 process, the VAE ends {diff:.2g} away from the uninterrupted run"


def test_per_example_noise_is_the_one_process_noise_of_the_same_rows(monkeypatch):
    torch.manual_seed(0)
    whole = torch.randn(8, 3)
    for rank in range(2):
        monkeypatch.setattr(distributed, "_share", (rank, 2))
        torch.manual_seed(0)
        part = distributed.per_example(lambda n: torch.randn(n, 3), 4)
        assert torch.equal(part, whole[4 * rank:4 * rank + 4])
    monkeypatch.setattr(distributed, "_share", None)
    torch.manual_seed(0)
    assert torch.equal(distributed.per_example(lambda n: torch.randn(n, 3), 8), whole)  # outside torchrun


def test_outside_torchrun_fit_runs_alone(monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert type(distributed.join(torch.device("cpu"), 7)) is distributed.Solo
