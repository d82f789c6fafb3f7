"""NaN/inf losses: training stops at the bad step, names it, and the last good weights come back."""

import copy

import torch

import genai_helpers as gh

def test_nan_stops_names_the_step_and_restores_last_good_weights(regression, task, capsys):
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
def test_huge_learning_rate_is_caught(regression, task):
    model, opt, step = task(lr=1e30)
    hist = gh.fit(step, regression(), state={"model": model, "opt": opt}, epochs=5, batch_size=32,
                  plot=False, progress=False)
    assert hist.stopped and "not finite" in hist.stopped
    assert all(torch.isfinite(p).all() for p in model.parameters())
