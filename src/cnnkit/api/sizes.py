"""``cnnkit.summary``: the units, weights and connections of a network, layer by layer,
with the lecture's rules of thumb (``analysis``), for a model's name, a module or a run;
``cnnkit.compare``: the lecture's comparison of networks and their training."""

from typing import cast

from torch import nn

from cnnkit.analysis.papers import compare_models
from cnnkit.analysis.size import Shape, model_size, size_report
from cnnkit.analysis.summary import Comparison, Summary
from cnnkit.api.run import Run
from cnnkit.config import is_count
from cnnkit.errors import ConfigError
from cnnkit.models import Classifier


def summary(
    model: str | nn.Module | Run, input: Shape | None = None, num_classes: int | None = None
) -> Summary:
    """The size table of ``model`` (a registered name, a PyTorch module, or a trained
    ``Run``) on one input of shape ``input`` (C, H, W); a cnnkit model's own input size
    by default. ``num_classes`` sizes a named model's output layer [its paper's]."""
    if num_classes is not None and not is_count(num_classes):
        raise ConfigError(f"num_classes={num_classes!r}: expected a whole number, 1 or more")
    if input is not None and not _is_shape(input):
        raise ConfigError(f"input={input!r}: expected a shape (C, H, W) of 3 whole numbers >= 1")
    if isinstance(model, Run):
        return model.summary(input)
    if isinstance(model, str):
        return Summary(model_size(model, input, num_classes))
    if isinstance(model, nn.Module):
        if input is None and not isinstance(model, Classifier):
            raise ConfigError(
                f"input=None: a {type(model).__name__} does not say what it takes; "
                "give input=(C, H, W)"
            )
        shape = tuple(input) if input is not None else cast(Classifier, model).input_size
        return Summary(size_report(model, shape, type(model).__name__))
    raise ConfigError(
        f"model={model!r:.60}: expected a model's name, a PyTorch module or a cnnkit Run"
    )


def _is_shape(value: object) -> bool:
    return isinstance(value, tuple | list) and len(value) == 3 and all(is_count(n) for n in value)


def compare(models: list[str] | tuple[str, ...] = ("lenet1", "lenet5", "alexnet")) -> Comparison:
    """The lecture's comparison table (``cnnkit size --compare``): each network's task,
    data and epochs as its paper states them, its size as counted, and its training
    operations, for models whose papers cnnkit holds the facts of."""
    if isinstance(models, str) or not models:
        raise ConfigError(f"models={models!r}: expected a list of model names")
    return Comparison(compare_models(list(models)))
