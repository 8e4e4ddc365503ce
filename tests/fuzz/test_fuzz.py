"""The fuzzing suite (``harness.py``) in a memory-capped subprocess: every mutated
IDX, CIFAR, PNG, JPEG, GIF and checkpoint file loads or is refused with one line."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.fuzz.harness import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
READERS = ("idx", "idx-labels", "png", "jpeg", "gif", "cifar", "checkpoint")


def test_every_reader_loads_or_refuses_every_mutant():
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.harness"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    counts = {
        name: (int(tried), int(refused))
        for name, tried, refused in re.findall(
            r"fuzz (\S+): (\d+) inputs, \d+ loaded, (\d+) refused", result.stdout
        )
    }
    assert set(counts) == set(READERS)
    for name, (tried, refused) in counts.items():
        assert tried >= EXAMPLES * 0.9, name  # the budget was spent
        assert refused > 0, name  # the mutations did damage the files
    print(f"fuzzing: {sum(t for t, _ in counts.values())} inputs tried, all survived")
