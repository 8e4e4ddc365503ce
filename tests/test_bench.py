"""`cnnkit bench` through the real CLI: three real trainers on real MNIST, one table."""

import re

import pytest

from cnnkit.analysis import size_report
from cnnkit.models import build_model
from tests.conftest import run_cli
from tests.test_cli_errors import assert_one_line_error


@pytest.mark.slow
def test_bench_times_three_trainers_on_one_model() -> None:
    result = run_cli("bench", "lenet5-modern", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    model = build_model("lenet5-modern")
    connections = size_report(model, model.input_size).totals.connections
    assert f"lenet5-modern: {connections:,} multiply-adds per image" in out
    rows = {
        name: line
        for line in out.splitlines()
        for name in ("cnnkit train", "plain in-memory loop", "textbook DataLoader loop")
        if line.startswith(name)
    }
    assert len(rows) == 3
    for line in rows.values():
        accuracy = float(re.search(r"(\d+\.\d+)%", line).group(1))
        assert accuracy > 95.0  # one real epoch of lenet5-modern on MNIST
        assert re.search(r"\d+\.\d\dx$", line)  # the speed-up column
    assert rows["cnnkit train"].endswith("1.00x")
    speed = re.search(r"inference \(evaluate, predict\): ([\d,]+) test images/s", out)
    assert speed and int(speed.group(1).replace(",", "")) > 1000


def test_bench_refuses_unknown_trainers() -> None:
    result = run_cli("bench", "--trainers", "keras")
    assert_one_line_error(result, "unknown trainer 'keras'; known: cnnkit, in-memory, textbook")
