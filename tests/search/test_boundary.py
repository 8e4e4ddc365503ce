"""Search is a consumer of runs: it never loads the trainer, and its --help no torch."""

from tests.helpers import python_output


def test_help_of_the_search_commands_imports_no_torch():
    code = (
        "import sys\nfrom cnnkit.cli import cli\n"
        "for command in (['index', 'build'], ['search', 'query'], ['search', 'eval']):\n"
        "    try:\n        cli([*command, '--help'])\n    except SystemExit:\n        pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')"
    )
    stdout = python_output(code)
    assert "--backend [auto|exact|flat|hnsw|ivf|ivfpq]" in stdout
    assert stdout.strip().endswith("NO TORCH")


def test_loading_the_command_line_imports_no_numpy():
    """`cnnkit --help` loads every command's module: the search backends' names come
    from their table without numpy (76 ms of the 180 ms it took with it, here)."""
    stdout = python_output("import sys, cnnkit.cli\nprint('numpy' in sys.modules)")
    assert stdout.strip() == "False"


def test_search_does_not_load_the_trainer(mnist_index, digit_files):
    # Not only the imports: a query loads the run and embeds through it.
    code = (
        "import sys, cnnkit.search, cnnkit.search.page\n"
        f"hits = cnnkit.search.open_index({str(mnist_index)!r}).query_files("
        f"[{str(digit_files[0])!r}], top=3)[0]\n"
        "assert len(hits) == 3, hits\n"
        "print([m for m in sys.modules if m.startswith('cnnkit.trainer')])"
    )
    stdout = python_output(code)
    assert stdout.strip() == "[]"
