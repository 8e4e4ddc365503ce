"""cnnkit: image classification with the landmark convolutional networks.

The public API (docs/api.md)::

    import cnnkit
    run = cnnkit.train("lenet5", epochs=1, train_limit=6000, report=False)
    run.predict("digit.png").label
    cnnkit.summary("lenet5")
    cnnkit.models.names()

Its names are imported on first use (``__getattr__``), so that ``import cnnkit`` and
``cnnkit --help`` do not load PyTorch.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for the type checker
    from cnnkit import models  # noqa: F401
    from cnnkit.api import *  # noqa: F403

__version__ = "0.1.0"
# cnnkit.api's names, here without importing it (a test holds the two lists together)
API = (
    "Catalogue",
    "Comparison",
    "EvalReport",
    "Hit",
    "Index",
    "ModelListing",
    "Neighbours",
    "Prediction",
    "Predictions",
    "Run",
    "Searches",
    "Summary",
    "catalogue",
    "compare",
    "index",
    "load",
    "open_index",
    "summary",
    "train",
)
__all__ = [*API, "models"]


def __getattr__(name: str) -> Any:
    if name == "models":
        return importlib.import_module("cnnkit.models")
    if name in API:
        return getattr(importlib.import_module("cnnkit.api"), name)
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
