"""``cnnkit bench``: cnnkit's trainer against the reference trainers, judged by time
to accuracy."""

import click

from cnnkit.cli.options import test_limit_option, train_limit_option


@click.command()
@click.argument("model", default="lenet5")
@click.option("--epochs", type=click.IntRange(min=1), help="Epoch budget [the model's recipe].")
@click.option(
    "--trainers",
    default="cnnkit,in-memory,textbook,pytorch-examples,train-mnist-fast",
    show_default=True,
    help="Which trainers to run, comma-separated (cnnkit, in-memory, textbook, "
    "pytorch-examples, train-mnist-fast); the first is the one the ratios compare with.",
)
@click.option("--workers", default=2, show_default=True, help="The textbook DataLoader's workers.")
@click.option(
    "--reference-epochs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Epochs of the pytorch/examples recipe (its script runs 14).",
)
@click.option(
    "--seeds",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Runs of cnnkit train and of each reference, seeds 0 to N-1; their mean accuracy "
    "at their mean time is timed, the lowest shown beside it.",
)
@train_limit_option
@test_limit_option
def bench(
    model: str,
    epochs: int | None,
    trainers: str,
    workers: int,
    reference_epochs: int,
    seeds: int,
    train_limit: int | None,
    test_limit: int | None,
) -> None:
    """Time MODEL's training on MNIST to 98.3% and 99.0% test accuracy and to each public
    recipe's own result: cnnkit against a plain in-memory loop and the textbook
    DataLoader loop (same model and recipe), the pytorch/examples recipe and the
    train_mnist_fast one-epoch recipe; then inference images/s."""
    from cnnkit.bench import harness as benchmark

    chosen = [name.strip() for name in trainers.split(",") if name.strip()]
    report = benchmark.run_benchmark(
        model,
        epochs,
        chosen,
        workers,
        lambda name: click.echo(f"running {name} ...", err=True),
        benchmark.Limits(train_limit, test_limit),
        reference_epochs,
        seeds,
    )
    recipe = report.recipe
    click.echo(
        f"{model}: {report.connections:,} multiply-adds per image forward; {recipe.epochs:,} "
        f"epochs, batch {recipe.batch_size:,}, lr {recipe.lr}, augment {recipe.augment}; "
        f"{report.threads:,} threads; fp32 matmul peak {report.peak_gflops:.0f} GFLOP/s; "
        f"{seeds:,} seed{'s' if seeds > 1 else ''}"
    )
    click.echo(benchmark.render(report))
    click.echo(
        f"inference (evaluate, predict): {report.inference_images_per_second:,.0f} test "
        "images/s in batches of 256"
    )
