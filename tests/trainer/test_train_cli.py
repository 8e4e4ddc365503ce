"""Training through the real CLI on real MNIST subsets: learning, determinism, resume."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import run_cli

SUBSET = ["--train-limit", "6000", "--test-limit", "2000", "--no-progress"]


def read_metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_timing(records):
    return [
        {k: v for k, v in r.items() if k not in ("seconds", "images_per_second", "elapsed_seconds")}
        for r in records
    ]


def test_short_run_beats_chance_by_a_wide_margin(tmp_path):
    args = ["--epochs", "2", "--train-limit", "20000", "--test-limit", "2000", "--no-progress"]
    result = run_cli("train", "lenet5", *args, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    records = read_metrics(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2]
    expected_keys = {
        "epoch",
        "train_loss",
        "test_top1_error",
        "test_top5_error",
        "seconds",
        "images_per_second",
        "train_top1_error",
        "test_loss",
    }
    assert expected_keys <= records[0].keys()
    assert records[-1]["test_top1_error"] < 0.15  # chance is 0.90
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert 0 < records[-1]["train_top1_error"] < records[0]["train_top1_error"] < 0.9
    # The first epoch's mean holds the untrained steps' losses; the test's comes after.
    assert 0 < records[-1]["test_loss"] < records[0]["test_loss"] < records[0]["train_loss"]
    assert f"test loss {records[-1]['test_loss']:.4f}" in result.stdout
    assert "epoch 2/2" in result.stdout and "test accuracy" in result.stdout
    assert (tmp_path / "checkpoint.pt").is_file()


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_same_seed_gives_the_same_metrics(tmp_path):
    for run in ("a", "b"):
        result = run_cli(
            "train",
            "lenet5-modern",
            "--epochs",
            "1",
            "--seed",
            "3",
            "--out",
            str(tmp_path / run),
            *SUBSET,
        )
        assert result.returncode == 0, result.stderr
    first, second = (without_timing(read_metrics(tmp_path / run)) for run in ("a", "b"))
    assert first == second
    other = run_cli(
        "train",
        "lenet5-modern",
        "--epochs",
        "1",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "c"),
        *SUBSET,
    )
    assert other.returncode == 0, other.stderr
    assert without_timing(read_metrics(tmp_path / "c")) != first


@pytest.mark.slow  # processes that train for seconds each
def test_resume_after_a_killed_run_gives_the_same_weights(tmp_path):
    args = ["train", "lenet5", "--epochs", "3", *SUBSET]
    whole = run_cli(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", *args, "--out", str(killed_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = killed_dir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert process.poll() is None and time.monotonic() < deadline, "run ended too early"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    interrupted_at = torch.load(killed_dir / "checkpoint.pt", weights_only=True)["epoch"]
    assert interrupted_at < 3, "the run finished before it was killed; nothing was resumed"

    resumed = run_cli("train", "--resume", "--out", str(killed_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    # The header and epoch lines count the resumed run's own 3 epochs, not the recipe's 15.
    assert "training lenet5 on mnist: 3 epochs" in resumed.stdout
    assert "epoch 3/3 " in resumed.stdout and "/15" not in resumed.stdout
    final = torch.load(killed_dir / "checkpoint.pt", weights_only=True)
    reference = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    assert final["epoch"] == 3
    for name, tensor in reference["model_state"].items():
        assert torch.equal(tensor, final["model_state"][name]), name
    assert without_timing(read_metrics(killed_dir)) == without_timing(
        read_metrics(tmp_path / "whole")
    )


def test_an_earlier_run_is_not_overwritten(tmp_path):
    first = run_cli("train", "lenet5", "--epochs", "1", "--out", str(tmp_path), *SUBSET)
    assert first.returncode == 0, first.stderr
    again = run_cli("train", "lenet5", "--epochs", "1", "--out", str(tmp_path), *SUBSET)
    assert again.returncode == 1
    assert "an earlier run's checkpoint is here" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_default_out_dirs_are_numbered_not_overwritten(tmp_path):
    for _ in range(2):
        result = run_cli(
            "train",
            "lenet5-modern",
            "--epochs",
            "1",
            "--train-limit",
            "512",
            "--test-limit",
            "256",
            "--no-progress",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["lenet5-modern-mnist", "lenet5-modern-mnist-2"]


def test_a_diverging_loss_stops_with_a_clear_error(tmp_path):
    result = run_cli(
        "train", "lenet5-modern", "--epochs", "2", "--lr", "1e6", "--out", str(tmp_path), *SUBSET
    )
    assert result.returncode == 1
    assert "training loss became nan" in result.stderr.lower() or "inf" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoint.pt").exists()  # no NaN weights were saved


@pytest.mark.slow
def test_default_command_reaches_99_percent(tmp_path):
    """The headline: `cnnkit train` alone, faithful LeNet-5 on all of MNIST."""
    result = run_cli("train", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    final = read_metrics(tmp_path / "runs" / "lenet5-mnist")[-1]
    assert final["test_top1_error"] <= 0.010


@pytest.mark.parametrize(("flag", "frames"), [([], False), (["--progress"], True)])
def test_progress_bars_only_on_a_terminal_or_when_asked(tmp_path, flag, frames):
    """stderr is a pipe here, as in a log or CI: no carriage-return frames by default."""
    args = ["lenet5-modern", "--epochs", "1", "--train-limit", "512", "--test-limit", "256"]
    result = subprocess.run(  # bytes: text mode would turn every carriage return into \n
        [
            sys.executable,
            "-m",
            "cnnkit",
            "train",
            *args,
            *flag,
            "--no-report",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (b"\r" in result.stderr) is frames
    assert b"epoch 1/1 " in result.stdout
