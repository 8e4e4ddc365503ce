"""The command's entry point: signals are handled before anything large is imported.

A Ctrl-C or SIGTERM that arrives while the command line's modules are still being
imported (on a busy machine, the first second of every run) ends with the same one
line as one that arrives later, not with a traceback from inside an import.
"""

import signal
import sys

from cnnkit.errors import Terminated

# Commands that continue an interrupted run with --resume, so an interruption says so.
RESUMABLE = ("train",)


def main() -> None:
    signal.signal(signal.SIGTERM, raise_terminated)
    try:
        from cnnkit.cli import main as run_command
    except KeyboardInterrupt:
        stop("interrupted", 130)
    except Terminated:
        stop("terminated", 143)
    run_command()


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def resume_hint() -> str:
    """ "; continue with --resume" for a command that can continue where it stopped."""
    words = [word for word in sys.argv[1:] if not word.startswith("-")]
    return "; continue with --resume" if words[:1] and words[0] in RESUMABLE else ""


def stop(what: str, status: int) -> None:
    sys.stderr.write(f"cnnkit: {what}{resume_hint()}\n")
    sys.exit(status)
