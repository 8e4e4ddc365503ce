"""Progress bars where a person watches: tqdm's text bar in a terminal, and in a Jupyter
notebook its widget (where ipywidgets is installed) or the text bar, which Jupyter
redraws in place."""

import importlib.util
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import std


def in_notebook() -> bool:
    """Running in a Jupyter kernel: IPython's shell there is a kernel's (a program that
    only imports ``ipykernel`` or IPython, as a notebook's executor does, is not one)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def wanted() -> bool:
    """Show progress by default: in a terminal or a notebook, not in a log or a pipe."""
    return sys.stderr.isatty() or in_notebook()


def bar(iterable: Iterable | None = None, **options: Any) -> std.tqdm:
    """A tqdm bar for where this runs (arguments as tqdm takes them)."""
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as notebook_bar

        return notebook_bar(iterable, **options)
    return std.tqdm(iterable, **options)
