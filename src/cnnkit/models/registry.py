"""The model registry: every model cnnkit can build, by name, with all that cnnkit knows
of it in one entry: its builder, a small input for quick checks, its recipes, the facts
its paper states about its training, and its place in the lecture's results over the
years. A model is registered once, where its family is defined::

    @register_model("lenet5", citation=..., test_input=(1, 32, 32), recipes=(LENET5_RECIPE,))
    def lenet5(num_classes: int = 10, ...) -> LeNet5: ...

and every registry-driven test then covers it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cnnkit.config import SDLM_RECIPE, SHORT_SCHEDULE, Recipe, RecipeRule, is_count
from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.models.interface import Classifier


@dataclass(frozen=True)
class PaperFacts:
    """What a paper states about its network's training (``cnnkit size --compare``)."""

    network: str  # as the lecture names it
    task: str
    categories: int
    image_size: str  # as the paper's data come, before any padding or cropping
    training_examples: int
    epochs: int  # passes through the training set
    source: str  # where the training facts are stated


@dataclass(frozen=True)
class Milestone:
    """A model's row in the lecture's results over the years (``cnnkit history``)."""

    year: int  # when the design won or was published
    title: str  # as the lecture's table names it
    in_history_line: bool = False  # one of the nets ``cnnkit history`` trains by default


@dataclass(frozen=True)
class ModelEntry:
    name: str  # lowercase with hyphens
    build: Callable[..., Classifier]  # num_classes, in_channels, image_size (+ its own)
    test_input: tuple[int, int, int]  # a small (C, H, W) it takes, for quick checks
    citation: str  # its paper, short: authors, year, title
    recipes: tuple[RecipeRule, ...] = ()  # tried in order, before the short schedule
    paper: PaperFacts | None = None
    milestone: Milestone | None = None

    def recipe_rule(self, dataset: str) -> RecipeRule:
        """The rule that gives this model its recipe on ``dataset``."""
        return next((rule for rule in self.recipes if rule.covers(dataset)), SHORT_SCHEDULE)


REGISTRY: dict[str, ModelEntry] = {}
Builder = TypeVar("Builder", bound=Callable[..., Classifier])


def register_model(
    name: str,
    *,
    citation: str,
    test_input: tuple[int, int, int],
    recipes: tuple[RecipeRule, ...] = (),
    paper: PaperFacts | None = None,
    milestone: Milestone | None = None,
) -> Callable[[Builder], Builder]:
    """Register the decorated builder as ``name``, with what cnnkit knows of it."""

    def register(build: Builder) -> Builder:
        if name in REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        REGISTRY[name] = ModelEntry(name, build, test_input, citation, recipes, paper, milestone)
        return build

    return register


def model_names() -> list[str]:
    return sorted(REGISTRY)


def model_entry(name: str) -> ModelEntry:
    """The entry of ``name``; an ``UnknownNameError`` listing the registry otherwise."""
    if name not in REGISTRY:
        raise UnknownNameError.of("model", name, model_names())
    return REGISTRY[name]


def check_model_name(name: str) -> None:
    model_entry(name)


def build_model(
    name: str, num_classes: int | None = None, in_channels: int | None = None, **options: Any
) -> Classifier:
    """The model called ``name``; ``None`` leaves a setting at the paper's value."""
    entry = model_entry(name)
    given = {"num_classes": num_classes, "in_channels": in_channels, **options}
    try:
        return entry.build(**{key: value for key, value in given.items() if value is not None})
    except ValueError as error:  # a constructor's refusal of these sizes
        raise ConfigError(f"model {name!r}: {error}") from None


def names() -> list[str]:
    """Every model cnnkit can build, in the lecture's order (``docs/model-sizes.md``'s)."""
    return list(REGISTRY)


def create(
    name: str, num_classes: int | None = None, in_channels: int | None = None, **options: Any
) -> Classifier:
    """A new model ``name`` with fresh weights (``None`` leaves the paper's value; some
    models take more, such as ``image_size``); a bad argument is one ``ConfigError``."""
    for argument, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if value is not None and not is_count(value):
            raise ConfigError(f"{argument}={value!r}: expected a whole number, 1 or more")
    try:
        return build_model(name, num_classes, in_channels, **options)
    except TypeError as error:  # an option the builder does not take, or of a wrong type
        raise ConfigError(f"model {name!r}: {error}") from None


def recipe_rule_for(model: str, dataset: str = "mnist") -> RecipeRule:
    """The rule that gives ``model`` its recipe on ``dataset``."""
    return model_entry(model).recipe_rule(dataset)


def recipe_for(model: str, dataset: str = "mnist", optimizer: str = "sgd") -> Recipe:
    """The recipe ``model`` trains with on ``dataset``: its own for "sgd" (the default,
    whatever optimiser that recipe names), LeNet-5's paper recipe for "sdlm"; "adam" only
    where the model's own recipe is Adam's (there are no Adam settings for the others)."""
    if optimizer == "sdlm":
        return SDLM_RECIPE
    recipe = recipe_rule_for(model, dataset).recipe
    if optimizer == "adam" and recipe.optimizer != "adam":
        raise ConfigError(
            f"{model}'s recipe on {dataset} trains with {recipe.optimizer}, and cnnkit has no "
            "Adam settings for it; leave out --optimizer (speedrun's recipe is Adam's)"
        )
    return recipe


def history_line() -> tuple[str, ...]:
    """The nets ``cnnkit history`` trains after the HOG+SVM baseline, by year: one per
    milestone of the lecture's results over the years."""
    years = {
        entry.name: entry.milestone.year
        for entry in REGISTRY.values()
        if entry.milestone and entry.milestone.in_history_line
    }
    return tuple(sorted(years, key=years.__getitem__))  # registration order within a year
