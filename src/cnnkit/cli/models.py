"""``cnnkit models``: every model cnnkit can build, with its size and its paper."""

import json

import click


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("table", "markdown", "json")),
    default="table",
    show_default=True,
    help="How to print the list.",
)
def models(fmt: str) -> None:
    """List every model with its parameters, connections, input size and paper.

    Counted on the model at its own input size (cnnkit size MODEL gives the layers).
    """
    from cnnkit.analysis.catalogue import catalogue

    listing = catalogue()
    if fmt == "json":
        click.echo(json.dumps(listing.to_dicts(), indent=2))
    else:
        click.echo(listing.table("github" if fmt == "markdown" else "simple"))
