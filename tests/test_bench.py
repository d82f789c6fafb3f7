"""The benchmark compares like with like: on the same batch and weights, the textbook loop's
pieces and the course's compute the same losses (the numbers are in BENCHMARKS.md, not here)."""
import pytest
import torch

import genai_helpers as gh
from genai_helpers import bench
from genai_helpers.seq2seq import date_data, masked_loss, teacher_inputs


@pytest.mark.parametrize("parts, batch, atol", [
    (lambda fast: bench.vae_parts(fast=fast)[2], torch.rand(16, 1, 28, 28), 1e-3),
    (lambda fast: bench.dcgan_parts(fast=fast)[1], torch.rand(8, 1, 28, 28) * 2 - 1, 1e-4),
], ids=["vae", "dcgan"])
def test_steps_agree_between_loops(parts, batch, atol):
    slow, fast = parts(False), parts(True)
    torch.manual_seed(3)
    a = slow(batch)
    torch.manual_seed(3)
    b = fast(batch)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=atol)


def test_textbook_decoder_is_the_models_teacher_forcing():
    data = date_data(64, n_test=1000)
    model, _, _ = bench.seq2seq_parts(data)
    src, n, y = (t[:16] for t in data["train"])
    with torch.no_grad():
        fast, _ = model(src[:, :int(n.max())], n, teacher_inputs(y))  # trimmed to the longest input
        slow = bench.textbook_decoder(model, src, n, teacher_inputs(y))  # padded, keys every step
    torch.testing.assert_close(slow, fast, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(masked_loss(slow, y), masked_loss(fast, y))


def test_item_dataset_converts_like_totensor():
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    x, y = bench.ItemDataset(images, torch.arange(5))[2]
    assert x.dtype == torch.float32 and torch.equal(x, images[2].float() / 255) and y == 2


def test_both_loops_take_the_requested_steps():
    gh.setup(quiet=True)
    model, opt, step = bench.vae_parts()
    hist = bench.course_loop(step, torch.rand(40, 1, 28, 28), {"model": model, "opt": opt}, 8, 3)
    assert hist.step == 3
    _, _, step = bench.vae_parts(fast=False)
    losses = bench.textbook_loop(step, bench.ItemDataset(torch.zeros(20, 1, 28, 28, dtype=torch.uint8)), 8, 5, "cpu")
    assert len(losses) == 5 and all(isinstance(v, float) for v in losses)
