"""Each way cnnkit once crashed, lost a run or printed a traceback, reproduced with a
real file or process: it now gives one line, a non-zero exit and loses nothing."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import assert_one_line_error, python_output, run_cli
from tests.helpers.hostile_files import bomb_png, full_disk, truncated_png

QUICK = ["--train-limit", "512", "--test-limit", "128", "--no-progress"]


@pytest.fixture(scope="module")
def checkpoint(digit_run) -> Path:
    """The session's digit run, for the commands under test."""
    return digit_run


def photo_tree(root: Path, real_image_tree: Path, extra: dict[str, bytes]) -> Path:
    """A copy of the real photo tree with ``extra`` files added to its first class."""
    shutil.copytree(real_image_tree, root)
    first = sorted((root / "train").iterdir())[0]
    for name, data in extra.items():
        (first / name).write_bytes(data)
    return root


def start_training(out: Path, epochs: int = 3) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cnnkit",
            "train",
            "lenet5",
            "--epochs",
            str(epochs),
            "--out",
            str(out),
            *QUICK,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("stream", [[], ["--stream", "--workers", "1"]])
def test_a_truncated_png_in_a_folder_set_is_skipped_by_name(tmp_path, real_image_tree, stream):
    root = photo_tree(tmp_path / "set", real_image_tree, {"bad.png": truncated_png()})
    result = run_cli(
        "train", "lenet5-modern", "--dataset", f"folder:{root}", "--epochs", "1",
        "--no-report", "--no-progress", "--out", str(tmp_path / "run"), *stream,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "bad.png" in warnings[0] and "skipped 1" in warnings[0]


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    first = start_training(tmp_path, epochs=50)  # long enough to be running throughout
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "metrics.jsonl").exists():  # written once the lock is held
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        second = run_cli("train", "lenet5", "--seed", "1", "--out", str(tmp_path), *QUICK)
        assert_one_line_error(second, str(tmp_path), f"in use by process {first.pid}")
        assert first.poll() is None  # refused while the first one ran
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").open()]
    assert epochs == list(range(1, len(epochs) + 1))  # one run's rows, none interleaved
    if epochs:
        saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
        assert saved["config"]["seed"] == 0 and saved["epoch"] == epochs[-1]


@pytest.mark.parametrize(
    "signum, stop", [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "Terminated")]
)
def test_a_stop_between_an_epochs_checkpoint_and_its_metrics_waits_for_both(tmp_path, signum, stop):
    """CI caught a SIGTERM that landed between an epoch's two writes: the checkpoint
    said epoch 11 and metrics.jsonl ended at 10. The stop now waits for both, then
    reaches cnnkit's own handler, which is back in place."""
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from cnnkit.stops import handle_stop_signals, on_stop_signal\n"
        "from cnnkit.files import atomic_write_text, stop_signals_held\n"
        "handle_stop_signals()\n"
        "folder = Path(sys.argv[1])\n"
        "try:\n"
        "    with stop_signals_held():\n"
        f"        os.kill(os.getpid(), {int(signum)})\n"
        "        atomic_write_text(folder / 'checkpoint', 'epoch 11')\n"
        "        atomic_write_text(folder / 'metrics', 'epoch 11')\n"
        "    print('not stopped')\n"
        "except BaseException as stopped:\n"
        f"    print(type(stopped).__name__, signal.getsignal({int(signum)}) is on_stop_signal)\n"
    )
    assert python_output(script, str(tmp_path)) == f"{stop} True\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint", "metrics"]


def test_a_full_disk_stops_training_with_one_line_and_the_last_checkpoint_intact(tmp_path):
    with full_disk(tmp_path / "disk", 800) as disk:  # one LeNet-5 checkpoint fits, not two
        result = run_cli(
            "train", "lenet5", "--epochs", "3", "--no-report", "--out", str(disk), *QUICK
        )
        assert_one_line_error(result, "checkpoint.pt", "no space left on device")
        state = torch.load(disk / "checkpoint.pt", weights_only=True)
        assert state["epoch"] >= 1
        assert not list(disk.glob("*.tmp"))


