"""The lecture's comparisons: ``baseline hog-svm`` and ``history`` (results over the years)."""

from pathlib import Path
from typing import Any

import click

from cnnkit.cli.options import (
    FiniteFloat,
    data_dir_option,
    dataset_option,
    progress_option,
    seed_option,
    test_limit_option,
    train_limit_option,
)


@click.group()
def baseline() -> None:
    """Classical baselines, to compare the nets with."""


@baseline.command("hog-svm")
@dataset_option()
@data_dir_option
@train_limit_option
@test_limit_option
@click.option(
    "--c", "svm_c", default=0.1, show_default=True, type=FiniteFloat(min=0, min_open=True),
    help="The SVM's C (weight of the hinge loss against the L2 penalty).",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(path_type=Path), help="Also write the result as JSON into this folder."
)
def hog_svm(
    dataset: str,
    data_dir: Path | None,
    train_limit: int | None,
    test_limit: int | None,
    svm_c: float,
    out: Path | None,
) -> None:
    """HOG descriptors and a linear SVM (needs cnnkit[classic]); top-1/top-5 error, timing."""
    from cnnkit.baseline import HogSettings, save_result, train_hog_svm

    result = train_hog_svm(dataset, data_dir, train_limit, test_limit, HogSettings(svm_c=svm_c))
    click.echo(
        f"hog-svm on {dataset}: {result.train_images:,} training images, {result.features:,} "
        f"features each; test top-1 error {100 * result.top1_error:.2f}%, top-5 error "
        f"{100 * result.top5_error:.2f}% on {result.test_images:,} images; "
        f"training {result.train_seconds:.1f} s, testing {result.test_seconds:.1f} s"
    )
    if out is not None:
        save_result(result, out)


@click.command()
@dataset_option()
@click.option(
    "--epochs", default=3, show_default=True, type=click.IntRange(min=1),
    help="Passes over the training set per net (the most, under --budget).",
)  # fmt: skip
@click.option(
    "--budget",
    type=FiniteFloat(min=1),
    help="Instead: seconds of training and testing for all nets, split evenly and "
    "planned from each net's measured speed.",
)
@click.option(
    "--models",
    help="Comma-separated nets to train after the HOG+SVM baseline [lenet5 and the "
    "small-image versions of the ImageNet winners: the models registered in the line].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Folder for every run and the table; a rerun continues it [runs/history-DATASET].",
)
@data_dir_option
@seed_option
@train_limit_option
@test_limit_option
@progress_option
def history(
    dataset: str,
    epochs: int,
    budget: float | None,
    models: str | None,
    out: Path | None,
    **options: Any,
) -> None:
    """Results over the years: HOG+SVM and a line of nets on one data set, head to head."""
    from cnnkit.milestones import HistorySettings, render_table, run_history
    from cnnkit.models import history_line
    from cnnkit.runs import RUNS_DIR

    settings = HistorySettings(
        dataset=dataset,
        models=tuple(name.strip() for name in (models or "").split(",") if name.strip())
        or history_line(),
        epochs=epochs,
        budget=budget,
        out=out or RUNS_DIR / f"history-{dataset}",
        **options,
    )
    rows = run_history(
        settings,
        on_row=lambda row: click.echo(
            f"{row.title}: top-1 error {100 * row.top1_error:.2f}% "
            f"({row.train_images:,} images x {row.epochs:,} epochs, {row.train_seconds:.1f} s)",
            err=True,
        ),
    )
    click.echo(render_table(rows))
    click.echo(f"written: {settings.out / 'history.md'}, {settings.out / 'history.png'}")
