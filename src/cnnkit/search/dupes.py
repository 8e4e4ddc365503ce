"""Near-duplicates: groups of items more alike than a threshold.

Two ways to compare items (``by``):
- ``tiny`` (the default): the 8x8 tiny images an index stores (Torralba et al., "80
  million tiny images", PAMI 2008), each centred on its mean and L2-normalised, and
  compared with the other's mirror image too. Measured on CIFAR-10 with planted
  copies (docs/search.md), they separate copies from look-alikes where the features
  cannot;
- ``features``: the model's penultimate-layer features, as the index searches them.
  A classifier's features are made alike for every image of a class: a CIFAR-10
  ResNet-8's nearest neighbours lie at cosine 0.98 whether they are copies or not.

Every item is a query against the whole collection (exact search, memory bounded);
the pairs at or above ``threshold`` among each item's ``neighbours`` nearest are
linked, and the groups are the connected components (union-find).
"""

from dataclasses import dataclass

import numpy as np

from cnnkit.errors import UnknownNameError
from cnnkit.search.collection import Record
from cnnkit.search.embed import TINY_SIDE, normalize_rows
from cnnkit.search.exact import exact_top_k
from cnnkit.search.index import SearchIndex

COMPARISONS = ("tiny", "features")
DEFAULT_THRESHOLDS = {"tiny": 0.95, "features": 0.99}  # docs/search.md: precision >= 0.9
NEIGHBOURS = 10  # candidates per item; a larger group still joins up through its links
CHUNK = 4096  # items queried at once


@dataclass(frozen=True)
class DupeGroup:
    records: list[Record]  # in index order
    similarity: float  # the weakest link that joined the group


def tiny_vectors(tiny: np.ndarray, mirrored: bool = False) -> np.ndarray:
    """uint8 tiny images (N, C * 8 * 8) as centred unit vectors, optionally mirrored."""
    cells = tiny.reshape(len(tiny), -1, TINY_SIDE, TINY_SIDE).astype(np.float32)
    if mirrored:
        cells = cells[..., ::-1]
    flat = cells.reshape(len(tiny), -1)
    return normalize_rows(flat - flat.mean(axis=1, keepdims=True))


def compared(index: SearchIndex, by: str) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """The collection as shards of vectors, and the query variants of each shard."""
    if by == "tiny":
        shards = [tiny_vectors(np.asarray(t)) for t in index.tiny]
        return shards, [
            [s, tiny_vectors(np.asarray(t), True)] for s, t in zip(shards, index.tiny, strict=True)
        ]
    return index.vectors, [[np.asarray(v, np.float32)] for v in index.vectors]


def linked_pairs(
    index: SearchIndex, by: str, threshold: float, neighbours: int
) -> dict[tuple[int, int], float]:
    """(position, position) -> similarity for each pair at or above ``threshold``."""
    shards, variants = compared(index, by)
    pairs: dict[tuple[int, int], float] = {}
    offset = 0
    for shard_variants in variants:
        for queries in shard_variants:
            for start in range(0, len(queries), CHUNK):
                chunk = queries[start : start + CHUNK]
                scores, positions = exact_top_k(chunk, shards, neighbours + 1)
                for row, (row_scores, row_positions) in enumerate(
                    zip(scores, positions, strict=True)
                ):
                    me = offset + start + row
                    for score, other in zip(row_scores, row_positions, strict=True):
                        if other != me and score >= threshold:
                            key = (min(me, int(other)), max(me, int(other)))
                            pairs[key] = max(pairs.get(key, -1.0), float(score))
        offset += len(shard_variants[0])
    return pairs


def find_dupes(
    index: SearchIndex,
    threshold: float | None = None,
    by: str = "tiny",
    neighbours: int = NEIGHBOURS,
) -> list[DupeGroup]:
    """Groups of two or more near-duplicate items, largest first; ``threshold``
    defaults to ``DEFAULT_THRESHOLDS[by]``."""
    if by not in COMPARISONS:
        raise UnknownNameError.of("comparison", by, COMPARISONS)
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[by]
    pairs = linked_pairs(index, by, threshold, neighbours)
    parent = list(range(len(index)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    weakest: dict[int, float] = {}
    for (a, b), score in sorted(pairs.items(), key=lambda item: -item[1]):
        ra, rb = root(a), root(b)
        if ra != rb:
            head = min(ra, rb)
            parent[max(ra, rb)] = head
            weakest[head] = min(weakest.pop(ra, 1.0), weakest.pop(rb, 1.0), score)
    members: dict[int, list[int]] = {}
    for position in range(len(index)):
        members.setdefault(root(position), []).append(position)
    groups = [
        DupeGroup([index.records[p] for p in group], weakest[head])
        for head, group in members.items()
        if len(group) > 1
    ]
    return sorted(groups, key=lambda g: (-len(g.records), g.records[0].id))
