"""The report as one self-contained HTML page: its sections from a ``ReportPage``, the
figures as data URIs. Readable on a phone: the page never scrolls sideways (a wide table
scrolls inside its own box, images shrink to the width)."""

import html
import math
from dataclasses import dataclass
from pathlib import Path

from cnnkit.data.image_files import png_data_uri
from cnnkit.plots import layer_label
from cnnkit.runs import EpochRecord
from cnnkit.runs.explain import LayerActivations


@dataclass(frozen=True)
class Figures:
    """The report's figures as PNG bytes."""

    pngs: dict[str, bytes]  # keyed like report.FIGURE_NAMES
    layers: list[tuple[LayerActivations, bytes]]  # every layer's maps, in forward order


@dataclass(frozen=True)
class ClassRow:
    name: str
    images: int  # test images of the class
    predicted: int  # test images taken for it
    precision: float  # NaN: never predicted
    recall: float  # NaN: no test image of it


@dataclass(frozen=True)
class Mistake:
    source: str  # "test image 17"
    true: str
    top: list[tuple[str, float]]  # the three most probable classes, best first


@dataclass(frozen=True)
class ReportPage:
    title: str
    run_dir: Path
    results: list[tuple[str, str]]
    recipe: list[tuple[str, str]]
    size_html: str  # analysis.render.render_size's HTML: the table and the rules of thumb
    history: list[EpochRecord]
    per_class: list[ClassRow]
    mistakes: list[Mistake]
    explained_caption: str
    gradcam_layer: str | None
    figures: Figures
    figure_files: dict[str, str]  # the figures' PNG file names, by key


CAPTIONS = {
    "curves": "Training loss and test error per epoch",
    "schedule": "The learning rate at the end of each epoch, under the recipe's peak",
    "confusion": "Confusion matrix of the test split (rows: true class)",
    "filters": "The first layer's filters, on one colour scale symmetric about zero",
    "mistakes": "The most confident mistakes: Grad-CAM of the class taken, the true class "
    "and the three most probable classes",
    "explained": "The image as the network received it, where the evidence for its class "
    "lies (Grad-CAM) and which pixels change the class's score most (gradient saliency)",
}


def render_html(page: ReportPage) -> str:
    esc = html.escape
    sections = [
        section("results", "Results", key_value_table(page.results)),
        section("recipe", "Recipe and environment", key_value_table(page.recipe)),
        section("size", "Size", f'<div class="scroll">{page.size_html}</div>'),
        section("training", "Training", training_html(page)),
        section("per-class", "Per class (test)", per_class_html(page)),
        section("mistakes", "Mistakes", mistakes_html(page)),
        section("layers", "Every layer, for one test image", layers_html(page)),
        section("filters", "First layer's filters", figure_html(page, "filters")),
    ]
    contents = " · ".join(f'<a href="#{key}">{esc(name)}</a>' for key, name, _ in sections)
    return HTML_TEMPLATE.format(
        title=esc(page.title),
        run_dir=esc(str(page.run_dir)),
        contents=contents,
        sections="\n".join(body for _, _, body in sections),
    )


def section(key: str, heading: str, body: str) -> tuple[str, str, str]:
    return (
        key,
        heading,
        f'<section id="{key}">\n<h2>{html.escape(heading)}</h2>\n{body}\n</section>',
    )


def key_value_table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<div class="scroll"><table>{cells}</table></div>'


def figure_html(page: ReportPage, key: str) -> str:
    if key not in page.figures.pngs:
        return "<p>The model has no convolution.</p>"
    caption = f"{CAPTIONS[key]} ({page.figure_files[key]})"
    return image_html(page.figures.pngs[key], caption, key)