def test_report_and_export_on_a_full_disk_leave_no_partial_file(tmp_path, checkpoint):
    run_files = [checkpoint.parent / name for name in ("checkpoint.pt", "metrics.jsonl")]
    size_kb = sum(path.stat().st_size for path in run_files) // 1024 + 96
    with full_disk(tmp_path / "disk", size_kb) as disk:
        for path in run_files:
            shutil.copy(path, disk / path.name)
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * max(0, free - 16_384))  # less than one PNG
        assert_one_line_error(run_cli("report", str(disk)), "no space left on device")
        assert not list(disk.glob("*.png")) and not list(disk.glob("*.tmp"))
        assert not (disk / "report.html").exists()
        out = disk / "m.pt"
        args = ["--format", "torchscript", "--out", str(out), "--test-limit", "50"]
        assert_one_line_error(run_cli("export", str(checkpoint), *args), "m.pt", "no space left")
        assert not out.exists() and not list(disk.glob("*.tmp"))


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, checkpoint, real_image_tree):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    result = run_cli("predict", str(checkpoint), str(bomb))
    assert_one_line_error(result, "bomb.png", "claims 10,000,000,000 pixels", "decompression bomb")
    root = photo_tree(tmp_path / "set", real_image_tree, {"bomb.png": bomb_png()})
    shown = run_cli("data", "info", f"folder:{root}")
    assert shown.returncode == 0 and "Traceback" not in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1 and "bomb.png" in shown.stderr


