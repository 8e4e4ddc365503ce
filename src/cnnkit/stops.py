"""How a command stops on Ctrl-C or SIGTERM: one line on stderr and exit status 130 or
143, wherever the signal lands: while the command line's modules are still being
imported (on a busy machine, the first second of every run), during a lazy import
inside a command, or later. Defined once, for the entry point and for ``cli.main``."""

import os
import signal
import sys
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

from cnnkit.errors import Terminated

# Commands that continue an interrupted run with --resume, so an interruption says so.
RESUMABLE = ("train",)


@dataclass(frozen=True)
class Stop:
    """What a stop signal means for the command: its word and its exit status."""

    what: str
    status: int


INTERRUPTED = Stop("interrupted", 130)  # 128 + SIGINT, as shells report it
TERMINATED = Stop("terminated", 143)  # 128 + SIGTERM
STOPS = {signal.SIGINT: INTERRUPTED, signal.SIGTERM: TERMINATED}


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
        sys.stdout.flush()
        sys.stderr.write(stop_line(STOPS[signal.Signals(signum)]))
        sys.stderr.flush()
        os._exit(STOPS[signal.Signals(signum)].status)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt()
    raise Terminated()


def importing(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def stop_line(stop: Stop) -> str:
    """The one line a stopped command ends with, with "; continue with --resume" for a
    command that can continue where it stopped."""
    words = [word for word in sys.argv[1:] if not word.startswith("-")]
    hint = "; continue with --resume" if words[:1] and words[0] in RESUMABLE else ""
    return f"cnnkit: {stop.what}{hint}\n"


def exit_on(stop: Stop) -> NoReturn:
    """End the command as ``stop`` says: its line on stderr, its exit status."""
    sys.stderr.write(stop_line(stop))
    sys.exit(stop.status)
