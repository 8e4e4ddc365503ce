"""How well a descriptor retrieves: ``search eval``, the lecture's "results over the
years" for search.

One split's images are the queries, another's the collection; an item is relevant to
a query when it has the query's label. Each method describes every image by one
vector, L2-normalised, ranks the whole collection by cosine similarity, and is scored
by mAP (AP over the whole ranking), mAP@100, P@1, P@10 and recall@100 (``metrics``):
- ``pixels``: the raw pixels as stored;
- ``hog``: HOG descriptors (Dalal and Triggs 2005; the ``[classic]`` extra), the
  hand-designed feature of the 2010 row of the lecture's ImageNet history;
- ``conv``: the checkpoint's penultimate-layer features (``search.embed``).
With ``whiten``, each also with PCA whitening learned on the collection (Jegou and
Chum, "Negative evidences and co-occurrences in image retrieval", ECCV 2012): centre,
project on the leading principal components, divide each by the square root of its
variance, and L2-normalise again.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.config import RETRIEVAL_METHODS
from cnnkit.data import ImageSet, load_dataset
from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.metrics import average_precision, precision_at, recall_at
from cnnkit.progress import bar as progress_bar
from cnnkit.runs import load_run
from cnnkit.search.collection import SPLITS
from cnnkit.search.embed import Embedder, normalize_rows

CUTOFF = 100  # mAP@100 and recall@100
QUERY_CHUNK = 256  # queries ranked at once: 256 x collection scores in memory
WHITEN_DIMS = 256  # principal components kept by PCA whitening, at most
WHITEN_EPSILON = 1e-3  # added to each variance, relative to the largest, against noise blow-up


@dataclass(frozen=True)
class MethodScores:
    method: str
    dimensions: int
    map: float
    map_at_100: float
    p_at_1: float
    p_at_10: float
    recall_at_100: float
    seconds: float  # describing both splits and ranking

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "mAP": self.map,
            "mAP@100": self.map_at_100,
            "P@1": self.p_at_1,
            "P@10": self.p_at_10,
            "recall@100": self.recall_at_100,
            "dimensions": self.dimensions,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class RetrievalEvaluation:
    checkpoint: Path
    dataset: str
    query_split: str
    collection_split: str
    queries: int
    collection: int
    methods: list[MethodScores]


@dataclass(frozen=True)
class EvalSettings:
    dataset: str
    queries: str = "test"
    collection: str = "train"
    methods: tuple[str, ...] = RETRIEVAL_METHODS
    whiten: bool = False
    query_limit: int | None = None
    collection_limit: int | None = None
    data_dir: Path | None = None
    device: str = "auto"
    progress: bool = False


def evaluate_retrieval(checkpoint: Path, settings: EvalSettings) -> RetrievalEvaluation:
    for name in settings.methods:
        if name not in RETRIEVAL_METHODS:
            raise UnknownNameError.of("retrieval method", name, RETRIEVAL_METHODS)
    for split in (settings.queries, settings.collection):
        if split not in SPLITS:
            raise ConfigError(f"split {split!r}: use one of {', '.join(SPLITS)}")
    run = load_run(checkpoint, settings.device)
    splits = load_dataset(settings.dataset, settings.data_dir)
    queries = splits[SPLITS.index(settings.queries)].subset(settings.query_limit or 1 << 62)
    collection = splits[SPLITS.index(settings.collection)].subset(
        settings.collection_limit or 1 << 62
    )
    same = settings.queries == settings.collection
    embedder = Embedder(run)
    results = []
    for method in settings.methods:
        start = time.perf_counter()
        query_vectors = describe(method, queries, embedder)
        collection_vectors = describe(method, collection, embedder)
        variants = [(method, query_vectors, collection_vectors)]
        if settings.whiten:
            whiten = pca_whitening(collection_vectors)
            variants.append(
                (f"{method}+whitening", whiten(query_vectors), whiten(collection_vectors))
            )
        described = time.perf_counter() - start
        for name, q, c in variants:
            start = time.perf_counter()
            scores = rank_scores(q, queries.labels, c, collection.labels, same, settings.progress)
            seconds = described + time.perf_counter() - start
            results.append(MethodScores(name, q.shape[1], *scores, seconds=seconds))
    return RetrievalEvaluation(
        Path(checkpoint), settings.dataset, settings.queries, settings.collection,
        len(queries), len(collection), results,
    )  # fmt: skip


def describe(method: str, images: ImageSet, embedder: Embedder) -> np.ndarray:
    """Unit-length descriptors (N, D) of a split's images by ``method``."""
    if method == "pixels":
        return normalize_rows(images.images.flatten(1).numpy().astype(np.float32))
    if method == "hog":
        from cnnkit.baseline.hog_svm import hog_features

        return normalize_rows(hog_features(images.images))
    return embedder(images.images).vectors


