"""`cnnkit bench` through the real CLI: five real trainers on real MNIST (its first
images, so that the test stays short), one table with times to accuracy."""

import re

import pytest

from cnnkit.analysis import size_report
from cnnkit.bench.harness import ACCURACIES, BenchReport, Epoch, TrainerResult, over_seeds
from cnnkit.config import Recipe
from cnnkit.models import build_model
from tests.helpers import assert_one_line_error, run_cli

TRAINER_NAMES = (
    "cnnkit train",
    "plain in-memory loop",
    "textbook DataLoader loop",
    "pytorch/examples MNIST",
    "tuomaso/train_mnist_fast",
)


@pytest.mark.slow
def test_bench_times_five_trainers_on_one_model() -> None:
    result = run_cli(
        "bench", "lenet5-modern", "--epochs", "2", "--train-limit", "5000",
        "--test-limit", "1000", "--workers", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    model = build_model("lenet5-modern")
    connections = size_report(model, model.input_size).totals.connections
    assert f"lenet5-modern: {connections:,} multiply-adds per image" in out
    header = next(line for line in out.splitlines() if line.startswith("trainer"))
    for column in ("img/s", "to 98.30% (s)", "to 99.00% (s)", "wall s", "img/s ratio"):
        assert column in header
    # The third and fourth bars are the references' own accuracies after their first epoch.
    assert re.search(r"to (\d+\.\d\d)% \(s\) +to (\d+\.\d\d)% \(s\).*later to 98\.30%", header)
    rows = {
        name: line for line in out.splitlines() for name in TRAINER_NAMES if line.startswith(name)
    }
    assert len(rows) == 5
    for line in rows.values():
        accuracy = float(re.search(r"(\d+\.\d+)%", line).group(1))
        # 5,000 images seen twice (lenet5-modern) or once (the reference); chance is 10%.
        assert accuracy > 50.0
    assert " 1.00x " in rows["cnnkit train"]
    speed = re.search(r"inference \(evaluate, predict\): ([\d,]+) test images/s", out)
    assert speed and int(speed.group(1).replace(",", "")) > 1000


def test_time_to_accuracy_is_the_end_of_the_first_test_that_passed_it() -> None:
    epochs = (Epoch(2.0, 100, 0.97, 5.0), Epoch(2.0, 100, 0.985, 9.0), Epoch(2.0, 100, 0.99, 13.0))
    result = TrainerResult("t", epochs, wall_seconds=15.0)
    assert result.time_to(0.983) == 9.0
    assert result.time_to(0.99) == 13.0
    assert result.time_to(0.995) is None
    assert result.images_per_second == 50.0  # 300 images in 6 s of training


def test_seeds_are_averaged_epoch_by_epoch_with_the_lowest_beside() -> None:
    runs = [
        TrainerResult("t", (Epoch(2.0, 100, 0.988, 10.0),), 11.0),
        TrainerResult("t", (Epoch(4.0, 100, 0.994, 14.0),), 15.0),
    ]
    mean = over_seeds(runs)
    assert mean.epochs == (Epoch(3.0, 100, 0.991, 12.0),)
    assert (mean.seeds, mean.lowest_accuracy, mean.wall_seconds) == (2, 0.988, 13.0)
    assert mean.time_to(0.990) == 12.0  # the mean passed 99.0%, though one seed did not


def test_each_references_first_epoch_is_a_bar() -> None:
    ours = TrainerResult("cnnkit train", (Epoch(1.0, 100, 0.99, 5.0),), 6.0)
    examples = TrainerResult(
        "pytorch/examples MNIST",
        (Epoch(1.0, 100, 0.981, 9.0), Epoch(1.0, 100, 0.987, 18.0)),
        19.0,
        reference=True,
    )
    fast = TrainerResult("train_mnist_fast", (Epoch(1.0, 100, 0.9905, 8.0),), 8.5, reference=True)
    report = BenchReport("m", Recipe(), 1, 2, 100.0, [ours, examples, fast], 1000.0)
    assert report.bars == (*ACCURACIES, 0.981, 0.9905)


def test_bench_refuses_unknown_trainers() -> None:
    result = run_cli("bench", "--trainers", "keras")
    assert_one_line_error(
        result,
        "unknown trainer 'keras'; known: cnnkit, in-memory, textbook, pytorch-examples, "
        "train-mnist-fast",
    )
