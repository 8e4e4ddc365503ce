"""A training run's report: PNG figures and one self-contained ``report.html``.

``build_report(run_dir)`` needs only what ``cnnkit train`` leaves in the run's
folder (``metrics.jsonl`` and ``checkpoint.pt``): it reloads the model, predicts
the run's test split once, and draws the learning curves, the confusion matrix,
the first layer's filters and the worst misclassified test images. The HTML
embeds the same PNGs as base64 data URIs, so it opens offline and can be mailed.
"""

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit import plots
from cnnkit.analysis import size_report
from cnnkit.data import ImageSet
from cnnkit.files import atomic_write_bytes, atomic_write_text
from cnnkit.metrics import confusion_matrix, per_class_accuracy, topk_correct
from cnnkit.models import Classifier
from cnnkit.models.interface import kernels
from cnnkit.runs import EpochRecord, Run, load_run, read_metrics

REPORT_NAME = "report.html"
FIGURE_NAMES = {
    "curves": "learning_curves.png",
    "confusion": "confusion_matrix.png",
    "filters": "first_layer_filters.png",
    "worst": "worst_misclassified.png",
}
WORST_COUNT = 24  # misclassified test images shown, most confidently wrong first


@dataclass(frozen=True)
class RunEvaluation:
    """What the figures need: the run and its predictions on its test split."""

    run: Run
    test_set: ImageSet
    logits: torch.Tensor  # (N, K)

    @property
    def model(self) -> Classifier:
        return self.run.model


def evaluate_run(run_dir: Path, data_dir: Path | None = None) -> RunEvaluation:
    """Reload a run's model from its checkpoint and predict the test split it was
    tested on in training (its data folder and test limit)."""
    run = load_run(run_dir)
    config = run.checkpoint.config
    if config is not None:
        data_dir, limit = data_dir or config.data_dir, config.test_limit
    else:
        limit = None
    test_set = run.test_set(data_dir=data_dir, limit=limit)
    return RunEvaluation(run, test_set, run.logits(test_set.images))


def worst_misclassified(
    logits: torch.Tensor, labels: torch.Tensor, count: int = WORST_COUNT
) -> torch.Tensor:
    """Indices of misclassified images, highest probability on the wrong class first."""
    probs = logits.softmax(dim=1)
    confidence, predicted = probs.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order[:count]]


def draw_figures(history: list[EpochRecord], run: RunEvaluation) -> dict[str, bytes]:
    """The report's figures as PNG bytes, keyed like ``FIGURE_NAMES``."""
    classes = run.test_set.classes
    labels = run.test_set.labels
    predicted = run.logits.argmax(dim=1)
    figures = {
        "curves": plots.learning_curves(history),
        "confusion": plots.confusion_matrix_figure(
            confusion_matrix(predicted, labels, len(classes)), classes
        ),
    }
    convolutions = run.model.convolutions()
    if convolutions:
        name, first = convolutions[0]
        weight = kernels(first)
        figures["filters"] = plots.filter_grid(
            weight,
            f"First layer ({name}): {weight.shape[0]} filters, {weight.shape[2]}x{weight.shape[3]}",
        )
    worst = worst_misclassified(run.logits, labels)
    probs = run.logits.softmax(dim=1)
    captions = [
        f"true {classes[labels[i]]}\npred {classes[predicted[i]]} "
        f"({100 * float(probs[i, predicted[i]]):.0f}%)"
        for i in worst.tolist()
    ]
    title = f"The {len(worst)} most confident mistakes on {len(labels)} test images"
    if len(worst) == 0:
        title = "No misclassified test images"
    figures["worst"] = plots.image_grid(run.test_set.images[worst], captions, title)
    return {key: plots.figure_png(figure) for key, figure in figures.items()}


