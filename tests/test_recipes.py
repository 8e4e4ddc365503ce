"""Every registered model has a recipe from a named rule with a source; recipes may
depend on the data set; momentum's form is a recipe field."""

import dataclasses
from pathlib import Path

import pytest
import torch

from cnnkit.config import SHORT_SCHEDULE, Recipe, TrainConfig, TrainOptions
from cnnkit.errors import UnknownNameError
from cnnkit.models import model_entry, model_names, recipe_for, recipe_rule_for
from cnnkit.runs.checkpoint import TRAIN_CONFIG
from cnnkit.trainer import sgd_one_cycle
from tests.helpers import run_cli


@pytest.mark.parametrize("dataset", ["mnist", "cifar10", "imagenet:/data/ilsvrc"])
def test_every_model_has_a_recipe_with_a_source(dataset):
    for name in model_names():
        rule = recipe_rule_for(name, dataset)
        assert rule in (*model_entry(name).recipes, SHORT_SCHEDULE) and rule.recipe.source, name


def test_imagenet_recipes_are_the_papers():
    alexnet = recipe_for("alexnet", "imagenet:/x")
    # Krizhevsky et al. 2012, Sec. 5: batch 128, lr 0.01, momentum 0.9, decay 5e-4.
    assert (alexnet.batch_size, alexnet.lr, alexnet.momentum) == (128, 0.01, 0.9)
    assert alexnet.weight_decay == 5e-4 and not alexnet.nesterov
    resnet = recipe_for("resnet50", "imagenet:/x")  # He et al. 2016, Sec. 3.4
    assert (resnet.batch_size, resnet.lr, resnet.weight_decay) == (256, 0.1, 1e-4)
    assert recipe_for("resnet50", "mnist") != resnet  # the data set chooses the rule


def test_an_unregistered_model_has_no_recipe():
    with pytest.raises(UnknownNameError, match="'lenet99'"):
        recipe_for("lenet99")


@pytest.mark.parametrize("nesterov", [True, False])
def test_the_optimiser_takes_momentum_as_the_recipe_says(nesterov):
    model = torch.nn.Linear(3, 2)
    optimizer, _ = sgd_one_cycle(model, Recipe(nesterov=nesterov), total_steps=10)
    assert optimizer.param_groups[0]["nesterov"] is nesterov
    assert optimizer.param_groups[0]["momentum"] == 0.9


def test_configs_saved_before_these_fields_keep_nesterov():
    saved = TrainConfig("lenet5", "mnist", recipe_for("lenet5"), Path("runs/x")).to_dict()
    for field in ("nesterov", "source"):
        del saved["recipe"][field]  # as checkpoints written before them hold it
    assert TRAIN_CONFIG.read(saved).recipe.nesterov is True  # what they trained with


def test_recipes_command_prints_the_recipe_and_its_source():
    result = run_cli("recipes", "lenet5")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("lenet5 "))
    for value in ("15", "128", "0.01", "shift", "Nesterov", "Choosing the LeNet-5 recipe"):
        assert value in row
    imagenet = run_cli("recipes", "vgg16", "--dataset", "imagenet:/x")
    assert "Simonyan and Zisserman 2015" in imagenet.stdout and "classical" in imagenet.stdout


def test_train_options_are_the_command_line_options_with_the_same_defaults():
    """``cnnkit train``'s options and ``TrainOptions`` are one declaration: every option
    is a field with the same default, and every field but the Python-only ones is an
    option. The command's values are parsed from no arguments, before any callback."""
    from cnnkit.cli.train import train as train_command

    fields = {field.name: field.default for field in dataclasses.fields(TrainOptions)}
    parsed = train_command.make_context("train", [], resilient_parsing=True).params
    assert set(fields) - set(parsed) == {"recipe", "holdout"}  # from Python only
    assert set(parsed) <= set(fields)
    assert TrainOptions(**parsed) == TrainOptions()


def test_adam_only_where_the_recipe_is_adams():
    """--optimizer adam on a model whose recipe is SGD's is refused, never trained as SGD."""
    from cnnkit.errors import ConfigError
    from cnnkit.models.registry import recipe_for

    assert recipe_for("speedrun", "mnist", "adam").optimizer == "adam"
    with pytest.raises(ConfigError, match="lenet5's recipe on mnist trains with sgd"):
        recipe_for("lenet5", "mnist", "adam")
