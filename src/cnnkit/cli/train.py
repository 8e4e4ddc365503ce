"""``cnnkit train`` and ``cnnkit recipes``."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cnnkit.cli.options import (
    FiniteFloat,
    data_dir_option,
    dataset_option,
    seed_option,
    test_limit_option,
    train_limit_option,
    tta_option,
)
from cnnkit.config import DEVICES, OPTIMIZERS, PRECISIONS

if TYPE_CHECKING:  # the run layer imports torch; the CLI only names its types
    from cnnkit.runs import EpochRecord


@click.command()
@click.argument("model", default="lenet5")
@dataset_option()
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the training set [recipe].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per step [recipe].")
@click.option(
    "--lr",
    type=FiniteFloat(min=0, min_open=True),
    help="Peak learning rate of the one-cycle schedule [recipe].",
)
@click.option("--weight-decay", type=FiniteFloat(min=0), help="L2 penalty [recipe].")
@click.option(
    "--optimizer",
    type=click.Choice(OPTIMIZERS),
    default="sgd",
    show_default=True,
    help="sgd: the model's recipe (SGD one-cycle; Adam for speedrun); sdlm: LeNet-5's own "
    "stochastic diagonal Levenberg-Marquardt with the paper's 20-pass recipe (lr: the first "
    "eta); adam: only for a model whose recipe is Adam's.",
)
@seed_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Folder for checkpoint.pt and metrics.jsonl [runs/MODEL-DATASET].",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@data_dir_option
@train_limit_option
@test_limit_option
@click.option(
    "--progress/--no-progress",
    default=None,  # TrainOptions' own: when stderr is a terminal
    help="Show progress bars on stderr [when stderr is a terminal].",
)
@click.option(
    "--augment",
    help="Training augmentation: none, alexnet (crop+flip+pca), modern, or steps "
    "from writing,crop,shift,resized-crop,flip,trivialaugment,pca,mixup,cutmix [recipe].",
)
@tta_option("Also test the final model averaging the softmax over ten crops.")
@click.option(
    "--label-smoothing",
    type=FiniteFloat(0, 1, max_open=True),
    help="Weight of the uniform target in the loss (Szegedy et al. 2016) [recipe].",
)
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Write report.html and PNG figures into --out at the end.",
)
@click.option(
    "--tensorboard",
    is_flag=True,
    help="Also log each epoch for TensorBoard into OUT/tensorboard (needs cnnkit[tensorboard]).",
)
@click.option(
    "--stream",
    is_flag=True,
    help="Read a folder:PATH or imagenet:PATH set from disk batch by batch with DataLoader "
    "workers, instead of decoding it into memory (needed above 8 GiB of pixels).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="DataLoader worker processes for --stream (0: decode in the main process) "
    "[one per core, at most 8].",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where to train: auto takes a CUDA GPU, else Apple MPS, else the CPU.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="Autocast dtype of the forward pass (fp16 on CUDA only, with loss scaling).",
)
@click.option(
    "--compile",
    is_flag=True,
    help="Train through torch.compile (compiling takes a while first); without a working "
    "compiler, says so once and trains without it.",
)
@click.option(
    "--dist-timeout",
    type=FiniteFloat(min=1),
    default=300,
    show_default=True,
    help="Under torchrun: seconds a process waits for the others before it fails.",
)
def train(**options: Any) -> None:
    """Train MODEL (default lenet5) and evaluate it on the test set after each epoch.

    Under `torchrun --nproc-per-node N -m cnnkit train ...`, N processes share each
    batch (docs/distributed.md); only the first prints and writes files.
    """
    from cnnkit.config import TrainOptions
    from cnnkit.training import train as train_model

    epochs = {}

    def on_start(config, world) -> None:
        epochs["total"] = config.recipe.epochs
        click.echo(header_line(config, world.size))

    outcome = train_model(
        TrainOptions(**options),
        on_start,
        lambda record: click.echo(epoch_line(record, epochs["total"])),
    )
    if outcome is None:  # a torchrun rank that does not write
        return
    click.echo(summary_line(outcome.result))
    if outcome.result.final_tta is not None:
        click.echo(tta_line(outcome.result.final, outcome.result.final_tta, options["tta"]))
    if outcome.report is not None or outcome.report_skipped is not None:
        click.echo(f"report: {outcome.report or outcome.report_skipped}")


def header_line(config, processes: int) -> str:
    recipe = config.recipe
    shared = f" shared by {processes} processes" if processes > 1 else ""
    return (
        f"training {config.model} on {config.dataset}: {recipe.epochs:,} epochs, batch "
        f"{recipe.batch_size:,}{shared}, lr {recipe.lr}, augment {recipe.augment}"
        f"{', optimizer sdlm' if recipe.optimizer == 'sdlm' else ''}, into {config.out}"
    )


def epoch_line(record: "EpochRecord", epochs: int) -> str:
    return (
        f"epoch {record.epoch}/{epochs}  train loss {record.train_loss:.4f} "
        f"error {100 * record.train_top1_error:.2f}%  test loss {record.test_loss:.4f} "
        f"top-1 error {100 * record.test_top1_error:.2f}%  "
        f"top-5 error {100 * record.test_top5_error:.2f}%  "
        f"{record.images_per_second:,.0f} img/s  {record.seconds:.1f} s"
    )


def summary_line(result) -> str:
    final, config = result.final, result.config
    return (
        f"{config.model} on {config.dataset}: test accuracy {100 * (1 - final.top1_error):.2f}% "
        f"(top-1 error {100 * final.top1_error:.2f}%, top-5 error "
        f"{100 * final.top5_error:.2f}%) after {len(result.history):,} epochs on "
        f"{result.device} ({config.precision}); {result.seconds:.1f} s in all; "
        f"checkpoint {result.checkpoint}"
    )


def tta_line(plain, augmented, tta: str) -> str:
    """The closing note: errors with and without test-time augmentation."""
    return (
        f"{tta}: top-1 error {100 * augmented.top1_error:.2f}% "
        f"(single crop {100 * plain.top1_error:.2f}%), top-5 error "
        f"{100 * augmented.top5_error:.2f}% (single crop {100 * plain.top5_error:.2f}%)"
    )


@click.command()
@click.argument("model", required=False)
@dataset_option(help="The data set the recipe is for (recipes may depend on it).")
def recipes(model: str | None, dataset: str) -> None:
    """Print the recipe MODEL trains with on --dataset (every model's without MODEL),
    with where its settings come from."""
    from tabulate import tabulate

    from cnnkit.models import model_names, recipe_rule_for

    rows = []
    for name in [model] if model else model_names():
        rule = recipe_rule_for(name, dataset)
        r = rule.recipe
        momentum = f"{r.momentum} ({'Nesterov' if r.nesterov else 'classical'})"
        rows.append([name, rule.name, r.epochs, r.batch_size, r.lr, momentum, r.weight_decay,
                     r.warmup_fraction, r.label_smoothing, r.augment, r.source])  # fmt: skip
    headers = ["model", "rule", "epochs", "batch", "lr", "momentum", "weight decay",
               "warm-up", "label smoothing", "augment", "source"]  # fmt: skip
    click.echo(f"recipes on {dataset} (one-cycle schedule; flags override each setting)")
    click.echo(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
