"""A training run's report: PNG figures and one self-contained ``report.html``.

``build_report(run_dir)`` needs only what ``cnnkit train`` leaves in the run's folder
(``metrics.jsonl`` and ``checkpoint.pt``): it reloads the model, predicts the run's test
split once, explains its most confident mistakes and one test image (``runs.explain``),
and draws the learning curves and schedule, the confusion matrix, the first layer's
filters, the mistakes under their Grad-CAM, and every layer's maps. The HTML embeds the
same PNGs as base64 data URIs, so it opens offline and can be mailed.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnkit import plots
from cnnkit.analysis import size_report
from cnnkit.analysis.render import render_size
from cnnkit.data import ImageSet
from cnnkit.files import atomic_write_bytes, atomic_write_text
from cnnkit.metrics import (
    confusion_matrix,
    per_class_accuracy,
    per_class_precision,
    topk_correct,
)
from cnnkit.models import Classifier
from cnnkit.models.interface import kernels
from cnnkit.reports.page import ClassRow, Figures, Mistake, ReportPage, render_html
from cnnkit.reports.recipe import recipe_rows
from cnnkit.runs import EpochRecord, Run, load_run, read_metrics
from cnnkit.runs.explain import Explanation, explain_batch

REPORT_NAME = "report.html"
FIGURE_NAMES = {
    "curves": "learning_curves.png",
    "schedule": "learning_rate.png",
    "confusion": "confusion_matrix.png",
    "filters": "first_layer_filters.png",
    "mistakes": "mistakes.png",
    "explained": "explained_test_image.png",
}
LAYER_MAPS_DIR = "layer_maps"  # one PNG per layer of the explained test image
MISTAKES_SHOWN = 8  # the most confidently wrong test images, explained
EXPLAINED_IMAGE = 0  # the test image whose every layer is shown


@dataclass(frozen=True)
class RunEvaluation:
    """What the report needs: the run and its predictions on its test split."""

    run: Run
    test_set: ImageSet
    logits: torch.Tensor  # (N, K)

    @property
    def model(self) -> Classifier:
        return self.run.model

    @property
    def confusion(self) -> torch.Tensor:
        classes = len(self.test_set.classes)
        return confusion_matrix(self.logits.argmax(dim=1), self.test_set.labels, classes)


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
    logits: torch.Tensor, labels: torch.Tensor, count: int = MISTAKES_SHOWN
) -> torch.Tensor:
    """Indices of misclassified images, highest probability on the wrong class first."""
    probs = logits.softmax(dim=1)
    confidence, predicted = probs.max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order[:count]]


@dataclass(frozen=True)
class Explained:
    """The explanations the report draws, each for the class the network gave."""

    mistakes: list[Explanation]
    mistake_labels: list[int]  # their true classes
    image: Explanation  # the test image whose every layer is shown
    image_label: int


def explain_run(evaluation: RunEvaluation) -> Explained:
    """The most confident mistakes and one test image, explained in one batch."""
    labels = evaluation.test_set.labels
    worst = worst_misclassified(evaluation.logits, labels).tolist()
    chosen = [*worst, EXPLAINED_IMAGE]
    explanations = explain_batch(
        evaluation.run,
        evaluation.test_set.images[chosen],
        [f"test image {index}" for index in chosen],
        smoothgrad_samples=0,
        novelty=False,
    )
    return Explained(
        explanations[:-1],
        [int(labels[i]) for i in worst],
        explanations[-1],
        int(labels[EXPLAINED_IMAGE]),
    )


def draw_figures(
    history: list[EpochRecord], evaluation: RunEvaluation, explained: Explained
) -> Figures:
    """The report's figures as PNG bytes."""
    classes = evaluation.test_set.classes
    config = evaluation.run.checkpoint.config
    count = len(evaluation.test_set)
    figures = {
        "curves": plots.learning_curves(history),
        "schedule": plots.learning_rate(history, config.recipe.lr if config else None),
        "confusion": plots.confusion_matrix_figure(evaluation.confusion, classes),
    }
    convolutions = evaluation.model.convolutions()
    if convolutions:
        name, first = convolutions[0]
        weight = kernels(first)
        figures["filters"] = plots.filter_grid(
            weight,
            f"First layer ({name}): {weight.shape[0]} filters, "
            f"{weight.shape[1]}x{weight.shape[2]}x{weight.shape[3]}",
        )
    title = f"The {len(explained.mistakes)} most confident mistakes on {count:,} test images"
    figures["mistakes"] = plots.mistakes(
        explained.mistakes,
        explained.mistake_labels,
        title if explained.mistakes else "No misclassified test images",
    )
    figures["explained"] = plots.explained_image(explained.image, image_caption(explained))
    names = tuple(classes)
    return Figures(
        {key: plots.figure_png(figure) for key, figure in figures.items()},
        [
            (layer, plots.figure_png(plots.layer_maps(layer, names)))
            for layer in explained.image.layers
        ],
    )


