"""Writing files safely: whole or not at all, and one writer per folder.

``atomic_write`` writes through a temporary file beside the target, flushed to disk
and renamed into place: a reader sees the old file or the new one, never half of one,
whatever kills the writer (a signal, kill -9, a full disk). ``FolderLock`` makes a run
or index folder one process's at a time with an OS lock (``fcntl.flock``), which the
kernel releases when its holder dies, so a killed run never leaves a stale lock; a
holder that finishes removes the lock file, so a finished folder holds none.
``stop_signals_held`` keeps files that belong together (a checkpoint and the metrics
of the same epoch) from being parted by a Ctrl-C or SIGTERM between their writes.
"""

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from cnnkit.errors import FolderBusyError, WriteError

TEMPORARY_SUFFIX = ".tmp"
LOCK_NAME = ".lock"


FULL_DISK_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full


def describe_write_error(error: Exception, folder: Path) -> str:
    """A failed write in a few words: "no space left on device", "permission denied".
    torch's and onnx's writers raise RuntimeError for a write that the disk refused,
    so the free space tells what happened."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "no space left on device"
    try:
        if shutil.disk_usage(folder).free < FULL_DISK_BYTES:
            return "no space left on device"
    except OSError:
        pass
    if isinstance(error, OSError):
        return (error.strerror or type(error).__name__).lower()
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` by calling ``write(file)`` on a temporary file in the same folder,
    then renaming it into place; on any failure the temporary file is removed, the
    old ``path`` is left as it was, and an ``OSError`` becomes one ``WriteError``."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            dir=path.parent, prefix=path.name + ".", suffix=TEMPORARY_SUFFIX
        )
        temporary = Path(name)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())  # as open() would: mkstemp makes 0600
        os.replace(temporary, path)
        temporary = None
    except (OSError, RuntimeError) as error:
        reason = describe_write_error(error, path.parent if path.parent.exists() else Path("/"))
        raise WriteError(f"{path}: cannot write ({reason})") from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM until the block is done, then deliver the ones that
    came, to the handlers that were in place. Each write is atomic on its own; this
    makes a group of writes atomic against a stop (kill -9 still parts them, which is
    why a resumed run trusts the checkpoint). Outside the main thread, where handlers
    cannot be changed, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def note(signum: int, frame: object) -> None:
        arrived.append(signum)

    handlers = {
        signum: signal.signal(signum, note)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) is not None  # None: set outside Python, not restorable
    }
    try:
        yield
    finally:
        for stop_signal, handler in handlers.items():
            signal.signal(stop_signal, handler)
        for signum in dict.fromkeys(arrived):  # each kind once, in the order they came
            signal.raise_signal(signum)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (call it while
    holding the folder's lock, so that no live writer's file is taken)."""
    removed = []
    for stale in Path(folder).glob(f"*{TEMPORARY_SUFFIX}"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


LOCK_ATTEMPTS = 10  # lock files removed under us in a row before we call the folder busy


class FolderLock:
    """``with FolderLock(folder, "training"):`` holds ``folder/.lock`` exclusively, or
    raises ``FolderBusyError`` naming the folder and the process that holds it; the
    lock file is removed as the lock is released."""

    def __init__(self, folder: Path, purpose: str) -> None:
        self.folder, self.purpose = Path(folder), purpose
        self.path = self.folder / LOCK_NAME
        self.file: BinaryIO | None = None

    def __enter__(self) -> "FolderLock":
        for _ in range(LOCK_ATTEMPTS):
            file = self.open_lock_file()
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                file.seek(0)
                holder = file.read().decode(errors="replace").strip() or "another process"
                file.close()
                raise self.busy(holder) from None
            if is_file_at(self.path, file):
                break
            # The holder removed this file as it let go (__exit__) between our open and
            # our lock: we hold a lock on a file that no other process can find. Take the
            # lock of the file at the path now (a new one, or a newer holder's).
            file.close()
        else:
            raise self.busy("another process")
        file.seek(0)
        file.truncate()
        file.write(f"process {os.getpid()} ({self.purpose})".encode())
        file.flush()
        self.file = file
        return self

    def open_lock_file(self) -> BinaryIO:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return open(self.path, "a+b")  # noqa: SIM115  # held until __exit__
        except OSError as error:
            reason = describe_write_error(error, Path("/"))
            raise WriteError(f"{self.folder}: cannot use as a folder ({reason})") from None

    def busy(self, holder: str) -> FolderBusyError:
        return FolderBusyError(
            f"{self.folder}: in use by {holder}; wait for it to finish or use another folder"
        )

    def __exit__(self, *exc_info: object) -> None:
        if self.file is None:
            return
        # Removed while the lock is still held, never after: a process that opened the
        # file before this point and locks it after our unlock finds it gone from the
        # path and opens the path again (__enter__), so only a lock on the file at the
        # path counts. Removed after the unlock, the file could already be a new holder's,
        # and a third process would create another and lock it too: two holders.
        # Among FolderLocks the path is our file until we remove it (only a missing file
        # is created), so the check below guards against someone deleting it by hand.
        if is_file_at(self.path, self.file):
            with contextlib.suppress(OSError):  # left behind, it is still a working lock file
                self.path.unlink()
        fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
        self.file.close()
        self.file = None


def is_file_at(path: Path, file: BinaryIO) -> bool:
    """Whether the open ``file`` is the file at ``path`` now (not one removed from it)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(file.fileno()))
    except FileNotFoundError:
        return False
