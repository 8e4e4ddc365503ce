"""`cnnkit bench` through the real CLI: four real trainers on real MNIST (its first
images, so that the test stays short), one table with times to accuracy."""

import re

import pytest

from cnnkit.analysis import size_report
from cnnkit.bench.harness import Epoch, TrainerResult
from cnnkit.models import build_model
from tests.helpers import assert_one_line_error, run_cli

TRAINER_NAMES = (
    "cnnkit train",
    "plain in-memory loop",
    "textbook DataLoader loop",
    "pytorch/examples MNIST",
)


@pytest.mark.slow
def test_bench_times_four_trainers_on_one_model() -> None:
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
    # The third bar is the reference's own accuracy after its first epoch.
    assert re.search(r"to (\d+\.\d\d)% \(s\).*later to 98\.30%", header)
    rows = {
        name: line for line in out.splitlines() for name in TRAINER_NAMES if line.startswith(name)
    }
    assert len(rows) == 4
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


def test_bench_refuses_unknown_trainers() -> None:
    result = run_cli("bench", "--trainers", "keras")
    assert_one_line_error(
        result,
        "unknown trainer 'keras'; known: cnnkit, in-memory, textbook, pytorch-examples",
    )