def pca_whitening(collection: np.ndarray):
    """The whitening learned on ``collection`` (N, D): a function of (M, D) vectors."""
    mean = collection.mean(axis=0, dtype=np.float64)
    centred = collection - mean
    covariance = centred.T.astype(np.float64) @ centred / len(collection)
    variances, components = np.linalg.eigh(covariance)  # ascending
    keep = min(WHITEN_DIMS, len(variances))
    variances, components = variances[::-1][:keep], components[:, ::-1][:, :keep]
    scale = 1 / np.sqrt(variances.clip(min=0) + WHITEN_EPSILON * variances[0])
    projection = (components * scale).astype(np.float32)
    return lambda vectors: normalize_rows((vectors - mean.astype(np.float32)) @ projection)


def rank_scores(
    queries: np.ndarray,
    query_labels: torch.Tensor,
    collection: np.ndarray,
    collection_labels: torch.Tensor,
    same_items: bool = False,
    progress: bool = False,
) -> tuple[float, float, float, float, float]:
    """Mean AP, AP@100, P@1, P@10 and recall@100 over the queries, each ranking the
    whole collection; ``same_items``: query i is collection item i, left out of its
    own ranking."""
    items = torch.from_numpy(collection)
    sums = torch.zeros(5, dtype=torch.float64)
    starts = range(0, len(queries), QUERY_CHUNK)
    for start in progress_bar(
        starts, desc="ranking", unit="chunk", disable=not progress, leave=False
    ):
        chunk = torch.from_numpy(queries[start : start + QUERY_CHUNK])
        scores = chunk @ items.T  # (q, N)
        if same_items:
            rows = torch.arange(len(chunk))
            scores[rows, rows + start] = -torch.inf  # ranks last, then cut off
        # numpy's vectorised argsort is 3x torch's on a 2-core AMD EPYC (256 x 50,000 scores)
        order = torch.from_numpy(np.argsort(-scores.numpy(), axis=1))
        labels = query_labels[start : start + len(chunk)].view(-1, 1)
        relevance = collection_labels[order] == labels
        if same_items:
            relevance = relevance[:, :-1]
        sums += torch.stack(
            [
                average_precision(relevance).sum(),
                average_precision(relevance, CUTOFF).sum(),
                precision_at(relevance, 1).sum(),
                precision_at(relevance, 10).sum(),
                recall_at(relevance, CUTOFF).sum(),
            ]
        )
    means = (sums / max(1, len(queries))).tolist()
    return means[0], means[1], means[2], means[3], means[4]


def bar_chart_png(evaluation: RetrievalEvaluation, path: Path) -> Path:
    """mAP and mAP@100 per method, as bars."""
    from matplotlib.figure import Figure

    from cnnkit.files import atomic_write_bytes
    from cnnkit.plots import figure_png

    names = [m.method for m in evaluation.methods]
    x = np.arange(len(names))
    figure = Figure(figsize=(1.6 * len(names) + 2, 3.6))
    axes = figure.subplots()
    axes.bar(x - 0.2, [m.map for m in evaluation.methods], 0.4, label="mAP", color="tab:blue")
    axes.bar(
        x + 0.2,
        [m.map_at_100 for m in evaluation.methods],
        0.4,
        label="mAP@100",
        color="tab:orange",
    )
    axes.set_xticks(x, names)
    axes.set(ylim=(0, 1), ylabel="mean average precision")
    axes.set_title(
        f"Retrieval on {evaluation.dataset}: {evaluation.queries:,} {evaluation.query_split} "
        f"queries, {evaluation.collection:,} {evaluation.collection_split} items"
    )
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return atomic_write_bytes(Path(path), figure_png(figure))
