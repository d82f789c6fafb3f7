"""A small training run for the kill tests: python fault_worker.py CHECKPOINT RESULT [slow].

Writes RESULT (JSON: the per-step losses) when training completes. A marker file
CHECKPOINT.running appears once training has started; with `slow`, every checkpoint write
takes about 0.2 s and CHECKPOINT.writing appears while one is under way, so a test can kill
the process in the middle of a write.
"""
import io
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

import genai_helpers as gh

path, result = Path(sys.argv[1]), Path(sys.argv[2])
slow = len(sys.argv) > 3 and sys.argv[3] == "slow"
torch.set_num_threads(1)

if slow:
    real_save = torch.save

    def slow_save(obj, f, *a, **k):
        buf = io.BytesIO()
        real_save(obj, buf, *a, **k)
        data = buf.getvalue()
        Path(f"{path}.writing").touch()
        chunk = len(data) // 8 + 1
        for i in range(0, len(data), chunk):
            f.write(data[i:i + chunk])
            f.flush()
            time.sleep(0.025)
        Path(f"{path}.writing").unlink()

    torch.save = slow_save

g = torch.Generator().manual_seed(0)
x = torch.randn(256, 8, generator=g)
y = (x @ torch.randn(8, generator=g)).sin()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 256), nn.Tanh(), nn.Dropout(0.1), nn.Linear(256, 1))
opt = gh.adam(model.parameters(), lr=3e-3)


def step(batch):
    Path(f"{path}.running").touch()
    xb, yb = batch
    loss = (model(xb).squeeze(1) - yb).pow(2).mean()  # dropout: the RNG state matters on resume
    opt.zero_grad()
    loss.backward()
    opt.step()
    time.sleep(0.02)
    return {"loss": loss}


hist = gh.fit(step, (x, y), state={"model": model, "opt": opt}, epochs=6, batch_size=32,
              checkpoint=path, checkpoint_every=3, plot=False, progress=False)
result.write_text(json.dumps({"losses": hist.losses["loss"], "step": hist.step}))
