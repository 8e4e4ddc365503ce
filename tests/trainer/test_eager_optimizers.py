"""The optimisers without torch._dynamo: torch's SGD bit for bit, and no import."""

import pytest
import torch
from torch import nn

from cnnkit.trainer.eager_optimizers import LeanAdam, LeanSGD
from tests.helpers import python_output


def five_steps_each(ours_class, theirs_class, settings: dict):
    """Two equal linear layers after five steps on one batch, one by each optimiser."""
    torch.manual_seed(0)
    ours, theirs = nn.Linear(30, 20), nn.Linear(30, 20)
    theirs.load_state_dict(ours.state_dict())
    optimizers = (
        ours_class(ours.parameters(), **settings),
        theirs_class(theirs.parameters(), **settings),
    )
    x = torch.randn(16, 30)
    for _ in range(5):
        for model, optimizer in zip((ours, theirs), optimizers, strict=True):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
    return ours, theirs, optimizers


@pytest.mark.parametrize("nesterov", [True, False])
def test_lean_sgd_takes_torchs_sgd_steps_bit_for_bit(nesterov: bool) -> None:
    settings = {"lr": 0.05, "momentum": 0.9, "nesterov": nesterov, "weight_decay": 5e-4}
    ours, theirs, optimizers = five_steps_each(LeanSGD, torch.optim.SGD, settings)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    assert optimizers[0].state_dict()["state"].keys() == optimizers[1].state_dict()["state"].keys()


def test_lean_adam_takes_torchs_adam_steps_bit_for_bit() -> None:
    settings = {"lr": 0.01, "betas": (0.7, 0.9), "weight_decay": 1e-4}
    ours, theirs, _ = five_steps_each(LeanAdam, torch.optim.Adam, settings)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)


def test_training_steps_do_not_import_dynamo() -> None:
    script = (
        "import sys, torch\n"
        "from cnnkit.config import Recipe\n"
        "from cnnkit.trainer import build_optimizer\n"
        "model = torch.nn.Linear(3, 2)\n"
        "for name in ('sgd', 'adam'):\n"
        "    optimizer, scheduler = build_optimizer(model, Recipe(optimizer=name), 10)\n"
        "    model(torch.randn(4, 3)).sum().backward()\n"
        "    optimizer.step(); scheduler.step(); optimizer.zero_grad()\n"
        "    optimizer.load_state_dict(optimizer.state_dict())\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    stdout = python_output(script)
    assert stdout.strip() == "False"
