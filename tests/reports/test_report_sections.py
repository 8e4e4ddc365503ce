"""The report's sections, with real content from the session's trained runs: the recipe
and the versions, the size table with the rules of thumb, the per-epoch figures,
per-class precision and recall equal to the confusion matrix's, the explained mistakes,
every layer's maps, the filters; and the page at a phone's 390 px in Chromium."""

import dataclasses
import html
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnkit
from cnnkit.analysis import size_report
from cnnkit.config import LENET5_RECIPE, OPTIMIZERS
from cnnkit.reports.page import CAPTIONS
from cnnkit.reports.recipe import OPTIMISERS, recipe_rows
from cnnkit.reports.report import (
    FIGURE_NAMES,
    LAYER_MAPS_DIR,
    MISTAKES_SHOWN,
    build_report,
)
from cnnkit.runs import load_checkpoint, load_run
from tests.helpers.browser import chromium_browser, page_recording_errors

SECTIONS = ("results", "recipe", "size", "training", "per-class", "mistakes", "layers", "filters")
# LeNet-5's layers as LeCun et al. 1998 (Sec. II.B) size them: name, shape and units.
LENET5_LAYERS = [
    ("c1", "6x28x28", "4,704"),
    ("s2", "6x14x14", "1,176"),
    ("c3", "16x10x10", "1,600"),
    ("s4", "16x5x5", "400"),
    ("c5", "120x1x1", "120"),
    ("f6", "84", "84"),
    ("output", "10", "10"),
]


def report_of(checkpoint: Path, folder: Path) -> Path:
    """The report of a copy of the run (the session's run folder stays as it was)."""
    folder.mkdir()
    for name in ("checkpoint.pt", "metrics.jsonl"):
        shutil.copy(checkpoint.parent / name, folder / name)
    return build_report(folder)


@pytest.fixture(scope="module")
def digit_report(digit_run, tmp_path_factory) -> Path:
    return report_of(digit_run, tmp_path_factory.mktemp("digit-report") / "run")


@pytest.fixture(scope="module")
def photo_report(photo_run, tmp_path_factory) -> Path:
    return report_of(photo_run, tmp_path_factory.mktemp("photo-report") / "run")


def sections(page: str) -> dict[str, str]:
    found = dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, re.S))
    assert tuple(found) == SECTIONS
    return found


def table_value(section: str, name: str) -> str:
    match = re.search(rf"<tr><th>{re.escape(name)}</th><td>(.*?)</td></tr>", section)
    assert match, f"no row {name!r}"
    return html.unescape(match.group(1))


def test_every_section_has_real_content(digit_report: Path) -> None:
    page = digit_report.read_text()
    parts = sections(page)
    assert float(table_value(parts["results"], "test top-1 error").rstrip("%")) < 10
    size = parts["size"]
    assert size.count("rule of thumb:") == 3 and re.search(r"<td>c1\s*</td>", size)
    # LeCun et al. 1998, Sec. II.B: 340,908 connections, 60,000 trainable parameters
    assert "340,908 with biases" in size and "60,000 parameters" in size
    training = parts["training"]
    assert 'id="figure-curves"' in training and 'id="figure-schedule"' in training
    epochs = (digit_report.parent / "metrics.jsonl").read_text().count("\n")
    rows = re.findall(r'<tr><td class="n">(.*?)</tr>', training)
    assert len(rows) == epochs >= 1 and "n/a" not in "".join(rows)
    # The trainer's test loss after the last epoch, and the report's own measurement.
    last_test_loss = float(re.findall(r'<td class="n">([\d.]+)</td>', rows[-1])[2])
    measured = float(table_value(parts["results"], "test loss (cross-entropy)"))
    assert last_test_loss == pytest.approx(measured, abs=2e-4)
    mistakes = parts["mistakes"]
    rows = re.findall(r"<tr><td>test image (\d+)</td><td>(\w+)</td><td>(.*?)</td></tr>", mistakes)
    assert 1 <= len(rows) <= MISTAKES_SHOWN
    for _, true, top in rows:
        names = re.findall(r"(\w+) [\d.]+%", top)
        assert len(names) == 3 and names[0] != true  # wrong, with its top 3
    assert 'id="figure-mistakes"' in mistakes and "Grad-CAM on c3" in mistakes
    layers = parts["layers"]
    for name, shape, units in LENET5_LAYERS:
        assert f"{name} (" in layers and f"): {shape}, {units} units" in layers, name
    assert layers.count("<img") == len(LENET5_LAYERS) + 1  # and the explained image
    assert 'id="figure-filters"' in parts["filters"]
    for key, name in FIGURE_NAMES.items():
        assert name in page and html.escape(CAPTIONS[key]) in page