def image_caption(explained: Explained) -> str:
    image = explained.image
    true = image.classes[explained.image_label]
    return (
        f"Test image {EXPLAINED_IMAGE}: true {true}, taken for {image.label} "
        f"({100 * float(image.probabilities[image.predicted]):.1f}%)"
    )


def build_report(run_dir: Path, data_dir: Path | None = None) -> Path:
    """Write the PNGs and ``report.html`` into ``run_dir``; return the HTML's path."""
    run_dir = Path(run_dir)
    history = read_metrics(run_dir)
    evaluation = evaluate_run(run_dir, data_dir)
    explained = explain_run(evaluation)
    figures = draw_figures(history, evaluation, explained)
    for key, data in figures.pngs.items():  # each whole or not at all, even on a full disk
        atomic_write_bytes(run_dir / FIGURE_NAMES[key], data)
    for index, (layer, data) in enumerate(figures.layers, 1):
        atomic_write_bytes(run_dir / LAYER_MAPS_DIR / layer_file(index, layer.name), data)
    page = report_page(run_dir, history, evaluation, explained, figures)
    return atomic_write_text(run_dir / REPORT_NAME, render_html(page))


def layer_file(index: int, name: str) -> str:
    """'01-c1.png': in forward order, the module's name made safe as a file name."""
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"


def report_page(
    run_dir: Path,
    history: list[EpochRecord],
    evaluation: RunEvaluation,
    explained: Explained,
    figures: Figures,
) -> ReportPage:
    record = evaluation.run.record
    model = evaluation.model
    size = size_report(model, model.input_size, record.model)
    loss = test_loss(evaluation)
    return ReportPage(
        title=f"cnnkit report: {record.model} on {record.dataset}",
        run_dir=run_dir,
        results=result_rows(history, evaluation, size.totals.parameters, loss),
        recipe=recipe_rows(evaluation.run.checkpoint),
        size_html=render_size(size, "html"),
        history=history,
        per_class=class_rows(evaluation),
        mistakes=[
            Mistake(e.source, e.classes[label], e.top(3))
            for e, label in zip(explained.mistakes, explained.mistake_labels, strict=True)
        ],
        explained_caption=image_caption(explained),
        gradcam_layer=explained.image.gradcam_layer,
        figures=figures,
        figure_files=FIGURE_NAMES,
    )


def test_loss(evaluation: RunEvaluation) -> float:
    """Mean cross-entropy of the final model on the test split (as training's loss)."""
    return float(F.cross_entropy(evaluation.logits, evaluation.test_set.labels))


def result_rows(
    history: list[EpochRecord], evaluation: RunEvaluation, parameters: int, loss: float
) -> list[tuple[str, str]]:
    labels = evaluation.test_set.labels
    top1, top5 = topk_correct(evaluation.logits, labels, (1, 5))
    count = len(labels)
    channels, height, width = evaluation.model.input_size
    return [
        ("input", f"{channels} x {height} x {width}"),
        ("parameters", f"{parameters:,}"),
        ("epochs", str(history[-1].epoch)),
        ("training time", f"{sum(r.seconds for r in history):.1f} s"),
        ("test images", f"{count:,}"),
        ("test top-1 error", f"{100 * (1 - top1 / count):.2f}%"),
        ("test top-5 error", f"{100 * (1 - top5 / count):.2f}%"),
        ("test loss (cross-entropy)", f"{loss:.4f}"),
    ]


def class_rows(evaluation: RunEvaluation) -> list[ClassRow]:
    """Each class's test images, how many were taken for it, its precision and recall."""
    confusion = evaluation.confusion
    precision, recall = per_class_precision(confusion), per_class_accuracy(confusion)
    return [
        ClassRow(
            name,
            int(confusion[k].sum()),
            int(confusion[:, k].sum()),
            float(precision[k]),
            float(recall[k]),
        )
        for k, name in enumerate(evaluation.test_set.classes)
    ]
