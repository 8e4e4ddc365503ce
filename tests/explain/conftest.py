"""The explanation tests' trained digit run, loaded once per module."""

import pytest

from cnnkit.runs import load_run


@pytest.fixture(scope="module")
def digit(digit_run):
    return load_run(digit_run)