def test_ctrl_c_during_start_up_is_one_line_with_the_resume_hint(tmp_path):
    """At seeded moments of the first seconds: the command line's imports, torch's,
    the lazy ones inside the command (where importlib used to swallow the interrupt,
    or leave numpy half-imported for a traceback later), the data's loading."""
    for number, moment in enumerate(random.Random(1).uniform(0.2, 3.0) for _ in range(6)):
        process = start_training(tmp_path / f"run-{number}")
        time.sleep(moment)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert (process.returncode, err.strip().splitlines()) == (
            130,
            ["cnnkit: interrupted; continue with --resume"],
        ), f"Ctrl-C at {moment:.2f} s"


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_inside_an_import_stops_the_command(tmp_path, signum, status):
    """Raised inside an import, the interrupt would be swallowed by importlib's lock
    callbacks (the run carried on and ended with status 0) or leave a half-made module
    behind (numpy without ``multiply``, a traceback later): it stops the command."""
    (tmp_path / "signals_itself.py").write_text(
        f"import os, time\nos.kill(os.getpid(), {int(signum)})\ntime.sleep(0.5)\n"
    )
    script = "from cnnkit.stops import handle_stop_signals\n"
    script += "handle_stop_signals()\nimport signals_itself\nprint('carried on')\n"
    result = subprocess.run(
        [sys.executable, "-c", script, "train"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    what = "interrupted" if signum == signal.SIGINT else "terminated"
    assert (result.returncode, result.stdout) == (status, "")
    assert result.stderr.splitlines() == [f"cnnkit: {what}; continue with --resume"]


@pytest.mark.parametrize("code, status, err", [("4", 4, ""), ("'gone'", 1, "gone\n")])
def test_leaving_without_torch_s_teardown_still_exits_as_sys_exit(code, status, err):
    """A command that loaded torch skips its C++ teardown at exit; what Python does at
    an exit still happens: thread pools stop (torch.compile leaves idle ones), other
    threads finish, exit handlers run, buffered output is written, and the status is
    sys.exit's."""
    script = (
        "import atexit, concurrent.futures, sys, threading, time, torch\n"
        "from cnnkit.entry import leave\n"
        "concurrent.futures.ThreadPoolExecutor(2).submit(int).result()  # idle workers\n"
        "atexit.register(lambda: print('exit handler ran'))\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()\n"
        "sys.stdout.write('buffered, no newline')\n"
        f"leave({code})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (status, err)
    assert result.stdout == "buffered, no newlinethread done\nexit handler ran\n"


def test_sigterm_mid_epoch_ends_with_one_line_and_no_temporary_file(tmp_path):
    out = tmp_path / "run"
    process = start_training(out, epochs=20)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143
    assert err.strip().splitlines() == ["cnnkit: terminated; continue with --resume"]
    assert not list(out.glob("*.tmp"))
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] >= 1


def test_a_killed_runs_temporary_files_are_removed_at_resume(tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", "lenet5", "--epochs", "1", "--out", str(out), *QUICK).returncode == 0
    stale = out / "checkpoint.pt.k1ll3d.tmp"
    stale.write_bytes(b"")  # what kill -9 during a checkpoint write leaves
    result = run_cli("train", "--resume", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert not stale.exists()


def test_cifar_pickles_with_allowed_globals_cannot_crash_or_allocate(tmp_path):
    """A bad codec through _codecs.encode, and 241 bytes declaring a 200,000 x 200,000
    array, in a subprocess limited to 2 GiB more than it uses."""
    code = f"""
import pickle, codecs, resource, sys
import numpy as np
from numpy._core.multiarray import _reconstruct
from cnnkit.data.cifar import read_pickle
from cnnkit.errors import DataError

class Bomb:
    def __reduce__(self):
        return (_reconstruct, (np.ndarray, (0,), b"b"),
                (1, (200000, 200000), np.dtype("u1"), False, b"\\0"))

class BadCodec:
    def __reduce__(self):
        return (codecs.encode, ("x", "no-such-codec"))

size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + (2 << 30), resource.RLIM_INFINITY))
for name, value in (("bomb", Bomb()), ("codec", BadCodec())):
    path = "{tmp_path}/" + name
    open(path, "wb").write(pickle.dumps({{b"data": value}}, protocol=2))
    try:
        read_pickle(__import__("pathlib").Path(path))
    except DataError as error:
        print(error)
"""
    stdout = python_output(code)
    bomb, codec = stdout.strip().splitlines()
    assert "larger than the file" in bomb and "unknown encoding: no-such-codec" in codec


def test_a_one_channel_model_on_an_rgb_folder_is_one_line(tmp_path, checkpoint, mnist):
    _, test = mnist
    for split in ("train", "test"):
        for digit in range(10):
            folder = tmp_path / "rgb" / split / str(digit)
            folder.mkdir(parents=True)
            index = int((test.labels == digit).nonzero()[0])
            gray = test.images[index, 0].numpy()
            Image.fromarray(np.stack([gray, gray // 2, 255 - gray], -1)).save(folder / "0.png")
    result = run_cli("evaluate", str(checkpoint), "--dataset", f"folder:{tmp_path / 'rgb'}")
    assert_one_line_error(result, str(checkpoint), "takes 1-channel images", "have 3")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--out", "{file}"], ["{file}", "cannot use as a folder"]),
        (["train", "--out", "/proc/cnnkit-run"], ["/proc/cnnkit-run", "cannot use as a folder"]),
        (["train", "--lr", "nan"], ["'--lr'", "'nan' is not a finite number"]),
        (["train", "--data-dir", "{missing}"], ["--data-dir", "{missing}' does not exist"]),
        (["train", "--epochs", "0"], ["--epochs", "0 is not in the range x>=1"]),
        (["train", "--batch-size", "-1"], ["--batch-size"]),
        (
            ["export", "{checkpoint}", "--format", "torchscript", "--out", "/proc/m.pt"],
            ["/proc/m.pt", "cannot write"],
        ),
    ],
)
def test_bad_places_and_values_are_one_line(tmp_path, checkpoint, args, fragments):
    file = tmp_path / "a-file"
    file.write_text("")
    names = {"file": file, "missing": tmp_path / "nope", "checkpoint": checkpoint}
    result = run_cli(*[arg.format(**names) for arg in args])
    assert_one_line_error(result, *[fragment.format(**names) for fragment in fragments])


def test_a_rate_that_ends_at_chance_is_warned_about(tmp_path):
    args = ["lenet5-modern", "--epochs", "1", "--lr", "1000", "--no-report"]
    result = run_cli("train", *args, "--out", str(tmp_path), *QUICK)
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "no better than chance (90%)" in warning and "--lr 1000" in warning


def test_the_folder_cache_on_a_full_disk_leaves_no_temporary_file(tmp_path, real_image_tree):
    with full_disk(tmp_path / "cache", 64) as cache:
        code = "import sys; from cnnkit.data import load_dataset as load; "
        code += "print(len(load('folder:' + sys.argv[1])[0]))"
        result = subprocess.run(
            [sys.executable, "-c", code, str(real_image_tree)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        )
        assert result.returncode == 0, result.stderr
        assert int(result.stdout) > 0
        assert not list(cache.rglob("*.tmp"))


def test_checkpoints_follow_the_umask(tmp_path):
    code = "import os, sys; os.umask(0o022); from cnnkit.cli import main; main()"
    args = [
        "train",
        "lenet5-modern",
        "--epochs",
        "1",
        "--no-report",
        "--out",
        str(tmp_path),
        *QUICK,
    ]
    python_output(code, *args)
    for name in ("checkpoint.pt", "metrics.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
