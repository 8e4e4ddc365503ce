"""``files.FolderLock``: one holder at a time, no lock file left behind, and no second
holder when the lock file is removed between another process's open and its lock."""

import os
from pathlib import Path

import pytest

from cnnkit import files
from cnnkit.errors import FolderBusyError
from cnnkit.files import LOCK_NAME, FolderLock


def test_a_released_lock_leaves_no_file_and_can_be_taken_again(tmp_path):
    with FolderLock(tmp_path, "first"):
        assert (tmp_path / LOCK_NAME).read_text() == f"process {os.getpid()} (first)"
        with pytest.raises(FolderBusyError, match=f"in use by process {os.getpid()} \\(first\\)"):
            FolderLock(tmp_path, "second").__enter__()
    assert list(tmp_path.iterdir()) == []
    with FolderLock(tmp_path, "second"):
        with pytest.raises(FolderBusyError, match="second"):
            FolderLock(tmp_path, "third").__enter__()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_removed_under_a_new_holder_is_opened_again(tmp_path, monkeypatch):
    # flock locks belong to an open file, so one process can play both sides: the first
    # holder lets go (removing its file) just after the second has opened that file and
    # before it locks it; the second's lock is then on a file no longer at the path.
    first = FolderLock(tmp_path, "first").__enter__()
    opened = []

    def open_then_first_lets_go(path, mode):
        opened.append(open(path, mode))  # noqa: SIM115  # FolderLock closes it
        if len(opened) == 1:
            first.__exit__(None, None, None)
        return opened[-1]

    monkeypatch.setattr(files, "open", open_then_first_lets_go, raising=False)
    with FolderLock(tmp_path, "second") as second:
        assert len(opened) == 2 and opened[0].closed  # the removed file, given up
        assert second.file is opened[1] and files.is_file_at(tmp_path / LOCK_NAME, opened[1])
        monkeypatch.undo()
        with pytest.raises(FolderBusyError, match="second"):  # a third sees the holder
            FolderLock(tmp_path, "third").__enter__()
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_deleted_by_hand_is_not_taken_from_its_new_owner(tmp_path):
    with FolderLock(tmp_path, "first"):
        (tmp_path / LOCK_NAME).unlink()  # someone removed it; another process takes a new one
        (tmp_path / LOCK_NAME).write_text("process 1 (another)")
    assert (tmp_path / LOCK_NAME).read_text() == "process 1 (another)"


def test_a_finished_training_run_holds_no_lock_file(digit_run: Path):
    assert sorted(p.name for p in digit_run.parent.iterdir() if p.name.startswith(".")) == []
    assert (digit_run.parent / "metrics.jsonl").is_file()
