"""Start-up time and peak memory of cnnkit's commands against ``import torch``.

Prints wall seconds and peak RSS for each command, best of three, and the difference
from the baseline in the same run (issue 15's targets: ``cnnkit --help`` <= 0.3 s;
``cnnkit size alexnet --input 3,2000,2000`` <= 5 s and <= 1 GB; ``cnnkit predict`` on
one image at most 100 MB above ``import torch``)::

    python benchmarks/startup_memory.py [CHECKPOINT IMAGE]
"""

import resource
import subprocess
import sys
import time


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


def main() -> None:
    python = sys.executable
    commands = {
        "import torch": [python, "-c", "import torch"],
        "cnnkit --help": [python, "-m", "cnnkit", "--help"],
        "cnnkit size alexnet --input 3,2000,2000": [
            python,
            "-m",
            "cnnkit",
            "size",
            "alexnet",
            "--input",
            "3,2000,2000",
        ],
    }
    if len(sys.argv) == 3:
        commands["cnnkit predict (one image)"] = [python, "-m", "cnnkit", "predict", *sys.argv[1:]]
    results = {name: measure(command) for name, command in commands.items()}
    base_mb = results["import torch"][1]
    print(f"{'command':45} {'seconds':>8} {'peak MB':>8} {'vs import torch':>16}")
    for name, (seconds, mb) in results.items():
        print(f"{name:45} {seconds:8.2f} {mb:8.0f} {mb - base_mb:+12.0f} MB")
    print(f"(best of 3; peak RSS of the process; {resource.getpagesize()}-byte pages)")


if __name__ == "__main__":
    main()