def build_report(run_dir: Path, data_dir: Path | None = None) -> Path:
    """Write the PNGs and ``report.html`` into ``run_dir``; return the HTML's path."""
    run_dir = Path(run_dir)
    history = read_metrics(run_dir)
    run = evaluate_run(run_dir, data_dir)
    pngs = draw_figures(history, run)
    for key, data in pngs.items():  # each whole or not at all, even on a full disk
        atomic_write_bytes(run_dir / FIGURE_NAMES[key], data)
    return atomic_write_text(run_dir / REPORT_NAME, render_html(run_dir, history, run, pngs))


def summary_rows(history: list[EpochRecord], run: RunEvaluation) -> list[tuple[str, str]]:
    record, labels = run.run.record, run.test_set.labels
    size = size_report(run.model, run.model.input_size, record.model).totals
    top1, top5 = topk_correct(run.logits, labels, (1, 5))
    count = len(labels)
    channels, height, width = run.model.input_size
    return [
        ("model", record.model),
        ("data set", f"{record.dataset} ({len(run.test_set.classes)} classes)"),
        ("input", f"{channels} x {height} x {width}"),
        ("parameters", f"{size.parameters:,}"),
        ("connections (multiply-adds per image)", f"{size.connections:,}"),
        ("epochs", str(history[-1].epoch)),
        ("training time", f"{sum(r.seconds for r in history):.1f} s"),
        ("test images", f"{count:,}"),
        ("test top-1 error", f"{100 * (1 - top1 / count):.2f}%"),
        ("test top-5 error", f"{100 * (1 - top5 / count):.2f}%"),
    ]


def render_html(
    run_dir: Path, history: list[EpochRecord], run: RunEvaluation, pngs: dict[str, bytes]
) -> str:
    """The page: a summary table, the figures as data URIs, per-epoch and per-class tables."""
    esc = html.escape
    title = f"cnnkit report: {run.run.record.model} on {run.run.record.dataset}"
    summary = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary_rows(history, run)
    )
    epochs = "".join(
        f"<tr><td>{r.epoch}</td><td>{r.train_loss:.4f}</td>"
        f"<td>{100 * r.test_top1_error:.2f}</td><td>{100 * r.test_top5_error:.2f}</td>"
        f"<td>{r.lr:.4g}</td><td>{r.seconds:.1f}</td></tr>"
        for r in history
    )
    confusion = confusion_matrix(
        run.logits.argmax(dim=1), run.test_set.labels, len(run.test_set.classes)
    )
    per_class = "".join(
        f"<tr><td>{esc(name)}</td><td>{int(confusion[i].sum())}</td>"
        f"<td>{100 * float(accuracy):.2f}</td></tr>"
        for i, (name, accuracy) in enumerate(
            zip(run.test_set.classes, per_class_accuracy(confusion), strict=True)
        )
    )
    captions = {
        "curves": "Learning curves",
        "confusion": "Confusion matrix",
        "filters": "First layer's filters",
        "worst": "Worst misclassified test images",
    }
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(data).decode()}" '
        f'alt="{captions[key]}" id="{key}"><figcaption>{captions[key]} '
        f"({FIGURE_NAMES[key]})</figcaption></figure>"
        for key, data in pngs.items()
    )
    return HTML_TEMPLATE.format(
        title=esc(title),
        run_dir=esc(str(run_dir)),
        summary=summary,
        figures=figures,
        epochs=epochs,
        per_class=per_class,
    )


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
figure {{ margin: 1.5em 0; }}
img {{ max-width: 100%; }}
figcaption {{ color: #555; font-size: 0.9em; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Run folder: <code>{run_dir}</code>. Rebuild with <code>cnnkit report {run_dir}</code>.</p>
<table>{summary}</table>
{figures}
<h2>Per epoch</h2>
<table>
<tr><th>epoch</th><th>train loss</th><th>top-1 error %</th><th>top-5 error %</th>
<th>learning rate</th><th>seconds</th></tr>
{epochs}
</table>
<h2>Per class (test)</h2>
<table><tr><th>class</th><th>images</th><th>accuracy %</th></tr>{per_class}</table>
</body>
</html>
"""
