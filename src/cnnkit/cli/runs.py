"""Commands that use a trained run: ``evaluate``, ``predict``, ``report``, ``export``."""

from pathlib import Path

import click
from tabulate import tabulate

from cnnkit.cli.options import (
    checkpoint_argument,
    data_dir_option,
    dataset_option,
    test_limit_option,
    top_option,
    tta_option,
)
from cnnkit.cli.train import tta_line
from cnnkit.config import EXPORT_FORMATS, QUANTIZATIONS


@click.command()
@checkpoint_argument()
@dataset_option(default=None, help="Data set to test on [the checkpoint's].")
@data_dir_option
@test_limit_option
@tta_option("Also report errors with the softmax averaged over ten crops.")
@click.option(
    "--confusion-png",
    type=click.Path(path_type=Path),
    help="Write the confusion matrix as a PNG heat map here.",
)
def evaluate(
    checkpoint: Path,
    dataset: str | None,
    data_dir: Path | None,
    test_limit: int | None,
    tta: str,
    confusion_png: Path | None,
) -> None:
    """Top-1 and top-5 error of CHECKPOINT on a test set, accuracy per class, confusion."""
    from cnnkit.evaluate import error_line, evaluate_checkpoint

    report = evaluate_checkpoint(checkpoint, dataset, data_dir, test_limit, tta)
    stats, classes = report.tta or report.plain, report.classes
    if report.tta is not None:
        click.echo(tta_line(report.plain, report.tta, tta))
    click.echo(f"{error_line(stats)} ({stats.images / stats.seconds:,.0f} img/s)")
    rows = [
        (name, int(stats.confusion[i].sum()), 100 * float(acc))
        for i, (name, acc) in enumerate(zip(classes, stats.per_class_accuracy, strict=True))
    ]
    headers = ["class", "images", "accuracy %"]  # class names as given, counts with commas
    click.echo(tabulate(rows, headers, tablefmt="simple", intfmt=("", ","), floatfmt=".2f"))
    click.echo("\nconfusion matrix (row = true class, column = predicted):")
    short = [name[:8] for name in classes]
    confusion = [[short[i]] + row for i, row in enumerate(stats.confusion.tolist())]
    counts = ("", *[","] * len(classes))
    click.echo(tabulate(confusion, ["true \\ pred"] + short, tablefmt="simple", intfmt=counts))
    if confusion_png is not None:
        from cnnkit.plots import save_confusion_png

        click.echo(f"wrote {save_confusion_png(stats.confusion, classes, confusion_png)}")


@click.command()
@checkpoint_argument()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@top_option
def predict(checkpoint: Path, images: tuple[Path, ...], top: int) -> None:
    """Classify IMAGES (PNG, JPEG or GIF files) with CHECKPOINT; print the top classes."""
    from cnnkit.predict import predict_files

    click.echo(predict_files(checkpoint, list(images), top).table())


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@data_dir_option
def report(run_dir: Path, data_dir: Path | None) -> None:
    """Rebuild RUN_DIR's report.html and PNG figures from its metrics and checkpoint."""
    from cnnkit.reports import build_report

    click.echo(f"report: {build_report(run_dir, data_dir)}")


@click.command("export")
@checkpoint_argument()
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(EXPORT_FORMATS),
    help="onnx (runs in onnxruntime; needs cnnkit[export]) or torchscript (traced; torch only).",
)
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZATIONS),
    help="Store the fully connected layers as int8 [float32].",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="File to write.")
@data_dir_option
@test_limit_option
def export(
    checkpoint: Path,
    fmt: str,
    quantize: str | None,
    out: Path,
    data_dir: Path | None,
    test_limit: int | None,
) -> None:
    """Write CHECKPOINT's model as a file that runs without cnnkit (docs/export.md).

    The file takes uint8 images as the data set stores them (N x C x H x W, 0-255) and
    returns logits; it is run on the checkpoint's test set and compared with PyTorch.
    """
    from cnnkit.export import export_checkpoint

    result = export_checkpoint(checkpoint, fmt, out, quantize, data_dir, test_limit)
    on = f"on {result.images:,} {result.dataset} test images"
    click.echo(
        f"wrote {result.path} ({result.format}, {kib(result.bytes)}); float export vs PyTorch: "
        f"max abs difference {result.max_abs_difference:.1e} in the logits {on}"
    )
    if result.float_bytes is not None:
        assert result.float_top1_error is not None  # set with float_bytes, under --quantize
        click.echo(
            f"{result.quantize}: size {kib(result.float_bytes)} -> {kib(result.bytes)}; "
            f"top-1 error {100 * result.float_top1_error:.2f}% -> "
            f"{100 * result.top1_error:.2f}% {on}"
        )
    else:
        click.echo(f"top-1 error {100 * result.top1_error:.2f}% {on}")


def kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB"
