"""The public API, ``import cnnkit`` (docs/api.md): train and load runs, predict on what
a user holds, count a network's size, and search images. Every name here is what the
command line calls too; ``cnnkit/__init__.py`` loads this package on first use."""

from cnnkit.analysis.catalogue import Catalogue, ModelListing, catalogue
from cnnkit.analysis.summary import Comparison, Summary
from cnnkit.api.run import Run, load
from cnnkit.api.search import Index, index, open_index
from cnnkit.api.sizes import compare, summary
from cnnkit.api.training import train
from cnnkit.evaluate import EvalReport
from cnnkit.predict import Prediction, Predictions
from cnnkit.search.index import Hit, Neighbours, Searches

__all__ = [
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
]
