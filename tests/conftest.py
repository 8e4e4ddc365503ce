"""Shared test helpers: the real CLI as a subprocess, real MNIST loaded once, and the
inputs that the test command (``bash .ci/run``) installs: under ``CI=true`` a missing
one fails its tests instead of skipping them."""

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cnnkit.data import ImageSet, load_dataset


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``python -m cnnkit ARGS`` (the installed CLI) and capture its output."""
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


@pytest.fixture(scope="session")
def mnist() -> tuple[ImageSet, ImageSet]:
    """The real MNIST (train, test) splits as shipped with the package."""
    return load_dataset("mnist")


IN_CI = os.environ.get("CI") == "true"


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


# Below IN_CI, which tests.real_images reads: real photos for every test directory.
from tests.real_images import real_image_tree  # noqa: E402, F401
