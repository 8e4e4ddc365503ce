"""The one-cycle schedule: its shape, tiny runs, and equivalence of resumed state."""

import math

import pytest
import torch

from cnnkit.trainer.schedule import OneCycle, one_cycle


def test_warm_up_then_cosine_to_zero():
    schedule = OneCycle(total_steps=100, warmup_fraction=0.25)
    assert [schedule(s) for s in (0, 12, 24)] == pytest.approx([1 / 25, 13 / 25, 1.0])
    assert schedule(24 + 38) == pytest.approx(0.5 * (1 + math.cos(math.pi * 38 / 75)))
    assert schedule(99) == pytest.approx(0.0, abs=1e-12)
    decay = [schedule(s) for s in range(25, 100)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))


@pytest.mark.parametrize("total", [1, 2, 3, 4])
def test_tiny_runs_have_a_schedule(total):
    values = [OneCycle(total, 0.25)(step) for step in range(total)]
    assert all(0 <= v <= 1 for v in values) and max(values) == 1.0


def test_lambda_lr_applies_it_and_restores_from_its_state():
    def make():
        parameter = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([parameter], lr=0.1)
        return optimizer, one_cycle(optimizer, total_steps=10, warmup_fraction=0.2)

    optimizer, scheduler = make()
    rates = []
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    expected = [0.1 * OneCycle(10, 0.2)(step) for step in range(1, 7)]
    assert rates == pytest.approx(expected)
    resumed_optimizer, resumed = make()
    resumed.load_state_dict(scheduler.state_dict())
    resumed_optimizer.load_state_dict(optimizer.state_dict())
    resumed_optimizer.step()
    resumed.step()
    assert resumed.get_last_lr()[0] == pytest.approx(0.1 * OneCycle(10, 0.2)(7))
