"""Progress where a person watches: in a terminal, and in a Jupyter kernel (whose stderr
is no terminal) as well; never in a log or a pipe."""

import sys
import types

from tqdm import std

from cnnkit import progress


def test_no_progress_by_default_in_a_pipe_but_in_a_notebook(monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    ipython = types.ModuleType("IPython")
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    ipython.get_ipython = lambda: None  # type: ignore[attr-defined]  # imported, no shell
    assert not progress.in_notebook() and not progress.wanted()
    terminal_shell = types.SimpleNamespace(kernel=None)  # IPython in a terminal
    ipython.get_ipython = lambda: terminal_shell  # type: ignore[attr-defined]
    assert not progress.in_notebook()
    kernel_shell = types.SimpleNamespace(kernel=object())  # a Jupyter kernel's shell
    ipython.get_ipython = lambda: kernel_shell  # type: ignore[attr-defined]
    assert progress.in_notebook() and progress.wanted()


def test_a_bar_counts_what_it_is_given(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    with progress.bar(range(3), disable=True) as bar:
        assert isinstance(bar, std.tqdm) and list(bar) == [0, 1, 2]
