"""The recipe and the environment a run trained with, as the report's table shows them:
from its checkpoint's training config (``config.TrainConfig``) and environment record
(``runs.record.Environment``), "not recorded" where an older cnnkit saved neither."""

from cnnkit.config import Recipe, TrainConfig
from cnnkit.runs import Checkpoint
from cnnkit.runs.record import Environment

NOT_RECORDED = "not recorded"
# config.OPTIMIZERS in words (a test holds the two together).
OPTIMISERS = {
    "sgd": "SGD with momentum and weight decay (torch.optim.SGD)",
    "sdlm": "stochastic diagonal Levenberg-Marquardt (LeCun et al. 1998)",
    "adam": "Adam (Kingma and Ba 2015) with weight decay (torch.optim.Adam)",
}


def recipe_rows(checkpoint: Checkpoint) -> list[tuple[str, str]]:
    """(setting, value) rows: the model and data, the recipe, where and how it computed,
    and the versions."""
    config, environment = checkpoint.config, checkpoint.environment
    rows = [("model", checkpoint.record.model), ("data set", checkpoint.record.dataset)]
    if config is None:
        why = "a checkpoint from before cnnkit saved its training config"
        rows.append(("training settings", f"{NOT_RECORDED} ({why})"))
    else:
        rows += training_rows(config, environment)
    if environment is None:
        why = "a checkpoint from before cnnkit saved them"
        return rows + [("cnnkit, torch and Python versions", f"{NOT_RECORDED} ({why})")]
    return rows + [
        ("cnnkit version", environment.cnnkit),
        ("torch version", environment.torch),
        ("Python version", environment.python),
    ]


def training_rows(config: TrainConfig, environment: Environment | None) -> list[tuple[str, str]]:
    recipe = config.recipe
    sdlm = recipe.optimizer == "sdlm"  # momentum, weight decay and warm-up do not apply
    momentum = {
        "sgd": f"{recipe.momentum:g}" + (", Nesterov" if recipe.nesterov else ", classical"),
        "adam": f"{recipe.momentum:g} (Adam's beta1)",
    }
    return [
        ("epochs", f"{recipe.epochs:,}"),
        ("batch size", f"{recipe.batch_size:,}"),
        ("learning rate", f"{recipe.lr:g}" + (" (the first pass's eta)" if sdlm else " (peak)")),
        ("schedule", schedule_text(recipe)),
        ("optimiser", f"{recipe.optimizer}: {OPTIMISERS[recipe.optimizer]}"),
        ("momentum", momentum.get(recipe.optimizer, "does not apply")),
        ("weight decay", "does not apply" if sdlm else f"{recipe.weight_decay:g}"),
        ("label smoothing", f"{recipe.label_smoothing:g}"),
        ("augmentation", recipe.augment),
        ("seed", str(config.seed)),
        ("training images", limit_text(config.train_limit, config.holdout)),
        ("test images", test_text(config)),
        ("device", device_text(config.device, environment)),
        ("precision", config.precision + (", torch.compile" if config.compile else "")),
        ("recipe's source", recipe.source or NOT_RECORDED),
    ]


def schedule_text(recipe: Recipe) -> str:
    """The learning-rate schedule in words, as ``config.Recipe`` defines it."""
    if recipe.optimizer == "sdlm":
        return "LeCun et al. 1998's eta, lowered pass by pass"
    return (
        f"one-cycle: linear warm-up over the first {100 * recipe.warmup_fraction:g}% of the "
        f"steps to {recipe.lr:g}, then cosine decay to zero"
    )


def limit_text(limit: int | None, holdout: int) -> str:
    shown = "all" if limit is None else f"the first {limit:,}"
    return shown + (f", less the last {holdout:,} held out as the test split" if holdout else "")


def test_text(config: TrainConfig) -> str:
    if config.holdout:
        return f"the last {config.holdout:,} training images (the test split unused)"
    return "all" if config.test_limit is None else f"the first {config.test_limit:,}"


def device_text(device: str, environment: Environment | None) -> str:
    """The ``--device`` asked for, and the GPU it ran on where one was used."""
    if environment is None or device == "cpu":
        return device
    if environment.gpu is not None:
        return f"{device} ({environment.gpu})"
    return f"{device} (no CUDA GPU used)"
