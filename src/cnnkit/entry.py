"""The command's entry point: signals are handled (``stops``) before anything large is
imported, and a command that loaded torch leaves without torch's teardown."""

import atexit
import os
import sys
import threading
from typing import NoReturn

from cnnkit.errors import Terminated
from cnnkit.stops import INTERRUPTED, TERMINATED, exit_on, handle_stop_signals


def main() -> None:
    handle_stop_signals()
    try:
        from cnnkit.cli import main as run_command
    except KeyboardInterrupt:
        exit_on(INTERRUPTED)
    except Terminated:
        exit_on(TERMINATED)
    try:
        run_command()
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: str | int | None) -> NoReturn:
    """Exit as ``sys.exit(code)`` does, but once torch is loaded skip the teardown of
    its C++ libraries, which runs after Python's own: there it took 0.8 s and raised
    the peak RSS by 128 MB (``python -c "import torch"`` here: 519 MB until Python's
    exit handlers had run, 647 MB at its end). Other threads are waited for, Python's
    exit handlers run and the streams are flushed first, as at a normal exit; every
    file cnnkit writes is closed by then (``files.atomic_write``)."""
    if "torch" not in sys.modules:
        sys.exit(code)
    if code is None or isinstance(code, int):
        status = code or 0
    else:  # sys.exit("message") prints the message and exits 1
        sys.stderr.write(f"{code}\n")
        status = 1
    # What Python's own exit does first: stop thread pools (torch.compile's among them:
    # their idle workers never end by themselves) and wait for the other threads.
    shut_down_threads = getattr(threading, "_shutdown", None)
    if shut_down_threads is not None:
        shut_down_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
            pass
    os._exit(status)
