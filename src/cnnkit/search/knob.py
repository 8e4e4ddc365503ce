"""A backend's search-time setting: what a query spends to find more of its true
neighbours (``Knob``), tuned at build time to a target recall (``search.tune``) and
overridden per query (``SearchIndex.query``'s ``settings``)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Knob:
    """One setting, read at search time, that buys recall with time: IVF's ``nprobe``
    (cells visited), HNSW's ``ef_search`` (candidates kept). Recall rises with it,
    almost always monotonically, and so does each query's cost."""

    name: str  # its key in the backend's params
    least: int
    most: int

    def clipped(self, value: int) -> int:
        return max(self.least, min(self.most, value))


def settings_given(nprobe: int | None = None, ef_search: int | None = None) -> dict[str, int]:
    """The search-time settings a user gave (the options and keywords of the same
    names), keyed as a backend's params name them."""
    given = {"nprobe": nprobe, "ef_search": ef_search}
    return {name: value for name, value in given.items() if value is not None}
