"""Start-up time and peak memory of cnnkit's commands against ``import torch``.

Prints wall seconds and peak RSS for each command, best of three, and the difference
from the baseline in the same run (the targets: ``cnnkit --help`` and ``import cnnkit``
<= 0.3 s; ``cnnkit size alexnet --input 3,2000,2000`` <= 5 s and <= 1 GB; ``cnnkit
predict`` on one image at most 100 MB above ``import torch``; the main job's peak RSS at
most 100 MB above ``import torch`` and its first training step at most 1 s after that
import's time). The main job here is ``cnnkit train`` for one epoch of 1,000 images
with its report: MNIST is loaded whole as in a full run, so the peak is a full run's
but for the epochs' length. Its first step is timed as the moment ``metrics.jsonl``
appears: ``fit`` writes it, empty, just before the first epoch::

    python benchmarks/startup_memory.py [CHECKPOINT IMAGE]
"""

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(command: list[str], repeats: int = 3) -> tuple[float, float]:
    """(best wall seconds, largest peak RSS in MB) of ``command`` run ``repeats`` times."""
    best, peak = float("inf"), 0.0
    for _ in range(repeats):
        script = (
            "import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", script, *command], capture_output=True, text=True, check=True
        )
        best = min(best, time.perf_counter() - start)
        peak = max(peak, int(out.stdout) / 1024)
    return best, peak


def train_command(out: str) -> list[str]:
    return [sys.executable, "-m", "cnnkit", "train", "--epochs", "1", "--train-limit", "1000",
            "--no-progress", "--out", out]  # fmt: skip


def measure_train(repeats: int = 3) -> tuple[float, float]:
    """``measure`` of the main job, each time into a fresh run folder."""
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            runs.append(measure(train_command(out), repeats=1))
    return min(s for s, _ in runs), max(mb for _, mb in runs)


def seconds_to_first_step(repeats: int = 3) -> float:
    """Best seconds from launching the main job until its first epoch starts."""
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            process = subprocess.Popen(train_command(out), stdout=subprocess.DEVNULL)
            metrics = Path(out) / "metrics.jsonl"
            while not metrics.exists() and process.poll() is None:
                time.sleep(0.005)
            best = min(best, time.perf_counter() - start)
            process.wait()
    return best


def main() -> None:
    python = sys.executable
    commands = {
        "import torch": [python, "-c", "import torch"],
        "cnnkit --help": [python, "-m", "cnnkit", "--help"],
        "import cnnkit": [python, "-c", "import cnnkit"],
        "cnnkit size alexnet --input 3,2000,2000": [
            python, "-m", "cnnkit", "size", "alexnet", "--input", "3,2000,2000",
        ],
    }  # fmt: skip
    if len(sys.argv) == 3:
        commands["cnnkit predict (one image)"] = [python, "-m", "cnnkit", "predict", *sys.argv[1:]]
    results = {name: measure(command) for name, command in commands.items()}
    results["cnnkit train (1 epoch, 1,000 images)"] = measure_train()
    base_seconds, base_mb = results["import torch"]
    print(f"{'command':45} {'seconds':>8} {'peak MB':>8} {'vs import torch':>16}")
    for name, (seconds, mb) in results.items():
        print(f"{name:45} {seconds:8.2f} {mb:8.0f} {mb - base_mb:+12.0f} MB")
    first_step = seconds_to_first_step()
    print(
        f"cnnkit train's first step {first_step:.2f} s after launch, "
        f"{first_step - base_seconds:+.2f} s after import torch's time"
    )
    print(f"(best of 3; peak RSS of the process; {resource.getpagesize()}-byte pages)")


if __name__ == "__main__":
    main()
