"""Options that several commands share, declared once. Valid values come from
``cnnkit.config``, which imports no torch, so that ``--help`` stays fast."""

import math
import sys
from pathlib import Path

import click

from cnnkit.config import TTA_MODES


class FiniteFloat(click.FloatRange):
    """A number option's type: click's ``FloatRange`` (bounds optional) that also refuses
    NaN and the infinities. ``FloatRange`` lets NaN through, since NaN compares false with
    every bound (``--threshold nan`` found nothing, ``--lr nan`` trained to NaN), and an
    infinity through an open side. Every float option of every command uses this type."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def dataset_option(default: str | None = "mnist", help: str = "Data set to train on."):
    return click.option("--dataset", default=default, show_default=default is not None, help=help)


data_dir_option = click.option(
    "--data-dir",
    # Must exist: a mistyped folder would otherwise fall through to the shipped MNIST.
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder to look for data in first (then $CNNKIT_DATA, the cache, the package).",
)
train_limit_option = click.option(
    "--train-limit", type=click.IntRange(min=1), help="Train on the first N images only."
)
test_limit_option = click.option(
    "--test-limit", type=click.IntRange(min=1), help="Test on the first N images only [all]."
)
seed_option = click.option(
    "--seed", default=0, show_default=True, help="Seed of the random draws (weights, order)."
)


def tta_option(help: str):
    return click.option(
        "--tta", type=click.Choice(TTA_MODES), default="none", show_default=True, help=help
    )


def _terminal_unless_told(context: click.Context, parameter: click.Parameter, value):
    return sys.stderr.isatty() if value is None else value


progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    callback=_terminal_unless_told,
    help="Show progress bars on stderr [when stderr is a terminal].",
)
top_option = click.option(
    "--top",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many classes to show per image.",
)


def checkpoint_argument():
    return click.argument("checkpoint", type=click.Path(path_type=Path))
