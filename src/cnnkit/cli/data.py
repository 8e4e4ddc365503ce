"""``cnnkit data info|show``: a data set's card and sample images."""

from pathlib import Path

import click
from tabulate import tabulate

from cnnkit.cli.options import data_dir_option, seed_option


@click.group()
def data() -> None:
    """Look at data sets: their cards and sample images."""


@data.command()
@click.argument("name")
@data_dir_option
def info(name: str, data_dir: Path | None) -> None:
    """Print the card of data set NAME (e.g. mnist, fashion-mnist, cifar10, folder:PATH)."""
    from cnnkit.data.card import dataset_card

    card, _, _ = dataset_card(name, data_dir)
    channels, height, width = card.image_shape

    def per_channel(values) -> str:
        return " ".join(f"{v:.4f}" for v in values)

    mean, std = card.normalisation
    facts = [
        ("data set", card.name),
        ("source", card.source),
        ("license", card.license),
        ("location", card.location),
        ("size on disk", f"{card.disk_bytes / 2**20:,.1f} MiB"),
        ("images", f"{sum(card.train_counts):,} training, {sum(card.test_counts):,} test"),
        ("image size", f"{height}x{width}, {channels} channel{'s' if channels > 1 else ''}"),
        ("pixel mean", per_channel(card.pixel_mean) + "  (training images, on [0, 1])"),
        ("pixel std", per_channel(card.pixel_std)),
        ("normalisation", f"(x/255 - [{per_channel(mean)}]) / [{per_channel(std)}]"),
        ("classes", f"{len(card.classes):,}"),
    ]
    click.echo(tabulate(facts, tablefmt="plain"))
    counts = zip(card.classes, card.train_counts, card.test_counts, strict=True)
    rows = [(i, name, train, test) for i, (name, train, test) in enumerate(counts)]
    click.echo()
    headers = ["label", "class", "train", "test"]
    click.echo(tabulate(rows, headers, tablefmt="simple", intfmt=("", "", ",", ",")))


@data.command()
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("grid.png"),
    show_default=True,
    help="PNG file to write.",
)
@click.option(
    "--count", default=32, show_default=True, type=click.IntRange(1, 400), help="Images to show."
)
@click.option(
    "--split",
    type=click.Choice(["train", "test"]),
    default="train",
    show_default=True,
    help="Which split to sample.",
)
@seed_option
@data_dir_option
def show(name: str, out: Path, count: int, split: str, seed: int, data_dir: Path | None) -> None:
    """Write a grid of random sample images of data set NAME with their labels."""
    from cnnkit.plots import save_sample_grid

    click.echo(f"wrote {save_sample_grid(name, split, count, seed, out, data_dir)}")
