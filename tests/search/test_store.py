"""An index's shards as ``search.store`` opens them: memory-mapped copy-on-write, so that
torch takes them without a copy and without a warning, and the files never change."""

import numpy as np

from cnnkit.search import open_index
from tests.helpers import python_output


def test_shards_are_writable_in_memory_and_the_files_stay_as_written(mnist_index):
    index = open_index(mnist_index)
    arrays = [*index.vectors, *index.scores, *index.tiny]
    assert all(isinstance(a, np.memmap) and a.flags.writeable for a in arrays)
    before = float(index.vectors[0][0, 0])
    index.vectors[0][0, 0] = before + 1  # this process's page only
    again = open_index(mnist_index)  # checks every file's SHA-256 against the manifest
    assert float(again.vectors[0][0, 0]) == before


def test_searching_an_index_warns_of_nothing(mnist_index):
    # A fresh interpreter: torch warns of a non-writable array once per process only.
    code = """if True:
        import sys, warnings
        warnings.simplefilter("error")  # any warning fails
        import torch
        from cnnkit.search import find_dupes, open_index
        index = open_index(sys.argv[1])
        for array in [*index.vectors, *index.scores, *index.tiny]:
            torch.from_numpy(array)
        groups = [len(find_dupes(index, by=by)) for by in ("tiny", "features")]
        hits = index.query(index.vectors[1][:3], 5)
        print(len(hits), *groups)
    """
    printed = python_output(code, str(mnist_index)).split()
    assert printed[0] == "3"
