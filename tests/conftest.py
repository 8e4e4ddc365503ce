"""Shared test helpers: the real CLI as a subprocess, real MNIST loaded once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnkit.data import ImageSet, load_dataset


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m cnnkit ARGS`` (the installed CLI) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "cnnkit", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def mnist() -> tuple[ImageSet, ImageSet]:
    """The real MNIST (train, test) splits as shipped with the package."""
    return load_dataset("mnist")
