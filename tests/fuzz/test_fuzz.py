"""The fuzzing suite (``harness.py``) in a memory-capped subprocess: every mutated
IDX, CIFAR, PNG, JPEG, GIF and checkpoint file loads or is refused with one line."""

import re

from tests.fuzz.harness import EXAMPLES, run_harness

READERS = ("idx", "idx-labels", "png", "jpeg", "gif", "cifar", "checkpoint")


def test_every_reader_loads_or_refuses_every_mutant():
    printed = run_harness("tests.fuzz.harness")
    counts = {
        name: (int(tried), int(refused))
        for name, tried, refused in re.findall(
            r"fuzz (\S+): (\d+) inputs, \d+ loaded, (\d+) refused", printed
        )
    }
    assert set(counts) == set(READERS)
    for name, (tried, refused) in counts.items():
        assert tried >= EXAMPLES * 0.9, name  # the budget was spent
        assert refused > 0, name  # the mutations did damage the files
    print(f"fuzzing: {sum(t for t, _ in counts.values())} inputs tried, all survived")
