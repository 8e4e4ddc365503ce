"""Image search with a trained run's features: build an index of a collection, query
it by example or by class, change it, find near-duplicates, and score retrieval
against pixels and HOG (docs/search.md). A consumer of runs: never imports ``train``.

The API that other programs (``cnnkit serve``) use::

    index = open_index(path)                  # every file checked
    hits = index.query_files([photo], top=10)[0]   # or index.query(features (Q, D))
    index.by_class("dog", top=10)
    index.thumbnail(hits[0].record.id)        # PNG bytes
"""

from cnnkit.search.build import BuildResult, BuildSettings, build_index
from cnnkit.search.changes import add_to_index, index_info, remove_from_index
from cnnkit.search.collection import Record, dataset_collection, file_collection
from cnnkit.search.dupes import DupeGroup, find_dupes
from cnnkit.search.evaluate import EvalSettings, evaluate_retrieval
from cnnkit.search.index import Hit, SearchIndex, open_index

__all__ = [
    "BuildResult",
    "BuildSettings",
    "DupeGroup",
    "EvalSettings",
    "Hit",
    "Record",
    "SearchIndex",
    "add_to_index",
    "build_index",
    "dataset_collection",
    "evaluate_retrieval",
    "file_collection",
    "find_dupes",
    "index_info",
    "open_index",
    "remove_from_index",
]
