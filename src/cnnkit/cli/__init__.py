"""The ``cnnkit`` command: argument parsing and rendering only.

One module per command group; each handler parses its options, calls one library
function and prints the result. Torch is imported only when a command runs, never
for ``--help``. A ``CnnkitError`` becomes one line on stderr and exit status 1; a
traceback is shown only with ``--debug``.
"""

import sys
import warnings

import click

from cnnkit.cli import (
    bench,
    data,
    explain,
    milestones,
    models,
    read,
    runs,
    search,
    search_index,
    serve,
    size,
    train,
)
from cnnkit.errors import CnnkitError, Terminated
from cnnkit.stops import INTERRUPTED, TERMINATED, handle_stop_signals, stop_line


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
def cli(debug: bool) -> None:
    """Image classification with the landmark convolutional networks."""
    # ``main`` reads --debug itself: errors leave click before any handler could.


for command in (
    train.train,
    train.recipes,
    runs.evaluate,
    runs.predict,
    read.read,
    read.find,
    explain.explain,
    runs.report,
    runs.export,
    serve.serve,
    size.size,
    models.models,
    data.data,
    milestones.baseline,
    milestones.history,
    bench.bench,
    search_index.index,
    search.search,
):
    cli.add_command(command)


def main() -> None:
    handle_stop_signals()
    debug = "--debug" in sys.argv[1:]
    warnings.showwarning = show_warning_line
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        click.echo(stop_line(INTERRUPTED), err=True, nl=False)
        sys.exit(INTERRUPTED.status)
    except Terminated:
        click.echo(stop_line(TERMINATED), err=True, nl=False)
        sys.exit(TERMINATED.status)
    except click.UsageError as error:  # a bad option or argument: one line, as errors are
        command = error.ctx.command_path if error.ctx else "cnnkit"
        hint = f" (see `{command} --help`)"
        click.echo(f"cnnkit: error: {error.format_message()}{hint}", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        click.echo(f"cnnkit: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except CnnkitError as error:
        if debug:
            raise
        click.echo(f"cnnkit: error: {error}", err=True)
        sys.exit(1)


def show_warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr, like errors."""
    click.echo(f"cnnkit: warning: {message}", err=True)
