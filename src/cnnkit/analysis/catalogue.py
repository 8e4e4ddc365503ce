"""The catalogue of models: every registered model with its size and its paper, as
``cnnkit models`` lists them."""

from dataclasses import asdict, dataclass

from tabulate import tabulate

from cnnkit.analysis.render import shape_text
from cnnkit.analysis.size import Shape, model_size
from cnnkit.models import REGISTRY

HEADERS = ["model", "parameters", "connections", "input", "paper"]


@dataclass(frozen=True)
class ModelListing:
    name: str
    parameters: int
    connections: int
    input_shape: Shape  # (C, H, W) it is built for
    citation: str  # its paper


class Catalogue(list[ModelListing]):
    """One ``ModelListing`` per model, in the registry's order; prints as a table."""

    def table(self, style: str = "simple") -> str:
        rows = [
            [m.name, m.parameters, m.connections, shape_text(m.input_shape), m.citation]
            for m in self
        ]
        return tabulate(rows, headers=HEADERS, tablefmt=style, intfmt=",")

    def to_dicts(self) -> list[dict]:
        return [{**asdict(m), "input_shape": list(m.input_shape)} for m in self]

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        return self.table("html")


def catalogue() -> Catalogue:
    """Every registered model at its own input size, counted on PyTorch's meta device."""
    listings = Catalogue()
    for name, entry in REGISTRY.items():
        size = model_size(name)
        totals = size.totals
        listings.append(
            ModelListing(name, totals.parameters, totals.connections, size.input, entry.citation)
        )
    return listings