def test_per_class_precision_and_recall_are_the_confusion_matrix(digit_run, digit_report):
    """Recomputed here in numpy from the run's own predictions of its 500 test images."""
    run = load_run(digit_run)
    test_set = run.test_set(limit=500)
    predicted = run.logits(test_set.images).argmax(dim=1).numpy()
    labels = test_set.labels.numpy()
    confusion = np.zeros((10, 10), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = sections(digit_report.read_text())["per-class"]
    rows = re.findall(
        r'<tr data-class="(\d)"><td>\d</td><td class="n">(\d+)</td><td class="n">(\d+)</td>'
        r'<td class="n">([\d.]+|n/a)</td><td class="n">([\d.]+|n/a)</td></tr>',
        per_class,
    )
    assert [int(row[0]) for row in rows] == list(range(10))
    for k, images, taken, precision, recall in rows:
        k = int(k)
        assert int(images) == confusion[k].sum() and int(taken) == confusion[:, k].sum()
        assert precision == f"{100 * confusion[k, k] / confusion[:, k].sum():.2f}"
        assert recall == f"{100 * confusion[k, k] / confusion[k].sum():.2f}"
    assert sum(int(row[1]) for row in rows) == 500


def test_recipe_names_the_runs_settings_and_versions(photo_report: Path) -> None:
    """The photo run's options, as tests/conftest.py gives them."""
    recipe = sections(photo_report.read_text())["recipe"]
    expected = {
        "model": "resnet8",
        "epochs": "2",
        "batch size": "32",
        "learning rate": "0.05 (peak)",
        "augmentation": "flip",
        "seed": "0",
        "optimiser": "sgd: SGD with momentum and weight decay (torch.optim.SGD)",
        "precision": "fp32",
        "cnnkit version": cnnkit.__version__,
        "torch version": str(torch.__version__),
    }
    for name, value in expected.items():
        assert table_value(recipe, name) == value
    assert table_value(recipe, "device").startswith("auto (")
    assert table_value(recipe, "schedule").startswith("one-cycle: linear warm-up")


def test_an_old_checkpoint_says_what_was_not_recorded(digit_run) -> None:
    checkpoint = load_checkpoint(digit_run)
    rows = dict(recipe_rows(checkpoint))
    assert rows["batch size"] == str(LENET5_RECIPE.recipe.batch_size)
    assert rows["learning rate"] == f"{LENET5_RECIPE.recipe.lr:g} (peak)"
    old = dict(recipe_rows(dataclasses.replace(checkpoint, config=None, environment=None)))
    assert old["training settings"].startswith("not recorded")
    assert old["cnnkit, torch and Python versions"].startswith("not recorded")
    assert "batch size" not in old and old["model"] == "lenet5"


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimiser_is_described(digit_run, optimizer: str) -> None:
    checkpoint = load_checkpoint(digit_run)
    assert checkpoint.config is not None
    recipe = dataclasses.replace(checkpoint.config.recipe, optimizer=optimizer)
    config = dataclasses.replace(checkpoint.config, recipe=recipe)
    rows = dict(recipe_rows(dataclasses.replace(checkpoint, config=config)))
    assert rows["optimiser"] == f"{optimizer}: {OPTIMISERS[optimizer]}"
    assert set(OPTIMISERS) == set(OPTIMIZERS)


def colourful_share(path: Path) -> float:
    """Share of pixels with clearly unequal red, green and blue: a colour scale in use."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    return float((pixels.max(axis=2) - pixels.min(axis=2) > 60).mean())


def test_filters_and_maps_are_large_and_in_colour(digit_report, photo_report, photo_run) -> None:
    digits, photos = digit_report.parent, photo_report.parent
    filters = Image.open(digits / FIGURE_NAMES["filters"])
    assert filters.width >= 6 * 90  # LeNet-5's six 5x5 filters, about 100 px each
    for folder in (digits, photos):
        assert colourful_share(folder / FIGURE_NAMES["filters"]) > 0.1
        assert colourful_share(folder / FIGURE_NAMES["mistakes"]) > 0.1  # Grad-CAM over them
    layer_files = sorted((photos / LAYER_MAPS_DIR).glob("*.png"))
    assert layer_files[0].name == "01-conv1.png" and layer_files[-1].name.endswith("-fc.png")
    page = photo_report.read_text()
    assert page.count("<img") == len(FIGURE_NAMES) + len(layer_files)
    # One file per layer with units, as the size analyzer counts them (the input apart).
    model = load_run(photo_run).model
    counted = size_report(model, model.input_size, "resnet8")
    assert len(layer_files) == sum(1 for row in counted.layers if row.units) - 1


def test_page_reads_at_390_px_and_every_figure_loads(digit_report, tmp_path) -> None:
    with chromium_browser(tmp_path / "profile", viewport={"width": 390, "height": 844}) as browser:
        page, errors = page_recording_errors(browser, failed_requests=True)
        page.goto(digit_report.as_uri(), wait_until="load")
        images = page.eval_on_selector_all(
            "img", "images => images.map(i => [i.complete, i.naturalWidth, i.width])"
        )
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
        )
        title = page.title()
        shot = page.screenshot(full_page=True)
    (tmp_path / "page-390.png").write_bytes(shot)  # kept with the test's files
    assert errors == []
    assert len(images) == len(FIGURE_NAMES) + len(LENET5_LAYERS)
    assert all(done and natural > 100 and 0 < shown <= 390 for done, natural, shown in images)
    assert widths[0] <= widths[2] and widths[1] <= widths[2], widths  # no sideways scroll
    assert "lenet5" in title
    screenshot = np.asarray(Image.open(tmp_path / "page-390.png").convert("L"), dtype=np.float64)
    assert screenshot.shape[1] == 390 and screenshot.shape[0] > 3000 and screenshot.std() > 10
