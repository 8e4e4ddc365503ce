"""Training reports through the real CLI on real MNIST: the PNGs have real content, the
HTML renders in headless Chromium with every image loaded, errors are one line."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.reports.report import FIGURE_NAMES, LAYER_MAPS_DIR, REPORT_NAME
from cnnkit.runs import EpochRecord, write_metrics
from tests.helpers import require_module, run_cli

# Smallest sizes at which each figure shows something: the confusion matrix of ten
# classes and the two rows of explained mistakes are larger than the schedule; the one
# row of LeNet-5's six filters is drawn at about 100 pixels a filter.
NEWER_FIELDS = ("train_top1_error", "test_loss")  # measured per epoch since they were added
MIN_SIZES = {
    "learning_curves.png": (500, 200),
    "learning_rate.png": (400, 200),
    "confusion_matrix.png": (300, 300),
    "first_layer_filters.png": (600, 120),
    "mistakes.png": (600, 400),
    "explained_test_image.png": (600, 200),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A short real run: LeNet-5 (modern) on 4000 MNIST digits, with TensorBoard logs."""
    out = tmp_path_factory.mktemp("run")
    result = run_cli(
        "train", "lenet5-modern", "--epochs", "2", "--train-limit", "4000", "--batch-size", "32",
        "--test-limit", "1000", "--no-progress", "--tensorboard", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"report: {out / REPORT_NAME}" in result.stdout
    return out


def test_pngs_have_size_and_content(run_dir: Path) -> None:
    assert set(MIN_SIZES) == set(FIGURE_NAMES.values())
    for name, (min_width, min_height) in MIN_SIZES.items():
        image = Image.open(run_dir / name)
        assert image.format == "PNG"
        assert image.width >= min_width and image.height >= min_height, (name, image.size)
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 10, f"{name} looks blank (pixel std {pixels.std():.1f})"
        assert (pixels < 128).mean() > 0.01, f"{name} has almost no dark pixels"


def test_report_is_self_contained_and_matches_the_metrics(run_dir: Path) -> None:
    page = (run_dir / REPORT_NAME).read_text()
    layers = len(list((run_dir / LAYER_MAPS_DIR).glob("*.png")))
    assert layers == 7  # lenet5-modern: c1, s2, c3, s4, c5, f6, output
    assert page.count('src="data:image/png;base64,') == len(FIGURE_NAMES) + layers
    assert "http://" not in page and "https://" not in page  # opens offline
    final = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert f"{100 * final['test_top1_error']:.2f}%" in page  # the summary agrees with the log
    assert final["test_top1_error"] < 0.3  # and the run learned (chance: 0.9)


def test_report_command_rebuilds_from_metrics_and_checkpoint(run_dir: Path, tmp_path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("metrics.jsonl", "checkpoint.pt"):
        shutil.copy(run_dir / name, copy / name)
    result = run_cli("report", str(copy))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in copy.glob("*.png")) == sorted(FIGURE_NAMES.values())
    layers = sorted(p.name for p in (copy / LAYER_MAPS_DIR).glob("*.png"))
    assert layers == sorted(p.name for p in (run_dir / LAYER_MAPS_DIR).glob("*.png"))
    page = (copy / REPORT_NAME).read_text()
    assert page.count("data:image/png") == len(FIGURE_NAMES) + len(layers)


def test_a_run_of_an_older_cnnkit_reports_what_it_measured(run_dir: Path, tmp_path) -> None:
    """Older runs measured neither the training error nor the test loss: the table says
    n/a there, and the curves draw what was measured."""
    for name in ("metrics.jsonl", "checkpoint.pt"):
        shutil.copy(run_dir / name, tmp_path / name)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    older = [{k: v for k, v in r.items() if k not in NEWER_FIELDS} for r in records]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in older))
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert epochs_table(tmp_path).count("n/a") == 2 * len(records)
    assert epochs_table(run_dir).count("n/a") == 0
    assert (
        Image.open(tmp_path / FIGURE_NAMES["curves"]).size[0] >= MIN_SIZES["learning_curves.png"][0]
    )


def epochs_table(run: Path) -> str:
    return (run / REPORT_NAME).read_text().split('id="epochs"')[1].split("</table>")[0]


def test_tensorboard_logs_every_epoch(run_dir: Path) -> None:
    accumulator = require_module(
        "tensorboard.backend.event_processing.event_accumulator", "tensorboard"
    )
    events = accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    errors = events.Scalars("error/test_top1")
    assert [e.step for e in errors] == [1, 2]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in errors] == pytest.approx([r["test_top1_error"] for r in records])
    for tag, field in (("error/train_top1", "train_top1_error"), ("loss/test", "test_loss")):
        assert [e.value for e in events.Scalars(tag)] == pytest.approx([r[field] for r in records])


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such run folder"),
        ("empty", "metrics.jsonl: not found"),
        ("metrics only", "checkpoint not found"),
    ],
)
def test_report_errors_are_one_line(tmp_path: Path, setup: str, message: str) -> None:
    run = tmp_path / "run"
    if setup != "missing":
        run.mkdir()
    if setup == "metrics only":
        write_metrics(run / "metrics.jsonl", [EpochRecord(1, 1.0, 0.5, 0.1)])
    result = run_cli("report", str(run))
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"epoch": 1, "train_loss": "x", "test_top1_error": 0.1, "test_top5_error": 0}',
            "train_loss is 'x'",
        ),
        (
            '{"epoch": true, "train_loss": 1, "test_top1_error": 0.1, "test_top5_error": 0}',
            "epoch is True",
        ),
        ('{"epoch": 1}', "train_loss is missing"),
        ("[" * 100_000 + "]" * 100_000, "nested more than 32 deep"),
    ],
)
def test_damaged_metrics_are_one_line_naming_the_file(tmp_path: Path, line: str, message: str):
    """A metrics.jsonl whose records are not numbers, are partial or nest too deep is
    refused when read, with one line, before anything is drawn from it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(line + "\n")
    result = run_cli("report", str(run))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "metrics.jsonl:1: damaged epoch record" in result.stderr
    assert message in result.stderr
