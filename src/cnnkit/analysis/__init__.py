"""Size analysis: units, weights and connections of a model, counted on the real module."""

from cnnkit.analysis.size import (
    LayerSize,
    RuleOfThumb,
    SizeReport,
    SizeTotals,
    model_size,
    size_report,
)

__all__ = ["LayerSize", "RuleOfThumb", "SizeReport", "SizeTotals", "model_size", "size_report"]
