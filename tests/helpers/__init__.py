"""What many tests share: the command line run in-process (or as a process where the
process itself is under test), a fresh interpreter, the inputs that the test command
(``bash .ci/run``) installs, and the one-line-error check.

Under ``CI=true`` a missing input fails its tests instead of skipping them."""

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from unittest import mock

import pytest
from click.testing import CliRunner

if TYPE_CHECKING:
    from cnnkit.config import TrainOptions
    from cnnkit.runs import EpochRecord
    from cnnkit.trainer import FitResult

IN_CI = os.environ.get("CI") == "true"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # cli.main installs its own handlers


@dataclass(frozen=True)
class CliResult:
    """What a command left behind, as ``subprocess.CompletedProcess`` names it."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> CliResult:
    """``cnnkit ARGS`` in this interpreter, through ``cnnkit.cli.main`` (the console
    script's path after its signal handling), with its output, exit status, working
    folder, environment, signal handlers and warning display kept apart from the
    test's. A fresh interpreter costs 3.5 s of ``import torch``; tests of what only a
    process shows (signals, exit at a stop, import cost) use ``run_cli_process``."""
    from cnnkit.cli import main

    status = 0
    saved_handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    with (
        CliRunner().isolation(env=env) as (stdout, stderr, _),
        working_folder(cwd),
        mock.patch.object(sys, "argv", ["cnnkit", *args]),
        warnings.catch_warnings(),
    ):
        fresh_interpreter_warnings()
        try:
            main()
        except SystemExit as done:
            # As the interpreter reads sys.exit's argument: None is 0, a message is 1.
            status = 0 if done.code is None else done.code if isinstance(done.code, int) else 1
        finally:  # catch_warnings puts back the display that cli.main replaced
            sys.stdout.flush()
            sys.stderr.flush()
            for signum, handler in saved_handlers.items():
                signal.signal(signum, handler)
    return CliResult(args, status, stdout.getvalue().decode(), stderr.getvalue().decode())


def fresh_interpreter_warnings() -> None:
    """The warning filters of a fresh interpreter (``python -W`` unset), so that a
    command shows here the warnings it shows a user, each time."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)


@contextlib.contextmanager
def working_folder(path: Path | None) -> Iterator[None]:
    before = Path.cwd()
    if path is not None:
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli_process(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python -m cnnkit ARGS`` as its own process, with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "cnnkit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def python_output(code: str, *args: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (whose imports start from nothing) and return
    what it printed; the test fails with its stderr if it fails."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_one_line_error(result: CliResult | subprocess.CompletedProcess, *fragments: str):
    """The command failed with one line on stderr, no traceback, naming ``fragments``."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def trained(
    options: "TrainOptions", on_epoch: "Callable[[EpochRecord], None] | None" = None
) -> "FitResult":
    """A run trained through the front door as ``options`` say (one process: it writes)."""
    from cnnkit.training import train

    outcome = train(options, on_epoch=on_epoch)
    assert outcome is not None
    return outcome.result


def trained_checkpoint(options: "TrainOptions") -> Path:
    """The checkpoint of a run trained through the front door as ``options`` say."""
    return trained(options).checkpoint


def require_module(name: str, extra: str) -> ModuleType:
    """Module ``name`` of cnnkit's ``extra``: imported (failing under CI when it is
    missing, since the test command installs it), or the test skipped elsewhere."""
    if IN_CI:
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"the [{extra}] extra")


def require_path(path: Path, what: str) -> Path:
    """``path``, which the test command installs or CI provides: a failure under CI
    when it is missing, a skip elsewhere."""
    if not path.exists():
        message = f"{path} not found ({what})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
