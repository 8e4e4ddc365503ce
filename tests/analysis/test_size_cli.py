"""``cnnkit size`` through the real CLI: output formats and one-line errors."""

import json

from tests.helpers import run_cli


def test_size_json_through_the_cli() -> None:
    result = run_cli("size", "lenet5", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "lenet5" and data["input"] == [1, 32, 32]
    assert data["totals"]["parameters"] == 60_000
    assert data["totals"]["connections_with_biases"] == 340_908


def test_compare_prints_the_lecture_table() -> None:
    result = run_cli("size", "--compare", "lenet1", "lenet5", "alexnet")
    assert result.returncode == 0, result.stderr
    assert "LeNet (1989)" in result.stdout and "AlexNet (2012)" in result.stdout
    assert "64,660" in result.stdout and "7,291" in result.stdout
    assert "x training examples x epochs x 3" in result.stdout
    # Both conventions: the lecture's for LeNet (about 11 billion) and 3 per connection.
    assert "training operations (lecture: connections x examples x epochs)" in result.stdout
    assert "training operations (3 per connection: forward + backward)" in result.stdout
    assert "10.8 billion" in result.stdout and "32.5 billion" in result.stdout


def test_size_errors_are_one_line() -> None:
    for args, message in [
        (("size", "nope"), "unknown model 'nope'"),
        (("size", "alexnet", "--input", "3,x,5"), "expected three positive integers"),
        (("size", "alexnet", "--input", "3,32,32"), "at least 67x67"),
    ]:
        result = run_cli(*args)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
