"""DataLoader worker processes that compute: how each one starts (``init_worker``)."""

import ctypes
import signal

import torch

from cnnkit.runtime.memory import keep_freed_memory

PR_SET_PDEATHSIG = 1  # prctl's option (linux/prctl.h): a signal for when the parent dies


def init_worker(worker: int) -> None:
    """A worker computes on one thread (one worker per core by default): a process
    forked from one whose OpenMP threads ran hangs when it starts threads of its own
    (libgomp is not fork-safe; seen here with two). It keeps the memory it frees
    (``keep_freed_memory``), and dies with its parent (``die_with_parent``)."""
    torch.set_num_threads(1)
    keep_freed_memory()
    die_with_parent()


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent dies (Linux; nothing
    elsewhere). A forked worker holds its parent's open files, a folder's lock among
    them: after a ``kill -9`` of the parent, DataLoader's own check would let it hold
    the lock for up to 5 s more, and a build resumed at once would find its folder busy."""
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):  # not Linux
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
