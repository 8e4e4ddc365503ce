"""Image search with a trained run's features: build an index of a collection, query
it by example or by class, change it, find near-duplicates, and score retrieval
against pixels and HOG (docs/search.md). A consumer of runs: never imports ``train``.

The API that other programs (``cnnkit serve``) use::

    index = open_index(path)                  # every file checked
    hits = index.query_files([photo], top=10)[0]   # or index.query(features (Q, D))
    index.by_class("dog", top=10)
    index.thumbnail(hits[0].record.id)        # PNG bytes

The names below are imported when first used (``__getattr__``), so that the CLI reads
``search.backends`` for its ``--help`` without importing torch, which the rest needs.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for the type checker
    from cnnkit.search.build import BuildResult, BuildSettings, build_index  # noqa: F401
    from cnnkit.search.changes import add_to_index, index_info, remove_from_index  # noqa: F401
    from cnnkit.search.collection import Record, dataset_collection, file_collection  # noqa: F401
    from cnnkit.search.dupes import DupeGroup, find_dupes  # noqa: F401
    from cnnkit.search.index import Hit, Neighbours, Searches, SearchIndex, open_index  # noqa: F401
    from cnnkit.search.retrieval import EvalSettings, evaluate_retrieval  # noqa: F401

PUBLIC = {  # module: the names it gives the public API
    "build": ("BuildResult", "BuildSettings", "build_index"),
    "changes": ("add_to_index", "index_info", "remove_from_index"),
    "collection": ("Record", "dataset_collection", "file_collection"),
    "dupes": ("DupeGroup", "find_dupes"),
    "retrieval": ("EvalSettings", "evaluate_retrieval"),
    "index": ("Hit", "Neighbours", "SearchIndex", "Searches", "open_index"),
}
HOMES = {name: module for module, names in PUBLIC.items() for name in names}
__all__ = sorted(HOMES)


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{HOMES[name]}"), name)
