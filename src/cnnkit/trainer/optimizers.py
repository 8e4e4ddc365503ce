"""The optimiser and learning-rate schedule a recipe trains with: SGD with momentum and
weight decay under a one-cycle schedule (every model's), Adam under the same schedule
(``adam``, the speed recipe's), or LeNet-5's own stochastic diagonal
Levenberg-Marquardt with the paper's eta per pass (``sdlm``)."""

import torch
from torch import nn

from cnnkit.config import Recipe
from cnnkit.trainer.eager_optimizers import LeanAdam, LeanSGD
from cnnkit.trainer.schedule import one_cycle
from cnnkit.trainer.sdlm import SDLM, PaperEtaSchedule


def sgd_one_cycle(
    model: nn.Module, recipe: Recipe, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD with the recipe's momentum (Nesterov's or classical) and weight decay under
    its one-cycle schedule over ``total_steps``: every model's update rule."""
    optimizer = LeanSGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )
    return optimizer, one_cycle(optimizer, total_steps, recipe.warmup_fraction)


# Adam's beta2: train_mnist_fast's search found 0.9 (a second-moment average over about
# ten steps) better than the default 0.999 for a one-epoch schedule (docs/speedrun.md).
ADAM_BETA2 = 0.9


def adam_one_cycle(
    model: nn.Module, recipe: Recipe, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam with betas (``recipe.momentum``, ``ADAM_BETA2``) and the recipe's weight decay
    (torch's: added to the gradient) under its one-cycle schedule over ``total_steps``."""
    optimizer = LeanAdam(
        model.parameters(),
        lr=recipe.lr,
        betas=(recipe.momentum, ADAM_BETA2),
        weight_decay=recipe.weight_decay,
    )
    return optimizer, one_cycle(optimizer, total_steps, recipe.warmup_fraction)


def build_optimizer(
    model: nn.Module, recipe: Recipe, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The recipe's optimiser and its schedule: SGD or Adam one-cycle, or the paper's SDLM
    with the paper's eta per pass (``recipe.lr`` its first pass's)."""
    if recipe.optimizer == "adam":
        return adam_one_cycle(model, recipe, recipe.epochs * steps_per_epoch)
    if recipe.optimizer == "sdlm":
        sdlm = SDLM(model.parameters(), lr=recipe.lr)
        return sdlm, torch.optim.lr_scheduler.LambdaLR(sdlm, PaperEtaSchedule(steps_per_epoch))
    return sgd_one_cycle(model, recipe, recipe.epochs * steps_per_epoch)
