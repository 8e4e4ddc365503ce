"""Every command's ``--help`` reads as plain text: the docstrings that click shows carry
no reStructuredText markup (double backticks, roles such as :func:, literal-block ::)."""

import re
from collections.abc import Iterator

import click
import pytest

from cnnkit.cli import cli

MARKUP = re.compile(r"``|:(func|class|meth|mod|attr|ref|doc):|::\s*$", re.MULTILINE)


def command_helps() -> Iterator[tuple[str, str]]:
    """(command path, its --help text) for the group and every command below it."""

    def walk(command: click.Command, parent: click.Context | None, name: str):
        context = click.Context(command, info_name=name, parent=parent)
        yield context.command_path, command.get_help(context)
        if isinstance(command, click.Group):
            for child in command.list_commands(context):
                sub = command.get_command(context, child)
                assert sub is not None
                yield from walk(sub, context, child)

    yield from walk(cli, None, "cnnkit")


HELPS = dict(command_helps())


def test_the_walk_reaches_subcommands():
    assert {"cnnkit", "cnnkit train", "cnnkit index build", "cnnkit search dupes"} <= set(HELPS)


@pytest.mark.parametrize("path", sorted(HELPS))
def test_help_has_no_rst_markup(path):
    found = [line for line in HELPS[path].splitlines() if MARKUP.search(line)]
    assert not found, f"{path} --help shows markup: {found}"
