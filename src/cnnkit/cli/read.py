"""``cnnkit read`` (the number written in each image) and ``cnnkit find`` (every digit
on a page): parsing and rendering only; ``cnnkit.read`` does the work."""

import json
from pathlib import Path

import click

from cnnkit.cli.options import checkpoint_argument

FORMATS = ("table", "json")


def format_option(command):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table: a line and a table per image; json: one object per image, one a line.",
    )(command)


def out_option(command):
    return click.option(
        "--out",
        type=click.Path(path_type=Path),
        help="Write the image with a box and the class on every digit here (PNG; with "
        "several images, one file each, numbered).",
    )(command)


@click.command()
@checkpoint_argument()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--reader",
    type=click.Choice(["segment", "sdnn"]),
    default="segment",
    show_default=True,
    help="segment: cut the ink and score every cut with the network (any digit model); "
    "sdnn: LeNet-5 replicated along the field (lenet5, lenet5-modern).",
)
@click.option("--digits", type=click.IntRange(min=1), help="Read exactly this many digits.")
@format_option
@out_option
def read(checkpoint, images, reader, digits, fmt, out) -> None:
    """Read the handwritten number in each of IMAGES with CHECKPOINT (an MNIST run;
    one trained with --augment writing,shift reads handwriting better)."""
    from cnnkit.read import read_images
    from cnnkit.runs import load_run

    run = load_run(checkpoint)
    render(list(images), read_images(run, list(images), reader, digits), fmt, out)


@click.command()
@checkpoint_argument()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@format_option
@out_option
def find(checkpoint, images, fmt, out) -> None:
    """Find every digit in each of IMAGES (a page of scattered digits) with CHECKPOINT."""
    from cnnkit.read import find_images
    from cnnkit.runs import load_run

    render(list(images), find_images(load_run(checkpoint), list(images)), fmt, out)


def render(paths: list[Path], readings, fmt: str, out: Path | None) -> None:
    for position, (path, reading) in enumerate(zip(paths, readings, strict=True)):
        if fmt == "json":
            click.echo(json.dumps(reading.as_json()))
        else:
            click.echo(repr(reading))
        if out is not None:
            from cnnkit.read.drawing import save_boxes

            target = out if len(paths) == 1 else out.with_stem(f"{out.stem}-{position}")
            written = save_boxes(path, reading, target)
            if fmt != "json":
                click.echo(f"wrote {written}")
