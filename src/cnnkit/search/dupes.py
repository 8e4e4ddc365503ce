"""Near-duplicates: groups of items more alike than a threshold.

Two ways to compare items (``by``):
- ``tiny`` (the default): the 8x8 tiny images an index stores (Torralba et al., "80
  million tiny images", PAMI 2008), each centred on its mean and L2-normalised, and
  compared with the other's mirror image too. On CIFAR-10 with planted copies
  (docs/search.md) they find 87% of the copies at precision 0.97, where the
  features find 16% at that precision;
- ``features``: the model's penultimate-layer features, as the index searches them.
  A classifier's features are made alike for every image of a class: a CIFAR-10
  ResNet-8's nearest neighbours lie at cosine 0.98 whether they are copies or not,
  and its blurred (resized) copies fall further from their originals than that.

Every item is a query against the whole collection (exact search, memory bounded),
and the pairs at or above ``threshold`` among each item's ``neighbours`` nearest are
candidates. Groups grow from the most alike pair down, and two groups join only when
every item of one is at least ``threshold`` alike every item of the other (complete
linkage): otherwise a chain of look-alikes, each a little different from the last,
would become one group (on CIFAR-10, single linkage joined 25,000 pairs of originals).
"""

from dataclasses import dataclass

import numpy as np

from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.search.collection import Record
from cnnkit.search.embed import TINY_SIDE, normalize_rows
from cnnkit.search.exact import exact_top_k
from cnnkit.search.index import SearchIndex

COMPARISONS = ("tiny", "features")
DEFAULT_THRESHOLDS = {"tiny": 0.95, "features": 0.995}  # docs/search.md: precision >= 0.9
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


@dataclass(frozen=True)
class Comparison:
    """The collection as compared: shards of unit vectors, and for each shard the
    variants it is queried with (a tiny image and its mirror image)."""

    shards: list[np.ndarray]
    variants: list[list[np.ndarray]]

    def rows(self, positions: list[int]) -> list[np.ndarray]:
        """Each variant's rows at ``positions`` of the whole collection, (P, D)."""
        starts = np.cumsum([0] + [len(shard) for shard in self.shards])
        shard = np.searchsorted(starts, positions, side="right") - 1
        return [
            np.stack(
                [self.variants[s][v][p - starts[s]] for s, p in zip(shard, positions, strict=True)]
            )
            for v in range(len(self.variants[0]))
        ]

    def least(self, group_a: list[int], group_b: list[int]) -> float:
        """The least similarity between an item of ``group_a`` and one of ``group_b``
        (each pair at its most alike variant)."""
        a, b = self.rows(group_a)[0], self.rows(group_b)
        return float(np.max([a @ variant.T for variant in b], axis=0).min())


def compared(index: SearchIndex, by: str) -> Comparison:
    if by == "tiny":
        shards = [tiny_vectors(np.asarray(t)) for t in index.tiny]
        mirrored = [tiny_vectors(np.asarray(t), True) for t in index.tiny]
        return Comparison(shards, [[s, m] for s, m in zip(shards, mirrored, strict=True)])
    vectors = [np.asarray(v, np.float32) for v in index.vectors]
    return Comparison(vectors, [[v] for v in vectors])


def linked_pairs(
    comparison: Comparison, threshold: float, neighbours: int
) -> dict[tuple[int, int], float]:
    """(position, position) -> similarity for each pair at or above ``threshold``."""
    shards = comparison.shards
    pairs: dict[tuple[int, int], float] = {}
    offset = 0
    for shard_variants in comparison.variants:
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
    if not -1 <= threshold <= 1:  # NaN too: it is at or above nothing, and found no group
        raise ConfigError(f"threshold={threshold!r}: expected a cosine similarity from -1 to 1")
    comparison = compared(index, by)
    pairs = linked_pairs(comparison, threshold, neighbours)
    members = {position: [position] for position in range(len(index))}
    group_of = list(range(len(index)))
    weakest: dict[int, float] = {}
    for (a, b), score in sorted(pairs.items(), key=lambda item: -item[1]):
        ga, gb = group_of[a], group_of[b]
        if ga == gb:
            continue
        least = score
        if len(members[ga]) * len(members[gb]) > 1:
            least = comparison.least(members[ga], members[gb])
            if least < threshold:
                continue
        head, other = min(ga, gb), max(ga, gb)
        for position in members[other]:
            group_of[position] = head
        members[head] += members.pop(other)
        weakest[head] = min(weakest.pop(ga, 1.0), weakest.pop(gb, 1.0), least)
    groups = [
        DupeGroup([index.records[p] for p in sorted(group)], weakest[head])
        for head, group in members.items()
        if len(group) > 1
    ]
    return sorted(groups, key=lambda g: (-len(g.records), g.records[0].id))
