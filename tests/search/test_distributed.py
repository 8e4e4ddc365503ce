"""``torchrun -m cnnkit index build``: two gloo processes on the CPU embed the shards
between them and write the index that one process writes, file for file, and a
stopped build resumes on two processes to the same index."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from cnnkit.runs import load_run
from cnnkit.search import BuildSettings, dataset_collection
from cnnkit.search.build import build_plan
from tests.helpers import run_cli
from tests.helpers.search import folder_digest

ENV = {"OMP_NUM_THREADS": "1"}  # one thread per process: two ranks on a 2-core machine
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
ITEMS, SHARD, BATCH = 2000, 256, 64  # 8 shards, the last of 208 items


def build_args(checkpoint, out, *extra):
    return [
        "index", "build", str(checkpoint), "--dataset", "mnist", "--limit", str(ITEMS),
        "--shard-size", str(SHARD), "--batch-size", str(BATCH), "--workers", "0",
        "--backend", "exact", "--out", str(out), *extra,
    ]  # fmt: skip


def torchrun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*TORCHRUN, "-m", "cnnkit", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **ENV},
    )


@pytest.mark.slow  # processes that train for seconds each
def test_two_processes_build_the_index_of_one_and_resume_it(lenet, tmp_path):
    one = run_cli(*build_args(lenet, tmp_path / "one"), env=ENV)
    assert one.returncode == 0, one.stderr
    two = torchrun(*build_args(lenet, tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    assert two.stdout.count(f"holds {ITEMS:,} items") == 1  # rank 0 alone reports
    whole = folder_digest(tmp_path / "one")
    assert len(whole) == 1 + 4 * 8  # the manifest and 8 shards of 4 files
    # Every file byte for byte: vectors, scores, tiny images, records and the manifest
    # (which holds the size and SHA-256 of every shard's files).
    assert folder_digest(tmp_path / "two") == whole

    # A build stopped after shards 0, 3, 4, 6 and 7: those written, the plan in build.json.
    stopped = tmp_path / "stopped"
    shutil.copytree(tmp_path / "one", stopped)
    (stopped / "manifest.json").unlink()
    for number in (1, 2, 5):
        for path in stopped.glob(f"shard-{number:05d}.*"):
            path.unlink()
    run = load_run(lenet, "cpu")
    settings = BuildSettings(shard_size=SHARD, batch_size=BATCH)
    plan = build_plan(run, dataset_collection("mnist", "train", run, ITEMS), settings)
    (stopped / "build.json").write_text(json.dumps(plan))
    resumed = torchrun(*build_args(lenet, stopped, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
    assert "5 shards kept from before" in resumed.stdout
    assert not (stopped / "build.json").exists()
    assert folder_digest(stopped) == whole
