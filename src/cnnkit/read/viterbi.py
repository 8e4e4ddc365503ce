"""The best path through a segmentation graph (LeCun et al. 1998, Sec. V-B and VI): the
nodes are the places between consecutive pieces of ink, 0..n; an arc from i to j is the
candidate made of pieces i..j-1, scored by the recognizer. The best path is the
segmentation whose candidates score highest in sum, found by dynamic programming (the
Viterbi algorithm on this acyclic graph); with ``length`` it is the best path of exactly
that many digits (a zip code has five)."""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Arc:
    """A candidate from node ``start`` to node ``end`` (pieces start..end-1), its score
    (a log-probability and priors) and whether it is a digit or ink left out (a speck)."""

    start: int
    end: int
    score: float
    is_digit: bool = True


def best_path(arcs: list[Arc], nodes: int, length: int | None = None) -> list[Arc] | None:
    """The highest-scoring chain of arcs from node 0 to ``nodes - 1`` (with ``length``
    digits, when given); None when no chain reaches the end."""
    most = length if length is not None else nodes  # at most one digit per piece
    leaving: dict[int, list[Arc]] = {}
    for arc in arcs:
        leaving.setdefault(arc.start, []).append(arc)
    # best[node][digits] = (score, the arc that reached it)
    best: list[dict[int, tuple[float, Arc | None]]] = [{} for _ in range(nodes)]
    best[0][0] = (0.0, None)
    for node in range(nodes):
        for digits, (score, _) in list(best[node].items()):
            for arc in leaving.get(node, []):
                count = digits + arc.is_digit
                if count > most:
                    continue
                reached = best[arc.end].get(count)
                if reached is None or score + arc.score > reached[0]:
                    best[arc.end][count] = (score + arc.score, arc)
    ends = best[nodes - 1]
    if length is not None:
        ends = {length: ends[length]} if length in ends else {}
    if not ends:
        return None
    digits = max(ends, key=lambda count: ends[count][0])
    if not math.isfinite(ends[digits][0]):
        return None
    path: list[Arc] = []
    node = nodes - 1
    while node != 0:
        reached_by = best[node][digits][1]
        assert reached_by is not None  # every reached node but the first has its arc
        path.append(reached_by)
        node, digits = reached_by.start, digits - reached_by.is_digit
    return path[::-1]
