"""The training loop: it learns, records the history, resumes from checkpoints, caches models."""
import pytest
import torch
from torch import nn

import genai_helpers as gh


def test_fit_learns_and_records_history(run):
    model, opt, hist = run(5, eval_fn=lambda: {"val": torch.tensor(1.5)})
    assert hist.epoch == 5 and hist.step == 5 * 8 and hist.batch == 0
    assert len(hist.losses["loss"]) == 40
    assert hist.epoch_mean("loss", -1) < 0.2 * hist.epoch_mean("loss", 0)
    assert hist.eval("val") == [1.5] * 5
    assert not model.training  # left in eval mode


def test_step_must_return_a_dict(regression, task):
    model, opt, _ = task()
    with pytest.raises(TypeError, match="dict of scalar losses"):
        gh.fit(lambda b: 1.0, regression(), state={"model": model}, epochs=1, batch_size=32,
               plot=False, progress=False)


def test_checkpoint_round_trip_resumes_at_the_same_step_with_the_same_optimiser(regression, run, task, tmp_path):
    path = tmp_path / "reg.pt"
    _, _, ref = run(4)
    m1, o1, h1 = run(2, checkpoint=path)
    assert h1.epoch == 2 and path.exists()
    model, opt, step = task(seed=123)  # other initial weights: all must come from the file
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=4, batch_size=32,
                  checkpoint=path, plot=False, progress=False)
    assert hist.step == 32 and hist.losses["loss"] == pytest.approx(ref.losses["loss"], abs=1e-6)
    payload = gh.checkpoint.read_checkpoint(path)
    assert payload["history"]["step"] == 32
    assert payload["state"]["opt"]["state"][0]["step"].item() == 32


def test_finished_checkpoint_is_a_cache_hit(regression, run, task, tmp_path, capsys):
    path = tmp_path / "reg.pt"
    run(2, checkpoint=path)
    model, opt, step = task(seed=5)
    calls = []
    hist = gh.fit(lambda b: calls.append(1) or step(b), regression(), state={"model": model, "opt": opt},
                  epochs=2, batch_size=32, checkpoint=path, plot=False, progress=False)
    assert calls == [] and hist.epoch == 2 and "Loaded" in capsys.readouterr().out


def test_stale_cache_is_retrained_not_loaded(regression, run, tmp_path, capsys):
    path = tmp_path / "reg.pt"
    run(1, checkpoint=path, config={"width": 16})
    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = gh.adam(wide.parameters())
    hist = gh.fit(lambda b: {"loss": (wide(b[0]).squeeze(1) - b[1]).pow(2).mean()}, regression(),
                  state={"model": wide, "opt": opt}, epochs=1, batch_size=32, checkpoint=path,
                  config={"width": 32}, plot=False, progress=False)
    out = capsys.readouterr().out
    assert "does not match" in out and "model.0.bias: (16,) in the checkpoint, (32,) here" in out
    assert hist.step == 8
    assert (tmp_path / "reg.stale.pt").exists()


def test_eval_every_steps_records_step_epoch_and_seconds(regression, task):
    model, opt, step = task()
    seen = []
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=2, batch_size=32,
                  eval_fn=lambda: seen.append(1) or {"val": 1.0}, eval_every=5, plot=False, progress=False)
    assert [e["step"] for e in hist.evals] == [5, 10, 15, 16]  # every 5 steps, and after the last
    assert hist.evals[1]["epoch"] == 1.25 and all(e["seconds"] >= 0 for e in hist.evals)
    assert len(seen) == 4


@pytest.mark.parametrize("conv, cpu_bf16, expected", [
    (True, "1", True),  # convolutions on a CPU with AMX: bf16 (1.6x, same quality; BENCHMARKS.md)
    (False, "1", False),  # MLPs and GRUs get slower in bf16 on a CPU: fp32
    (True, "0", False),  # a CPU without native bf16 would emulate it: fp32
    ("gan", "1", False),  # the DCGAN's samples got worse in bf16: fp32
])
def test_cpu_autocast_only_where_it_pays(monkeypatch, conv, cpu_bf16, expected):
    monkeypatch.setenv("GENAI_CPU_BF16", cpu_bf16)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()) if conv else nn.Linear(4, 2)
    if conv == "gan":
        model = nn.Sequential(gh.gan.DCGANDiscriminator(2), nn.Flatten())
    seen = []

    def step(x):
        seen.append(torch.is_autocast_enabled("cpu"))
        return {"loss": torch.tensor(0.0)}

    data = torch.zeros(8, 1, 28, 28) if conv else torch.zeros(8, 4)
    gh.fit(step, data, state={"model": model}, epochs=1, batch_size=4, plot=False, progress=False)
    assert seen == [expected, expected]
    assert gh.train.trains_in_bf16(torch.device("cpu"), [model]) == expected  # what chapter 06's table says
    gh.fit(step, data, state={"model": model}, epochs=1, batch_size=4, plot=False, progress=False, amp=False)
    assert seen[2:] == [False, False]


def test_checkpoint_names_with_dots_stay_in_the_checkpoint_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_CHECKPOINTS", str(tmp_path))
    assert gh.checkpoint.checkpoint_path("vae_latent16_beta-0.0") == tmp_path / "vae_latent16_beta-0.0-quick.pt"
    assert gh.checkpoint.checkpoint_path("elsewhere/model.pt") == gh.checkpoint.Path("elsewhere/model.pt")
    assert gh.checkpoint.checkpoint_path("model.pt") == gh.checkpoint.Path("model.pt")
