"""Timing cnnkit as a user runs it: the command as its own process, timed from its
launch (start-up, imports and data loading included), with a failure shown as the
command's own error line. ``cnnkit bench`` and the scripts in ``benchmarks/`` use it."""

import subprocess
import sys
import time
from dataclasses import dataclass

from cnnkit.errors import CnnkitError


@dataclass(frozen=True)
class TimedCommand:
    stdout: str
    wall_seconds: float  # from the launch to the exit


def run_cnnkit(*args: str) -> TimedCommand:
    """``python -m cnnkit ARGS``, timed; a ``CnnkitError`` with its last stderr line
    if it fails."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cnnkit", *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise CnnkitError(f"cnnkit {' '.join(args[:2])} failed: {lines[-1]}")
    return TimedCommand(done.stdout, wall)
