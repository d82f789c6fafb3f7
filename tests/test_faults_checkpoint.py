"""Checkpoints: safe loading, mismatches named, junk refused, writes atomic."""

import pytest
import torch
from torch import nn

import genai_helpers as gh
from genai_helpers.checkpoint import CheckpointError

def test_load_checkpoint_of_another_architecture_names_the_mismatch(task, tmp_path):
    model, opt, _ = task()
    gh.save_checkpoint(tmp_path / "a.pt", {"model": model, "opt": opt})
    other = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    with pytest.raises(CheckpointError, match=r"0\.weight: \(16, 4\) in the checkpoint, \(8, 4\) here"):
        gh.load_checkpoint(tmp_path / "a.pt", {"model": other, "opt": gh.adam(other.parameters())})
    with pytest.raises(CheckpointError, match="is a Sequential in the checkpoint but a VAE here"):
        gh.load_checkpoint(tmp_path / "a.pt", {"model": gh.vae.VAE(2), "opt": opt})
def test_random_bytes_and_plain_state_dicts_are_not_checkpoints(task, tmp_path):
    model, opt, _ = task()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        gh.load_checkpoint(junk, {"model": model})
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    with pytest.raises(CheckpointError, match="not a genai_helpers checkpoint"):
        gh.load_checkpoint(plain, {"model": model})
def test_save_is_atomic_and_leaves_no_temporary_files(task, tmp_path):
    model, opt, _ = task()
    for _ in range(3):
        gh.save_checkpoint(tmp_path / "a.pt", {"model": model, "opt": opt})
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


class Payload:
    """An object whose unpickling would run code: torch.load(weights_only=False) would do it."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('pwned')",))


def test_a_pickle_that_would_run_code_is_refused_not_executed(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, opt, _ = task()
    evil = tmp_path / "evil.pt"
    torch.save({"format": "genai_helpers-checkpoint-1", "state": {"model": Payload()}}, evil)
    with pytest.raises(CheckpointError, match="is not a checkpoint"):
        gh.load_checkpoint(evil, {"model": model})
    assert not (tmp_path / "PWNED").exists()


def test_a_checkpoint_from_another_chapter_names_what_differs(tmp_path):
    G, D = gh.gan.DCGANGenerator(), gh.gan.DCGANDiscriminator()
    gh.save_checkpoint(tmp_path / "gan.pt", {"G": G, "D": D})
    vae = gh.vae.VAE(16)
    with pytest.raises(CheckpointError) as err:
        gh.load_checkpoint(tmp_path / "gan.pt", {"model": vae})
    msg = str(err.value)
    assert "the checkpoint has 'D', which is not given here" in msg and "'model' is not in the checkpoint" in msg


def test_a_truncated_checkpoint_is_damaged_not_a_traceback(task, tmp_path):
    model, opt, _ = task()
    path = gh.save_checkpoint(tmp_path / "a.pt", {"model": model, "opt": opt})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="is not a checkpoint \\(or it is damaged\\)"):
        gh.load_checkpoint(path, {"model": model})


def test_fit_sets_a_damaged_cache_aside_and_trains_anew(regression, task, tmp_path, capsys):
    path = tmp_path / "reg.pt"
    path.write_bytes(b"\x00" * 1000)
    model, opt, step = task()
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=1, batch_size=32,
                  checkpoint=path, plot=False, progress=False)
    assert hist.epoch == 1 and "not a checkpoint" in capsys.readouterr().out
    assert (tmp_path / "reg.stale.pt").exists() and gh.checkpoint.read_checkpoint(path)
