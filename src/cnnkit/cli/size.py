"""``cnnkit size``: a network's units, weights and connections, layer by layer."""

import click

from cnnkit.config import TABLE_FORMATS
from cnnkit.errors import ConfigError


@click.command()
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--input",
    "input_text",
    metavar="C,H,W",
    help="Size of one input image [the model's own, e.g. 1,32,32 for lenet5].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(TABLE_FORMATS),
    default="table",
    show_default=True,
    help="How to print the report.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Print the lecture's comparison table of MODELS (e.g. lenet1 lenet5 alexnet).",
)
@click.option("--num-classes", type=click.IntRange(min=1), help="Output classes [the paper's].")
def size(
    models: tuple[str, ...],
    input_text: str | None,
    fmt: str,
    compare: bool,
    num_classes: int | None,
) -> None:
    """Units, weights, biases and connections of MODEL, layer by layer.

    Connections are the multiply-adds of one forward pass for one example,
    without biases; "+ biases" adds one per unit with a bias, as the LeNet papers
    count; parameters = weights + biases.
    """
    from cnnkit.analysis import model_size
    from cnnkit.analysis.papers import compare_models
    from cnnkit.analysis.render import render_comparison, render_size

    if compare:
        if input_text or num_classes:
            raise ConfigError("--compare uses each paper's own input; drop --input/--num-classes")
        click.echo(render_comparison(compare_models(list(models)), fmt))
        return
    if len(models) != 1:
        raise ConfigError(f"size takes one MODEL, not {len(models)}; use --compare for several")
    input_shape = parse_input_shape(input_text) if input_text else None
    click.echo(render_size(model_size(models[0], input_shape, num_classes), fmt))


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'3,224,224' -> (3, 224, 224); a ConfigError for anything else."""
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise ConfigError(f"--input {text!r}: expected three positive integers C,H,W")
    channels, height, width = (int(part) for part in parts)
    return channels, height, width