def image_html(png: bytes, caption: str, key: str) -> str:
    alt = html.escape(caption, quote=True)
    return (
        f'<figure id="figure-{key}"><img src="{png_data_uri(png)}" alt="{alt}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def training_html(page: ReportPage) -> str:
    rows = "".join(
        f'<tr><td class="n">{r.epoch}</td><td class="n">{r.train_loss:.4f}</td>'
        f'<td class="n">{percent(r.train_top1_error)}</td><td class="n">{loss(r.test_loss)}</td>'
        f'<td class="n">{100 * r.test_top1_error:.2f}</td>'
        f'<td class="n">{100 * r.test_top5_error:.2f}</td>'
        f'<td class="n">{r.lr:.4g}</td><td class="n">{r.seconds:.1f}</td></tr>'
        for r in page.history
    )
    note = (
        "<p>The training loss and error are those of each batch as it was trained on "
        "(augmented, with dropout, by weights still moving), as the epoch went; the test "
        "loss and errors are measured after the epoch. Runs of an older cnnkit measured "
        "neither the training error nor the test loss (n/a).</p>"
    )
    return (
        figure_html(page, "curves")
        + note
        + figure_html(page, "schedule")
        + '<div class="scroll"><table id="epochs"><tr><th>epoch</th><th>train loss</th>'
        "<th>train top-1 error %</th><th>test loss</th>"
        "<th>test top-1 error %</th><th>test top-5 error %</th><th>learning rate</th>"
        f"<th>seconds</th></tr>{rows}</table></div>"
    )


def percent(fraction: float) -> str:
    return "n/a" if math.isnan(fraction) else f"{100 * fraction:.2f}"


def loss(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def per_class_html(page: ReportPage) -> str:
    rows = "".join(
        f'<tr data-class="{html.escape(row.name, quote=True)}"><td>{html.escape(row.name)}</td>'
        f'<td class="n">{row.images:,}</td><td class="n">{row.predicted:,}</td>'
        f'<td class="n">{percent(row.precision)}</td><td class="n">{percent(row.recall)}</td></tr>'
        for row in page.per_class
    )
    return (
        "<p>Precision: of the test images taken for a class, the share that are of it. "
        "Recall: of a class's test images, the share taken for it (n/a: none).</p>"
        '<div class="scroll"><table id="per-class-table"><tr><th>class</th><th>images</th>'
        "<th>taken for it</th><th>precision %</th><th>recall %</th></tr>"
        f"{rows}</table></div>" + figure_html(page, "confusion")
    )


def mistakes_html(page: ReportPage) -> str:
    if not page.mistakes:
        return "<p>No test image was misclassified.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(m.source)}</td><td>{html.escape(m.true)}</td><td>"
        + ", ".join(f"{html.escape(name)} {100 * p:.1f}%" for name, p in m.top)
        + "</td></tr>"
        for m in page.mistakes
    )
    where = f" on {page.gradcam_layer}" if page.gradcam_layer else ""
    return (
        f"<p>Grad-CAM{where} shows where the evidence for the wrong class lies.</p>"
        + figure_html(page, "mistakes")
        + '<div class="scroll"><table id="mistakes-table"><tr><th>image</th><th>true</th>'
        f"<th>top 3</th></tr>{rows}</table></div>"
    )


def layers_html(page: ReportPage) -> str:
    layers = "".join(
        image_html(png, layer_label(layer), f"layer-{index}")
        for index, (layer, png) in enumerate(page.figures.layers, 1)
    )
    return (
        f"<p>{html.escape(page.explained_caption)}. Each layer's units after its activation "
        "(what the next layer reads), in forward order, on its own colour scale; its units "
        "counted as in the size table.</p>" + figure_html(page, "explained") + layers
    )


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em auto; max-width: 1000px; padding: 0 12px;
  color: #222; line-height: 1.4; }}
h1 {{ font-size: 1.5em; }}
h1, p, code, figcaption, nav {{ overflow-wrap: anywhere; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left;
  vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 1.2em 0; }}
img {{ max-width: 100%; height: auto; }}
figcaption {{ color: #555; font-size: 0.9em; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Run folder: <code>{run_dir}</code>. Rebuild with <code>cnnkit report {run_dir}</code>.</p>
<nav>{contents}</nav>
{sections}
</body>
</html>
"""
