"""GPU out of memory inside a step: a message that suggests a smaller batch, the model kept."""

import torch

import genai_helpers as gh

def test_out_of_memory_suggests_a_smaller_batch_and_keeps_the_model(regression, task):
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
