"""A size report as people read it (``Summary``: the table that ``cnnkit size`` prints,
with the lecture's rules of thumb in words) and the lecture's comparison of networks
(``Comparison``: ``cnnkit size --compare``), as text and as HTML for Jupyter."""

from dataclasses import dataclass

from cnnkit.analysis.papers import PaperComparison
from cnnkit.analysis.render import render_comparison, render_size
from cnnkit.analysis.size import LayerSize, RuleOfThumb, SizeReport, SizeTotals


@dataclass(frozen=True, repr=False)
class Summary:
    report: SizeReport

    @property
    def layers(self) -> list[LayerSize]:
        return self.report.layers

    @property
    def totals(self) -> SizeTotals:
        return self.report.totals

    @property
    def rules_of_thumb(self) -> tuple[RuleOfThumb, ...]:
        return self.report.rules_of_thumb()

    def to_dict(self) -> dict:
        return self.report.to_dict()

    def __repr__(self) -> str:
        return render_size(self.report, "table")

    def _repr_html_(self) -> str:
        return render_size(self.report, "html")


class Comparison(list[PaperComparison]):
    """One column per network: its paper's task and training, and its size as counted."""

    def __repr__(self) -> str:
        return render_comparison(self, "table")

    def _repr_html_(self) -> str:
        return render_comparison(self, "html")
