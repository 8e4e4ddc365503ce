"""Near-duplicate detection on planted copies: precision and recall of
``cnnkit search dupes`` at its default thresholds, by tiny images and by features.

One copy of each of ``--copies`` photos drawn (seeded) from FOLDER is planted, the
edits in turn: JPEG quality 50, resized to half and back, shifted by a pixel,
mirrored (``tools/planted.py``). The copies are added to a copy of an index of FOLDER
(``cnnkit index add``), and the groups scored on the planted pairs; pairs of two
originals are counted apart (CIFAR-10's own duplicates, Barz and Denzler 2020).

    python benchmarks/search_dupes.py /tmp/search-bench/train /tmp/cifar/train
"""

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cnnkit.bench.timing import run_cnnkit
from cnnkit.search import find_dupes, open_index
from cnnkit.search.dupes import DEFAULT_THRESHOLDS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tools/
from tools.planted import plant_copies, score_dupes  # noqa: E402

SWEEP = {"tiny": (0.9, 0.95, 0.97), "features": (0.98, 0.99, 0.995)}  # around the defaults


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="an index of FOLDER's images")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--copies", type=int, default=1000)
    args = parser.parse_args()
    files = sorted(args.folder.rglob("*.jpg"))
    random.Random(0).shuffle(files)
    with tempfile.TemporaryDirectory() as scratch:
        planted = plant_copies(sorted(files[: args.copies]), Path(scratch) / "copies")
        index_path = Path(scratch) / "index"
        shutil.copytree(args.index, index_path)
        run_cnnkit("index", "add", str(index_path), str(Path(scratch) / "copies"), "--no-progress")
        index = open_index(index_path)
        print(f"{len(index):,} items, {len(planted)} planted copies; default thresholds "
              f"{DEFAULT_THRESHOLDS}")  # fmt: skip
        print("| by | threshold | precision | recall | jpeg50 | resized | shifted | mirrored "
              "| pairs with a copy | pairs of originals | s |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for by in DEFAULT_THRESHOLDS:
            for threshold in SWEEP[by]:
                start = time.perf_counter()
                s = score_dupes(find_dupes(index, threshold, by), planted)
                mark = " (default)" if threshold == DEFAULT_THRESHOLDS[by] else ""
                edits = " | ".join(f"{s.recall_by_edit[e]:.3f}" for e in s.recall_by_edit)
                print(f"| {by} | {threshold}{mark} | {s.precision:.3f} | {s.recall:.3f} | {edits} "
                      f"| {s.found_pairs} | {s.other_pairs} | {time.perf_counter() - start:.0f} |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
