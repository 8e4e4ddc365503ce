"""The models: every architecture cnnkit can build (``names()``, ``create(name)``), each
a ``Classifier`` (``interface``) registered by name with what cnnkit knows of it
(``registry``), one file per family.

A builder takes ``num_classes``, ``in_channels`` and ``image_size`` as keyword
arguments (each defaulting to its paper's value; some take more, such as ResNet's
``small_input``). Importing this package registers every family.
"""

from cnnkit.models.interface import Classifier
from cnnkit.models.registry import (
    REGISTRY,
    Milestone,
    ModelEntry,
    PaperFacts,
    build_model,
    check_model_name,
    create,
    history_line,
    model_entry,
    model_names,
    names,
    recipe_for,
    recipe_rule_for,
    register_model,
)

# Importing a family registers its models; the registry keeps this order, the lecture's
# (docs/model-sizes.md lists the models in it).
# isort: off
from cnnkit.models import lenet1989, lenet, alexnet, zfnet, vgg, googlenet, resnet, small  # noqa: E402
from cnnkit.models import speedrun  # noqa: E402

# isort: on

FAMILIES = (lenet1989, lenet, alexnet, zfnet, vgg, googlenet, resnet, small, speedrun)

__all__ = [
    "REGISTRY",
    "Classifier",
    "Milestone",
    "ModelEntry",
    "PaperFacts",
    "build_model",
    "check_model_name",
    "create",
    "history_line",
    "model_entry",
    "model_names",
    "names",
    "recipe_for",
    "recipe_rule_for",
    "register_model",
]
