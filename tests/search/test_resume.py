"""A build killed midway (SIGKILL after its first shard) leaves no index that looks
complete, and ``--resume`` finishes it with the vectors of an uninterrupted build."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from cnnkit.search import open_index
from tests.helpers import assert_one_line_error, run_cli

ITEMS, SHARD = 6_000, 250  # 24 shards: the kill lands well before the end


def build_command(checkpoint, out, *extra):
    return [
        sys.executable, "-m", "cnnkit", "index", "build", str(checkpoint), "--dataset", "mnist",
        "--limit", str(ITEMS), "--shard-size", str(SHARD), "--batch-size", "50",
        "--backend", "exact", "--out", str(out), *extra,
    ]  # fmt: skip


def all_vectors(index):
    return np.concatenate([np.asarray(v) for v in index.vectors])


def test_a_killed_build_resumes_to_the_same_vectors(lenet, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(build_command(lenet, out), stderr=subprocess.PIPE)
    first = out / "shard-00000.records.jsonl"
    deadline = time.monotonic() + 120
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    written = sorted(out.glob("shard-*.records.jsonl"))
    assert 1 <= len(written) < ITEMS // SHARD and not (out / "manifest.json").exists()
    assert_one_line_error(run_cli("index", "info", str(out)), "unfinished build", "--resume")
    assert_one_line_error(
        run_cli(*build_command(lenet, out)[3:]),
        "holds an unfinished build; continue it with --resume",
    )

    resumed = run_cli(*build_command(lenet, out, "--resume")[3:])
    assert resumed.returncode == 0, resumed.stderr
    assert (
        f"holds {ITEMS:,} items" in resumed.stdout and "shards kept from before" in resumed.stdout
    )
    assert not list(out.glob("*.tmp")) and not (out / "build.json").exists()

    whole = run_cli(*build_command(lenet, tmp_path / "whole")[3:])
    assert whole.returncode == 0, whole.stderr
    a, b = open_index(out), open_index(tmp_path / "whole")
    assert np.array_equal(all_vectors(a), all_vectors(b))  # bit for bit
    assert [r.to_json() for r in a.records] == [r.to_json() for r in b.records]
    assert_one_line_error(
        run_cli(*build_command(lenet, out, "--resume")[3:]), "an index exists here"
    )


def test_resume_refuses_a_changed_plan(lenet, tmp_path):
    out = tmp_path / "changed"
    (out).mkdir()
    (out / "build.json").write_text('{"items": 5}')
    result = run_cli(*build_command(lenet, out, "--resume")[3:])
    assert_one_line_error(result, "cannot resume", "changed since the build began")
