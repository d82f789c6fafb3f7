import copy

import pytest
import torch
from torch import nn

import genai_helpers as gh
from genai_helpers.checkpoint import CheckpointError


def regression(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
    return x, y


def task(seed=0, lr=0.05):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = gh.adam(model.parameters(), lr=lr)

    def step(batch):
        x, y = batch
        loss = (model(x).squeeze(1) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    return model, opt, step


def run(epochs, **kw):
    model, opt, step = task()
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=epochs,
                  batch_size=32, plot=False, progress=False, **kw)
    return model, opt, hist


def test_fit_learns_and_records_history():
    model, opt, hist = run(5, eval_fn=lambda: {"val": torch.tensor(1.5)})
    assert hist.epoch == 5 and hist.step == 5 * 8 and hist.batch == 0
    assert len(hist.losses["loss"]) == 40
    assert hist.epoch_mean("loss", -1) < 0.2 * hist.epoch_mean("loss", 0)
    assert hist.eval("val") == [1.5] * 5
    assert not model.training  # left in eval mode


def test_step_must_return_a_dict():
    model, opt, _ = task()
    with pytest.raises(TypeError, match="dict of scalar losses"):
        gh.fit(lambda b: 1.0, regression(), state={"model": model}, epochs=1, batch_size=32,
               plot=False, progress=False)


def test_nan_stops_names_the_step_and_restores_last_good_weights(capsys):
    model, opt, step = task()
    x, y = regression()
    seen = {}

    def poisoned(batch):
        seen["n"] = seen.get("n", 0) + 1
        if seen["n"] == 11:
            seen["before"] = copy.deepcopy(model.state_dict())
            batch = (batch[0] * float("nan"), batch[1])
        return step(batch)

    hist = gh.fit(poisoned, (x, y), state={"model": model, "opt": opt}, epochs=3, batch_size=32,
                  plot=False, progress=False)
    assert hist.stopped and "step 11" in hist.stopped and "nan" in hist.stopped
    assert "STOPPED" in capsys.readouterr().out
    assert hist.step == 10 and len(hist.losses["loss"]) == 10
    for k, v in model.state_dict().items():
        assert torch.isfinite(v).all()
        torch.testing.assert_close(v, seen["before"][k])
    # optimiser state is finite too, so training can go on
    assert all(torch.isfinite(t).all() for s in opt.state.values() for t in s.values() if torch.is_tensor(t))
    hist = gh.fit(step, (x, y), state={"model": model, "opt": opt}, epochs=3, batch_size=32,
                  history=hist, plot=False, progress=False)
    assert hist.stopped is None and hist.epoch == 3


def test_huge_learning_rate_is_caught():
    model, opt, step = task(lr=1e30)
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=5, batch_size=32,
                  plot=False, progress=False)
    assert hist.stopped and "not finite" in hist.stopped
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_keyboard_interrupt_keeps_model_and_history_and_continues():
    model, opt, step = task()
    data = regression()
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return step(batch)

    hist = gh.fit(flaky, data, state={"model": model, "opt": opt}, epochs=3, batch_size=32,
                  plot=False, progress=False)
    assert "interrupted" in hist.stopped and hist.step == 12 and hist.epoch == 1 and hist.batch == 4
    hist = gh.fit(flaky, data, state={"model": model, "opt": opt}, epochs=3, batch_size=32,
                  history=hist, plot=False, progress=False)
    assert hist.stopped is None and hist.step == 24 and len(hist.losses["loss"]) == 24
    # the same numbers as a run that was never interrupted
    _, _, ref = run(3)
    assert hist.losses["loss"] == pytest.approx(ref.losses["loss"], abs=1e-6)


def test_checkpoint_round_trip_resumes_at_the_same_step_with_the_same_optimiser(tmp_path):
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


def test_finished_checkpoint_is_a_cache_hit(tmp_path, capsys):
    path = tmp_path / "reg.pt"
    run(2, checkpoint=path)
    model, opt, step = task(seed=5)
    calls = []
    hist = gh.fit(lambda b: calls.append(1) or step(b), regression(), state={"model": model, "opt": opt},
                  epochs=2, batch_size=32, checkpoint=path, plot=False, progress=False)
    assert calls == [] and hist.epoch == 2 and "Loaded" in capsys.readouterr().out


def test_stale_cache_is_retrained_not_loaded(tmp_path, capsys):
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


def test_load_checkpoint_of_another_architecture_names_the_mismatch(tmp_path):
    model, opt, _ = task()
    gh.save_checkpoint(tmp_path / "a.pt", {"model": model, "opt": opt})
    other = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    with pytest.raises(CheckpointError, match=r"0\.weight: \(16, 4\) in the checkpoint, \(8, 4\) here"):
        gh.load_checkpoint(tmp_path / "a.pt", {"model": other, "opt": gh.adam(other.parameters())})
    with pytest.raises(CheckpointError, match="is a Sequential in the checkpoint but a VAE here"):
        gh.load_checkpoint(tmp_path / "a.pt", {"model": gh.vae.VAE(2), "opt": opt})


def test_random_bytes_and_plain_state_dicts_are_not_checkpoints(tmp_path):
    model, opt, _ = task()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        gh.load_checkpoint(junk, {"model": model})
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    with pytest.raises(CheckpointError, match="not a genai_helpers checkpoint"):
        gh.load_checkpoint(plain, {"model": model})


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    model, opt, _ = task()
    for _ in range(3):
        gh.save_checkpoint(tmp_path / "a.pt", {"model": model, "opt": opt})
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_out_of_memory_suggests_a_smaller_batch_and_keeps_the_model():
    model, opt, step = task()
    calls = {"n": 0}

    def hungry(batch):
        calls["n"] += 1
        if calls["n"] == 5:
            step(batch)  # the weights change, then memory runs out
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(batch)

    hist = gh.fit(hungry, regression(), state={"model": model, "opt": opt}, epochs=2, batch_size=32,
                  plot=False, progress=False)
    assert "out of memory" in hist.stopped and "batch_size=16" in hist.stopped and hist.step == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())
