"""Size reports and comparisons as text: table, JSON, CSV, Markdown or (a size report)
HTML, as Jupyter shows it."""

import csv
import io
import json
from html import escape

from tabulate import tabulate

from cnnkit.analysis.papers import OPERATIONS_PER_CONNECTION, PaperComparison
from cnnkit.analysis.size import SizeReport

COLUMNS = [
    "name",
    "kind",
    "output_shape",
    "units",
    "weights",
    "biases",
    "connections",
    "connections_with_biases",
]
HEADERS = ["layer", "kind", "output", "units", "weights", "biases", "connections", "+ biases"]
TABLE_STYLES = {"table": "simple", "markdown": "github", "html": "html"}


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in shape)


def render_size(report: SizeReport, fmt: str) -> str:
    """The report in ``fmt``: a table with a summary (plain text, Markdown or HTML), JSON
    or CSV."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2)
    rows = [
        [layer.name, layer.kind, shape_text(layer.output_shape)]
        + [layer.units, layer.weights, layer.biases, layer.connections]
        + [layer.connections_with_biases]
        for layer in report.layers
    ]
    totals = report.totals
    total_row = ["total", "", "", totals.units, totals.weights, totals.biases]
    total_row += [totals.connections, totals.connections_with_biases]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows([COLUMNS, *rows, total_row])
        return out.getvalue().rstrip("\n")
    table = tabulate(
        [*rows, total_row],
        headers=HEADERS,
        tablefmt=TABLE_STYLES[fmt],
        intfmt=",",
        disable_numparse=False,
    )
    if fmt == "html":
        items = "".join(f"<li>{escape(line)}</li>" for line in summary_lines(report))
        return f"{table}<ul>{items}</ul>"
    bullet = "- " if fmt == "markdown" else ""
    summary = [bullet + line for line in summary_lines(report)]
    return "\n".join([table, "", *summary])


def summary_lines(report: SizeReport) -> list[str]:
    """Parameters, memory and the conv/fc shares, in words."""
    totals = report.totals
    conv, fc = report.shares(fully_connected=False), report.shares(fully_connected=True)
    lines = [
        f"{report.model} on a {shape_text(report.input)} input: {totals.units:,} units "
        f"(the input's {report.layers[0].units:,} included), {totals.parameters:,} parameters "
        f"({totals.weights:,} weights + {totals.biases:,} biases), "
        f"{totals.connections:,} connections ({totals.connections_with_biases:,} with biases)",
        f"parameter memory (test time, float32): {megabytes(report.parameter_bytes)}; "
        f"activation memory for one training example (float32 units): "
        f"{megabytes(report.activation_bytes)}",
        f"convolution layers: {percent(conv.units)} of units, {percent(conv.weights)} of weights, "
        f"{percent(conv.connections)} of connections; fully connected layers: "
        f"{percent(fc.units)}, {percent(fc.weights)}, {percent(fc.connections)}",
    ]
    return lines + [f"rule of thumb: {rule}" for rule in report.rules_of_thumb()]


def megabytes(size: int) -> str:
    """Bytes in KiB below one MiB, in MiB above."""
    return f"{size / 2**10:,.1f} KiB" if size < 2**20 else f"{size / 2**20:,.1f} MiB"


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def human(number: int) -> str:
    """Large counts in words, as the lecture writes them (65 thousand, 1.2 billion)."""
    for scale, word in (
        (1e15, "quadrillion"),
        (1e12, "trillion"),
        (1e9, "billion"),
        (1e6, "million"),
    ):
        if number >= scale:
            return f"{number / scale:,.1f} {word}"
    return f"{number:,}"


# The two conventions side by side: the lecture counts LeNet's training one way and
# AlexNet's the other, so a reader can only compare networks within one row.
LECTURE_OPERATIONS_ROW = "training operations (lecture: connections x examples x epochs)"
OPERATIONS_ROW = "training operations (3 per connection: forward + backward)"


def comparison_rows(columns: list[PaperComparison]) -> list[list[str]]:
    facts = [column.facts for column in columns]
    sizes = [column.size.totals for column in columns]
    return [
        ["classification task", *[f.task for f in facts]],
        ["categories", *[f"{f.categories:,}" for f in facts]],
        ["image size", *[f.image_size for f in facts]],
        ["training examples", *[f"{f.training_examples:,}" for f in facts]],
        ["epochs", *[str(f.epochs) for f in facts]],
        ["units", *[f"{s.units:,}" for s in sizes]],
        ["parameters", *[f"{s.parameters:,}" for s in sizes]],
        ["connections", *[f"{s.connections:,}" for s in sizes]],
        ["connections with biases", *[f"{s.connections_with_biases:,}" for s in sizes]],
        [LECTURE_OPERATIONS_ROW, *[human(c.lecture_training_operations) for c in columns]],
        [OPERATIONS_ROW, *[human(c.training_operations) for c in columns]],
    ]


def render_comparison(columns: list[PaperComparison], fmt: str) -> str:
    """The lecture's comparison table: one column per network, then formula and sources."""
    if fmt == "json":
        return json.dumps(
            [
                {
                    "model": column.model,
                    **column.facts.__dict__,
                    "totals": column.size.to_dict()["totals"],
                    "lecture_training_operations": column.lecture_training_operations,
                    "training_operations": column.training_operations,
                }
                for column in columns
            ],
            indent=2,
        )
    headers = ["", *[f"{c.facts.network} [{c.model}]" for c in columns]]
    rows = comparison_rows(columns)
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([headers, *rows])
        return out.getvalue().rstrip("\n")
    table = tabulate(rows, headers=headers, tablefmt=TABLE_STYLES[fmt], disable_numparse=True)
    bullet = "- " if fmt == "markdown" else ""
    notes = [
        f"{bullet}training operations (lecture) = connections with biases x training examples "
        f"x epochs, as the lecture totals LeNet; (3 per connection) = connections with biases "
        f"x training examples x epochs x {OPERATIONS_PER_CONNECTION} (one multiply-add forward, "
        f"two backward), as it estimates AlexNet",
        f"{bullet}units, parameters and connections counted by cnnkit on the model at its own "
        f"input size",
        *[f"{bullet}{c.facts.network}: {c.facts.source}" for c in columns],
    ]
    if fmt == "html":
        return table + "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in notes) + "</ul>"
    return "\n".join([table, "", *notes])
