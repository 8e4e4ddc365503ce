"""The command's entry point: signals are handled before anything large is imported,
and a command that loaded torch leaves without torch's teardown.

A Ctrl-C or SIGTERM ends with one line and exit status 130 or 143, wherever it lands:
while the command line's modules are still being imported (on a busy machine, the
first second of every run), during a lazy import inside a command, or later.
"""

import atexit
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

from cnnkit.errors import Terminated

# Commands that continue an interrupted run with --resume, so an interruption says so.
RESUMABLE = ("train",)
STOPS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}


def main() -> None:
    handle_stop_signals()
    try:
        from cnnkit.cli import main as run_command
    except KeyboardInterrupt:
        stop("interrupted", 130)
    except Terminated:
        stop("terminated", 143)
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


def handle_stop_signals() -> None:
    for signum in STOPS:
        signal.signal(signum, on_stop_signal)


def on_stop_signal(signum: int, frame: FrameType | None) -> None:
    """Unwind with KeyboardInterrupt or ``Terminated``, so that files being written are
    removed on the way out; but inside an import, stop at once. An exception raised
    there is swallowed by importlib's lock callbacks (the run carries on) or leaves a
    half-initialised module behind (a traceback later), and an import writes none of
    the run's files: at worst a temporary file is left, which the next start removes,
    as after kill -9."""
    if importing(frame):
        what, status = STOPS[signal.Signals(signum)]
        sys.stdout.flush()
        sys.stderr.write(stop_line(what))
        sys.stderr.flush()
        os._exit(status)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt()
    raise Terminated()


def importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def stop_line(what: str) -> str:
    """The one line a stopped command ends with, with "; continue with --resume" for a
    command that can continue where it stopped."""
    words = [word for word in sys.argv[1:] if not word.startswith("-")]
    hint = "; continue with --resume" if words[:1] and words[0] in RESUMABLE else ""
    return f"cnnkit: {what}{hint}\n"


def stop(what: str, status: int) -> None:
    sys.stderr.write(stop_line(what))
    sys.exit(status)
