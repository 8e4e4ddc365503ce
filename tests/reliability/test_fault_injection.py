"""kill -9 at seeded random moments of a short real run (start-up, steps, evaluation,
checkpoint writes, the report), then resume: every run ends with the weights of the
uninterrupted one, bit for bit, and no temporary file. ``CNNKIT_FAULTS`` sets how
many kills (20 by default); two kill-and-resume chains run at once, each on one
thread, since most of a chain's time is a process starting."""

import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli_process

FAULTS = int(os.environ.get("CNNKIT_FAULTS", "20"))
RUN = ["train", "lenet5-modern", "--epochs", "3", "--batch-size", "64", "--train-limit", "1024"]
RUN += ["--test-limit", "256", "--no-progress"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: the same sums in every process


def weights(folder: Path) -> tuple[int, dict[str, torch.Tensor]]:
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    return state["epoch"], state["model_state"]


def kill_then_finish(out: Path, moment: float) -> tuple[bool, subprocess.CompletedProcess]:
    """Start the run into ``out``, kill -9 it ``moment`` seconds later, then finish it:
    by resuming, or afresh when it died before its first checkpoint. Returns whether
    the kill landed while the run was working, and the finishing command's result."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", *RUN, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    time.sleep(moment)
    process.kill()
    landed = process.wait() == -9
    if (out / "checkpoint.pt").exists():
        return landed, run_cli_process(
            "train", "--resume", "--out", str(out), "--no-progress", env=ENV
        )
    return landed, run_cli_process(*RUN, "--out", str(out), env=ENV)


@pytest.mark.slow  # processes that train for seconds each
def test_kill_9_anywhere_then_resume_gives_the_same_weights(tmp_path):
    # The first run of a fresh checkout also compiles bytecode and fills caches, so the
    # kill moments are spread over a second, warm run: the one the chains resemble.
    cold = run_cli_process(*RUN, "--out", str(tmp_path / "cold"), env=ENV)
    assert cold.returncode == 0, cold.stderr
    start = time.monotonic()
    reference = run_cli_process(*RUN, "--out", str(tmp_path / "whole"), env=ENV)
    whole_seconds = time.monotonic() - start
    assert reference.returncode == 0, reference.stderr
    epochs, expected = weights(tmp_path / "whole")
    assert all(
        torch.equal(expected[name], cold_tensor)
        for name, cold_tensor in weights(tmp_path / "cold")[1].items()
    )
    moments = sorted(random.Random(0).uniform(0.2, whole_seconds) for _ in range(FAULTS))
    outs = [tmp_path / f"killed-{number}" for number in range(FAULTS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(kill_then_finish, outs, moments))
    for out, moment, (_, finish) in zip(outs, moments, results, strict=True):
        assert finish.returncode == 0, f"kill at {moment:.2f} s: {finish.stderr}"
        epoch, final = weights(out)
        assert epoch == epochs
        for name, tensor in expected.items():
            assert torch.equal(tensor, final[name]), f"kill at {moment:.2f} s: {name} differs"
        assert not list(out.glob("*.tmp")) and (out / "report.html").is_file()
    killed = sum(landed for landed, _ in results)
    assert killed >= FAULTS // 2  # most kills landed while the run was working
    print(f"fault injection: {killed} of {FAULTS} kills landed mid-run; all resumed bit-identical")
