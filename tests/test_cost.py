"""gh.cost: parameters, counted FLOPs and measured throughput, on hand-checkable cases."""
import pytest
import torch
from torch import nn

from genai_helpers import cost, load_mnist


def test_parameters_and_linear_flops():
    layer = nn.Linear(10, 7)
    assert cost.parameters(layer) == 10 * 7 + 7
    x = torch.randn(5, 10, requires_grad=True)
    assert cost.count_flops(layer, x) == 2 * 5 * 10 * 7
    assert cost.count_flops(lambda v: layer(v).sum().backward(), x) == 3 * 2 * 5 * 10 * 7


def tiny_workload(batch_size=4):
    model = nn.Linear(6, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss}

    data = torch.randn(10, 6, requires_grad=False)
    return cost.Workload("tiny", {"model": model, "opt": opt}, step, data, batch_size,
                         lambda n: model(torch.zeros(n, 6)))


def test_flops_per_sample_counts_forward_and_backward():
    w = tiny_workload()
    f = cost.flops_per_sample(w)
    assert f["params"] == 21
    assert f["generate_flops"] == 2 * 6 * 3
    # forward 2*6*3 per row, backward for the weights only (the data need no gradient): 2x forward
    assert f["train_flops"] == 2 * 2 * 6 * 3


def test_rows_cycle_through_the_data():
    w = tiny_workload()
    assert torch.equal(w.rows(13)[10:], w.data[:3])


def test_throughput_is_positive_for_every_workload():
    speed = cost.throughput({"a": tiny_workload(), "b": tiny_workload(8)}, steps=2, warmup=1, repeats=1)
    assert set(speed) == {"a", "b"} and all(v > 0 for v in speed.values())
    assert cost.matmul_rate(64, repeats=1) > 0


def test_dcgan_workload_rejects_bad_widths():
    mnist = load_mnist()
    for bad in (0, 3, 7.5, "32"):
        with pytest.raises(ValueError, match="even number"):
            cost.dcgan_workload(mnist, bad)
    assert cost.flops_per_sample(cost.dcgan_workload(mnist, 4))["train_flops"] > 0
