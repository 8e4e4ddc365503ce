"""The index-file fuzzing (``index_harness.py``) in a memory-capped subprocess: every
mutated manifest, records file, vectors, scores, tiny images and FAISS file of a real
index, rehashed, opens and answers queries or is refused with one line."""

import re

from tests.fuzz.harness import EXAMPLES, run_harness

TARGETS = ("manifest", "records", "vectors", "scores", "tiny", "faiss")


def test_every_index_file_mutant_opens_or_is_refused():
    printed = run_harness("tests.fuzz.index_harness")
    counts = {
        name: (int(tried), int(refused))
        for name, tried, refused in re.findall(
            r"fuzz index-(\S+): (\d+) inputs, \d+ opened, (\d+) refused", printed
        )
    }
    skipped = set(re.findall(r"fuzz index-(\S+): skipped", printed))
    assert set(counts) | skipped == set(TARGETS) and skipped <= {"faiss"}
    for name, (tried, refused) in counts.items():
        assert tried >= EXAMPLES * 0.9, name  # the budget was spent
        assert refused > 0, name  # the mutations did damage the files
    print(f"index fuzzing: {sum(t for t, _ in counts.values())} inputs tried, all survived")
