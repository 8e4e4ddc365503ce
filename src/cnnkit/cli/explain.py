"""``cnnkit explain``: every layer of a trained network on one image, and the evidence
for a class, as a table, a figure (``--out``) or one JSON object (``--format json``)."""

import json
from pathlib import Path

import click

from cnnkit.cli.options import checkpoint_argument


@click.command()
@checkpoint_argument()
@click.argument("image", type=click.Path(path_type=Path))
@click.option(
    "--class",
    "target",
    metavar="CLASS",
    help="Explain this class (its name, as the run lists them) [the top class].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write the figure (the input with Grad-CAM, saliency and SmoothGrad, then "
    "every layer's maps) here as a PNG.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "json")),
    default="table",
    show_default=True,
    help="json: one object on stdout with the input, every layer's activations, the "
    "probabilities, Grad-CAM and saliency.",
)
def explain(checkpoint: Path, image: Path, target: str | None, out: Path | None, fmt: str) -> None:
    """What every layer of CHECKPOINT computes for IMAGE, and where the evidence for a
    class lies (Grad-CAM, saliency, SmoothGrad); a caution when IMAGE looks unlike the
    training images."""
    from cnnkit.explain import explain_file
    from cnnkit.files import atomic_write_bytes

    explained = explain_file(checkpoint, image, target)
    if out is not None:
        atomic_write_bytes(out, explained.png())
    if fmt == "json":
        click.echo(json.dumps(explained.to_json()))
        return
    click.echo(explained.verdict())
    click.echo(explained.table())
    if out is not None:
        click.echo(f"wrote {out}")
