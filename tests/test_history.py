"""`cnnkit history` through the real CLI on a real MNIST subset: the table, its files,
the cache that lets an interrupted replay continue; the budget planner."""

import json

import pytest

from cnnkit.milestones import plan_epochs
from cnnkit.models import history_line, model_entry
from tests.helpers import require_module, run_cli

require_module("sklearn", "classic")


def test_the_line_goes_through_the_years_from_lenet5() -> None:
    years = [model_entry(name).milestone.year for name in history_line()]
    assert history_line()[0] == "lenet5" and years[0] == 1998  # LeCun et al. 1998
    assert years == sorted(years) and len(set(years)) >= 4  # 1998, 2012, 2013, 2014, 2015


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1000.0, (4, 60000)),  # 4 x (60 s + 10 s) fits: the most epochs allowed
        (150.0, (2, 60000)),  # 2 x 70 s fits, 3 x 70 s does not
        (40.0, (1, 30000 // 128 * 128)),  # 30 s left after testing: half the split
        (5.0, (1, 8 * 128)),  # never fewer than 8 batches
    ],
)
def test_plan_fits_the_budget(seconds: float, expected: tuple[int, int]) -> None:
    # 1000 training and 1000 test images per second: 60 s per epoch plus 10 s of testing.
    assert plan_epochs(seconds, 1000.0, 1000.0, 60000, 10000, 4, 128) == expected


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_history_table_files_and_cache(tmp_path) -> None:
    args = [
        "history", "--models", "lenet5-modern", "--epochs", "2", "--train-limit", "3000",
        "--test-limit", "1000", "--out", str(tmp_path),
    ]  # fmt: skip
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "HOG + linear SVM" in first.stdout and "LeNet-5 (ReLU, max pooling)" in first.stdout
    rows = json.loads((tmp_path / "history.json").read_text())
    assert [row["model"] for row in rows] == ["lenet5-modern", "hog-svm"]  # sorted by year
    assert (rows[0]["epochs"], rows[0]["train_images"]) == (2, 3000)  # the fixed budget
    assert all(row["top1_error"] < 0.5 for row in rows)  # real runs; chance is 0.9
    assert rows[1]["top1_error"] < 0.08
    assert (tmp_path / "history.png").stat().st_size > 5000
    assert "top-1 error %" in (tmp_path / "history.md").read_text()
    assert "Each net trains 2 epochs" in (tmp_path / "history.md").read_text()
    logged = [json.loads(line) for line in (tmp_path / "lenet5-modern/metrics.jsonl").open()]
    assert logged[-1]["test_top1_error"] == pytest.approx(rows[0]["top1_error"])

    # A rerun reads the cached results: same table, nothing trained again.
    stamp = (tmp_path / "lenet5-modern/checkpoint.pt").stat().st_mtime_ns
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert (tmp_path / "lenet5-modern/checkpoint.pt").stat().st_mtime_ns == stamp

    # A net whose run was cut off after its checkpoint continues from it.
    (tmp_path / "lenet5-modern/result.json").unlink()
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((tmp_path / "history.json").read_text())[0]["top1_error"] == pytest.approx(
        rows[0]["top1_error"]
    )


def test_a_time_budget_is_planned_from_measured_speed(tmp_path) -> None:
    result = run_cli(
        "history", "--models", "lenet5-modern", "--budget", "3", "--epochs", "4",
        "--train-limit", "2000", "--test-limit", "500", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    net = json.loads((tmp_path / "lenet5-modern/result.json").read_text())
    assert 1 <= net["epochs"] <= 4 and net["train_images"] <= 2000
    assert "Nets share a budget of 3 s" in (tmp_path / "history.md").read_text()


def test_unknown_model_is_one_line(tmp_path) -> None:
    result = run_cli("history", "--models", "lenet7", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "unknown model 'lenet7'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"year": 2012}', "damaged result: model is missing"),
        ("[" * 100_000, "more than 65,536 bytes"),
        ("[" * 1_000, "nested more than"),
        ('{"year": ' + "9" * 5000 + "}", "an integer too long"),
    ],
)
def test_a_damaged_result_is_one_error_naming_the_file(tmp_path, text, fragment) -> None:
    from cnnkit.errors import CnnkitError
    from cnnkit.milestones import read_result

    path = tmp_path / "result.json"
    path.write_text(text)
    with pytest.raises(CnnkitError) as caught:
        read_result(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and fragment in message and "\n" not in message
