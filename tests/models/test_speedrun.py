"""The speed recipe trains through cnnkit's own front door (its accuracy and time are
``cnnkit bench``'s and ``benchmarks/recipe_search.py``'s job, not a test's)."""

import math

import torch

from cnnkit.config import TrainOptions
from cnnkit.models import build_model, recipe_for
from cnnkit.runs import load_checkpoint
from cnnkit.training import train


def test_speedrun_trains_one_epoch_of_adam_on_real_mnist(tmp_path) -> None:
    recipe = recipe_for("speedrun")
    assert (recipe.optimizer, recipe.epochs, recipe.batch_size) == ("adam", 1, 256)
    options = TrainOptions(
        model="speedrun",
        train_limit=1024,
        test_limit=500,
        out=tmp_path,
        progress=False,
        report=False,
    )
    outcome = train(options)
    assert outcome is not None
    (record,) = outcome.result.history
    assert math.isfinite(record.train_loss)
    assert record.train_loss < math.log(10)  # four Adam steps: below chance's loss
    assert 0.0 <= record.test_top1_error < 0.9
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint.config is not None and checkpoint.config.recipe.optimizer == "adam"
    assert checkpoint.state["optimizer_state"]["param_groups"][0]["betas"] == (0.7, 0.9)
    model = build_model("speedrun")
    model.load_state_dict(checkpoint.state["model_state"])
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
