"""`python -m genai_helpers prepare` and `train`: what they cache is what the chapters load."""
import json
import time

import pytest

import genai_helpers as gh
from genai_helpers.__main__ import main
from genai_helpers.prepare import prepare


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_CHECKPOINTS", str(tmp_path))
    return tmp_path


def test_prepare_trains_once_then_the_chapter_cell_is_a_cache_hit(cache, capsys):
    first = prepare(["vae16"])
    assert first[0]["trained"] and first[0]["files"] == [str(cache / "vae_latent16-quick.pt")]
    again = prepare(["vae16"])
    assert not again[0]["trained"]
    assert "1 models ready" in capsys.readouterr().out

    t = time.perf_counter()
    _, hist = gh.vae.reference_vae(gh.load_mnist(), plot=False)  # chapter 02's training cell
    assert time.perf_counter() - t < 5
    assert "Loaded from" in capsys.readouterr().out and hist.step > 0

    # the same name with another architecture is set aside and retrained, never loaded wrongly
    gh.vae.train_vae(gh.load_mnist(), epochs=1, latent_dim=8, name="vae_latent16", plot=False)
    assert "does not match" in capsys.readouterr().out
    assert (cache / "vae_latent16-quick.stale.pt").exists()


def test_prepare_names_the_models_it_knows(cache, capsys):
    assert main(["prepare", "vea16"]) == 2
    err = capsys.readouterr().err
    assert "unknown model(s) vea16" in err and "vae16" in err and "dcgan" in err
    assert list(cache.iterdir()) == []


def test_train_trains_one_model_into_the_file_prepare_reads(cache, monkeypatch, capsys, regression, task):
    def tiny(mnist):  # a MODELS entry: the chapter's own training call
        model, opt, step = task()
        gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=2, batch_size=32,
               checkpoint="tiny", desc="tiny", plot=False, progress=False)

    monkeypatch.setitem(gh.prepare.MODELS, "tiny", ("--", tiny))
    report = cache / "train.json"
    assert main(["train", "tiny", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "tiny: epochs 0->2" in out  # the training lines are shown
    row = json.loads(report.read_text())
    assert row["processes"] == 1 and row["all_reduce"]["calls"] == 0
    assert [(r["file"], r["steps"]) for r in row["runs"]] == [(str(cache / "tiny-quick.pt"), 16)]
    assert not prepare(["tiny"])[0]["trained"]  # the checkpoint prepare and the chapters read


def test_train_names_the_models_it_knows(cache, capsys):
    assert main(["train", "vea"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'vea'" in err and "vae, vae16" in err and "dcgan" in err
    assert list(cache.iterdir()) == []
