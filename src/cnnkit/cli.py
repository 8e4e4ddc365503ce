"""The ``cnnkit`` command: argument parsing and rendering only.

Each command parses its options, calls one library function and prints the
result. A ``CnnkitError`` becomes one line on stderr and exit status 1; a
traceback is shown only with ``--debug``.
"""

import sys
import warnings
from pathlib import Path

import click
from tabulate import tabulate

from cnnkit.config import HISTORY_LINE, TrainConfig, recipe_for, with_overrides
from cnnkit.errors import CnnkitError
from cnnkit.models import model_names
from cnnkit.train.device import DEVICES, PRECISIONS

RUNS_DIR = Path("runs")

# Options that several commands share, declared once.
dataset_option = click.option(
    "--dataset", default="mnist", show_default=True, help="Data set to train on."
)
data_dir_option = click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Folder to look for data in first."
)
train_limit_option = click.option(
    "--train-limit", type=click.IntRange(min=1), help="Train on the first N images only."
)
test_limit_option = click.option(
    "--test-limit", type=click.IntRange(min=1), help="Test on the first N images only."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """Image classification with the landmark convolutional networks."""
    context.obj = {"debug": debug}


@cli.command()
@click.argument("model", default="lenet5")
@dataset_option
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the training set [recipe].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per step [recipe].")
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    help="Peak learning rate of the one-cycle schedule [recipe].",
)
@click.option("--weight-decay", type=click.FloatRange(min=0), help="L2 penalty [recipe].")
@click.option("--seed", default=0, show_default=True, help="Seed for weights and shuffling.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Folder for checkpoint.pt and metrics.jsonl [runs/MODEL-DATASET].",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Folder to look for data in first (then $CNNKIT_DATA, the cache, the package).",
)
@train_limit_option
@test_limit_option
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a progress bar on stderr.",
)
@click.option(
    "--augment",
    help="Training augmentation: none, alexnet (crop+flip+pca), modern, or steps "
    "from crop,shift,resized-crop,flip,trivialaugment,pca,mixup,cutmix [recipe].",
)
@click.option(
    "--tta",
    type=click.Choice(["none", "ten-crop"]),
    default="none",
    show_default=True,
    help="Also test the final model averaging the softmax over ten crops.",
)
@click.option(
    "--label-smoothing",
    type=click.FloatRange(0, 1, max_open=True),
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
    type=click.Choice(list(PRECISIONS)),
    default="fp32",
    show_default=True,
    help="Autocast dtype of the forward pass (fp16 on CUDA only, with loss scaling).",
)
@click.option(
    "--compile",
    "compile_model",
    is_flag=True,
    help="Train through torch.compile (compiling takes a while first); without a working "
    "compiler, says so once and trains without it.",
)
@click.option(
    "--dist-timeout",
    type=click.FloatRange(min=1),
    default=300,
    show_default=True,
    help="Under torchrun: seconds a process waits for the others before it fails.",
)
def train(
    model: str,
    dataset: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    weight_decay: float | None,
    seed: int,
    out: Path | None,
    resume: bool,
    data_dir: Path | None,
    train_limit: int | None,
    test_limit: int | None,
    progress: bool,
    augment: str | None,
    tta: str,
    label_smoothing: float | None,
    report: bool,
    tensorboard: bool,
    stream: bool,
    workers: int | None,
    device: str,
    precision: str,
    dist_timeout: float,
    compile_model: bool,
) -> None:
    """Train MODEL (default lenet5) and evaluate it on the test set after each epoch.

    Under ``torchrun --nproc-per-node N -m cnnkit train ...`` N processes share each
    batch (docs/distributed.md); only the first prints and writes files.
    """
    from cnnkit.train.distributed import world_from_env
    from cnnkit.train.run import fit

    if model not in model_names():
        raise CnnkitError(f"unknown model {model!r}; known: {', '.join(model_names())}")
    recipe = with_overrides(
        recipe_for(model),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        label_smoothing=label_smoothing,
        augment=augment,
    )
    config = TrainConfig(
        model=model,
        dataset=dataset,
        recipe=recipe,
        seed=seed,
        out=out or default_out_dir(model, dataset, resume),
        resume=resume,
        data_dir=data_dir,
        train_limit=train_limit,
        test_limit=test_limit,
        progress=progress,
        tta=tta,
        stream=stream,
        workers=workers,
        device=device,
        precision=precision,
        dist_timeout=dist_timeout,
        compile=compile_model,
    )
    world = world_from_env()
    if not world.is_main:
        fit(config, world=world)
        return
    shared = f" shared by {world.size} processes" if world.size > 1 else ""
    click.echo(
        f"training {model} on {dataset}: {recipe.epochs} epochs, batch {recipe.batch_size}"
        f"{shared}, lr {recipe.lr}, augment {recipe.augment}, into {config.out}"
    )
    logger = None
    if tensorboard:
        from cnnkit.reports.tensorboard import EpochLogger

        logger = EpochLogger(config.out / "tensorboard")

    def on_epoch(record: dict) -> None:
        click.echo(epoch_line(record, recipe.epochs))
        if logger is not None:
            logger(record)

    try:
        result = fit(config, on_epoch=on_epoch, world=world)
    finally:
        if logger is not None:
            logger.close()
    accuracy = 100 * (1 - result.final.top1_error)
    click.echo(
        f"{model} on {dataset}: test accuracy {accuracy:.2f}% (top-1 error "
        f"{100 * result.final.top1_error:.2f}%, top-5 error "
        f"{100 * result.final.top5_error:.2f}%) after {len(result.history)} epochs on "
        f"{result.device} ({result.config.precision}); {result.seconds:.1f} s in all; "
        f"checkpoint {result.checkpoint}"
    )
    if result.final_tta is not None:
        click.echo(tta_line(result.final, result.final_tta, tta))
    if report and stream:  # the report decodes the data set into memory
        click.echo(
            f"report: skipped for --stream (it decodes the data set into memory); "
            f"`cnnkit report {config.out}` builds it where that fits"
        )
    elif report:
        from cnnkit.reports import build_report

        click.echo(f"report: {build_report(config.out, data_dir)}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@data_dir_option
def report(run_dir: Path, data_dir: Path | None) -> None:
    """Rebuild RUN_DIR's report.html and PNG figures from its metrics and checkpoint."""
    from cnnkit.reports import build_report

    click.echo(f"report: {build_report(run_dir, data_dir)}")


@cli.group()
def baseline() -> None:
    """Classical baselines, to compare the nets with."""


@baseline.command("hog-svm")
@dataset_option
@data_dir_option
@train_limit_option
@test_limit_option
@click.option(
    "--c", "svm_c", default=0.1, show_default=True, type=click.FloatRange(min=0, min_open=True),
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
    from cnnkit.baseline import HogSettings, train_hog_svm

    result = train_hog_svm(dataset, data_dir, train_limit, test_limit, HogSettings(svm_c=svm_c))
    click.echo(
        f"hog-svm on {dataset}: {result.train_images} training images, {result.features} "
        f"features each; test top-1 error {100 * result.top1_error:.2f}%, top-5 error "
        f"{100 * result.top5_error:.2f}% on {result.test_images} images; "
        f"training {result.train_seconds:.1f} s, testing {result.test_seconds:.1f} s"
    )
    if out is not None:
        import json

        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")


@cli.command()
@dataset_option
@click.option(
    "--epochs", default=3, show_default=True, type=click.IntRange(min=1),
    help="Passes over the training set per net (the most, under --budget).",
)  # fmt: skip
@click.option(
    "--budget",
    type=click.FloatRange(min=1),
    help="Instead: seconds of training and testing for all nets, split evenly and "
    "planned from each net's measured speed.",
)
@click.option(
    "--models",
    default=",".join(HISTORY_LINE),
    show_default=True,
    help="Comma-separated nets to train after the HOG+SVM baseline.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Folder for every run and the table; a rerun continues it [runs/history-DATASET].",
)
@data_dir_option
@click.option("--seed", default=0, show_default=True, help="Seed for weights and shuffling.")
@train_limit_option
@test_limit_option
@click.option("--progress/--no-progress", default=False, show_default=True, help="Progress bars.")
def history(
    dataset: str,
    epochs: int,
    budget: float | None,
    models: str,
    out: Path | None,
    data_dir: Path | None,
    seed: int,
    train_limit: int | None,
    test_limit: int | None,
    progress: bool,
) -> None:
    """Results over the years: HOG+SVM and a line of nets on one data set, head to head."""
    from cnnkit.history import HistorySettings, render_table, run_history

    settings = HistorySettings(
        dataset=dataset,
        models=tuple(name.strip() for name in models.split(",") if name.strip()),
        epochs=epochs,
        budget=budget,
        out=out or RUNS_DIR / f"history-{dataset}",
        data_dir=data_dir,
        seed=seed,
        progress=progress,
        train_limit=train_limit,
        test_limit=test_limit,
    )
    rows = run_history(
        settings,
        on_row=lambda row: click.echo(
            f"{row.title}: top-1 error {100 * row.top1_error:.2f}% "
            f"({row.train_images} images x {row.epochs} epochs, {row.train_seconds:.1f} s)",
            err=True,
        ),
    )
    click.echo(render_table(rows))
    click.echo(f"written: {settings.out / 'history.md'}, {settings.out / 'history.png'}")


@cli.command()
@click.argument("model", default="lenet5")
@click.option("--epochs", type=click.IntRange(min=1), help="Epoch budget [the model's recipe].")
@click.option(
    "--trainers",
    default="cnnkit,in-memory,textbook",
    show_default=True,
    help="Which trainers to run, comma-separated.",
)
@click.option("--workers", default=2, show_default=True, help="The textbook DataLoader's workers.")
def bench(model: str, epochs: int | None, trainers: str, workers: int) -> None:
    """Time MODEL's training on MNIST: cnnkit against a plain in-memory loop and the
    textbook DataLoader loop, same model and recipe; then inference images/s."""
    import torch

    from cnnkit import bench as benchmark
    from cnnkit.analysis import size_report

    chosen = [name.strip() for name in trainers.split(",") if name.strip()]
    known = {"cnnkit", "in-memory", "textbook"}
    if not chosen or not set(chosen) <= known:
        raise click.BadParameter(f"choose from {', '.join(sorted(known))}", param_hint="--trainers")
    recipe = with_overrides(recipe_for(model), epochs=epochs)
    network, _, _ = benchmark.mnist_model(model)
    connections = size_report(network, network.input_size).totals.connections
    flops_per_image = 3 * 2 * connections  # forward and two backward products, 2 FLOPs per MAC
    peak = benchmark.matmul_peak_gflops()
    click.echo(
        f"{model}: {connections:,} multiply-adds per image forward; {recipe.epochs} epochs, "
        f"batch {recipe.batch_size}, lr {recipe.lr}, augment {recipe.augment}; "
        f"{torch.get_num_threads()} threads; fp32 matmul peak {peak:.0f} GFLOP/s"
    )
    runs = {
        "cnnkit": lambda: benchmark.run_cnnkit_train(model, recipe),
        "in-memory": lambda: benchmark.run_in_memory(model, recipe),
        "textbook": lambda: benchmark.run_textbook(model, recipe, workers),
    }
    results = []
    for name in chosen:
        click.echo(f"running {name} ...", err=True)
        results.append(runs[name]())
    click.echo(benchmark.render(results, flops_per_image, peak))
    click.echo(
        f"inference (evaluate, predict): {benchmark.inference_speed(model):,.0f} test images/s "
        "in batches of 256"
    )


def default_out_dir(model: str, dataset: str, resume: bool) -> Path:
    """runs/MODEL-DATASET, or the next free runs/MODEL-DATASET-N so that no run is
    overwritten; with --resume, the latest one."""
    base = RUNS_DIR / f"{model}-{dataset}"
    candidates = [base] + [base.with_name(f"{base.name}-{n}") for n in range(2, 1000)]
    taken = [path for path in candidates if (path / "checkpoint.pt").exists()]
    if resume:
        return taken[-1] if taken else base
    return next(path for path in candidates if path not in taken)


def epoch_line(record: dict, epochs: int) -> str:
    return (
        f"epoch {record['epoch']}/{epochs}  train loss {record['train_loss']:.4f}  "
        f"test top-1 error {100 * record['test_top1_error']:.2f}%  "
        f"top-5 error {100 * record['test_top5_error']:.2f}%  "
        f"{record['images_per_second']:,.0f} img/s  {record['seconds']:.1f} s"
    )


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--dataset", help="Data set to test on [the checkpoint's].")
@data_dir_option
@test_limit_option
@click.option(
    "--tta",
    type=click.Choice(["none", "ten-crop"]),
    default="none",
    show_default=True,
    help="Also report errors with the softmax averaged over ten crops.",
)
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
    from cnnkit.train.evaluation import evaluate_with_tta

    report = evaluate_with_tta(checkpoint, dataset, data_dir, test_limit, tta)
    stats, classes = report.tta or report.plain, report.classes
    if report.tta is not None:
        click.echo(tta_line(report.plain, report.tta, tta))
    click.echo(
        f"{stats.images} test images: top-1 error {100 * stats.top1_error:.2f}%, "
        f"top-5 error {100 * stats.top5_error:.2f}% "
        f"({stats.images / stats.seconds:,.0f} img/s)"
    )
    rows = [
        (name, int(stats.confusion[i].sum()), f"{100 * float(acc):.2f}")
        for i, (name, acc) in enumerate(zip(classes, stats.per_class_accuracy, strict=True))
    ]
    click.echo(tabulate(rows, headers=["class", "images", "accuracy %"], tablefmt="simple"))
    click.echo("\nconfusion matrix (row = true class, column = predicted):")
    click.echo(confusion_table(stats.confusion, classes))
    if confusion_png is not None:
        from cnnkit.reports.plots import save_confusion_png

        click.echo(f"wrote {save_confusion_png(stats.confusion, classes, confusion_png)}")


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--top",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many classes to show per image.",
)
def predict(checkpoint: Path, images: tuple[Path, ...], top: int) -> None:
    """Classify IMAGES (PNG or JPEG files) with CHECKPOINT; print the top classes."""
    from cnnkit.predict import predict_files

    predictions = predict_files(checkpoint, list(images), top)
    rows = [
        [str(p.path)] + [f"{name} ({100 * prob:.1f}%)" for name, prob in p.top] for p in predictions
    ]
    ranks = [f"#{rank}" for rank in range(1, top + 1)]
    click.echo(tabulate(rows, headers=["image"] + ranks[: len(rows[0]) - 1], tablefmt="simple"))


@cli.command()
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
    type=click.Choice(["table", "json", "csv", "markdown"]),
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
            raise CnnkitError("--compare uses each paper's own input; drop --input/--num-classes")
        click.echo(render_comparison(compare_models(list(models)), fmt))
        return
    if len(models) != 1:
        raise CnnkitError(f"size takes one MODEL, not {len(models)}; use --compare for several")
    input_shape = parse_input_shape(input_text) if input_text else None
    click.echo(render_size(model_size(models[0], input_shape, num_classes), fmt))


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """'3,224,224' -> (3, 224, 224); a CnnkitError for anything else."""
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise CnnkitError(f"--input {text!r}: expected three positive integers C,H,W")
    channels, height, width = (int(part) for part in parts)
    return channels, height, width


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    warnings.showwarning = show_warning_line
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("cnnkit: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except CnnkitError as error:
        if debug:
            raise
        click.echo(f"cnnkit: error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("cnnkit: interrupted; continue with --resume", err=True)
        sys.exit(130)


def tta_line(plain, augmented, tta: str) -> str:
    """The closing note: errors with and without test-time augmentation."""
    return (
        f"{tta}: top-1 error {100 * augmented.top1_error:.2f}% "
        f"(single crop {100 * plain.top1_error:.2f}%), top-5 error "
        f"{100 * augmented.top5_error:.2f}% (single crop {100 * plain.top5_error:.2f}%)"
    )


def confusion_table(confusion, classes: list[str]) -> str:
    short = [name[:8] for name in classes]
    rows = [[short[i]] + row for i, row in enumerate(confusion.tolist())]
    return tabulate(rows, headers=["true \\ pred"] + short, tablefmt="simple")


def show_warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr, like errors."""
    click.echo(f"cnnkit: warning: {message}", err=True)


@cli.group()
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
        (
            "normalisation",
            f"(x/255 - [{per_channel(card.normalisation[0])}]) / "
            f"[{per_channel(card.normalisation[1])}]",
        ),
        ("classes", str(len(card.classes))),
    ]
    click.echo(tabulate(facts, tablefmt="plain"))
    rows = [
        (i, name, train, test)
        for i, (name, train, test) in enumerate(
            zip(card.classes, card.train_counts, card.test_counts, strict=True)
        )
    ]
    click.echo()
    click.echo(tabulate(rows, headers=["label", "class", "train", "test"], tablefmt="simple"))


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
@click.option("--seed", default=0, show_default=True, help="Which random samples to show.")
@data_dir_option
def show(name: str, out: Path, count: int, split: str, seed: int, data_dir: Path | None) -> None:
    """Write a grid of random sample images of data set NAME with their labels."""
    import torch

    from cnnkit.data import load_dataset
    from cnnkit.reports.plots import save_image_grid

    train, test = load_dataset(name, data_dir)
    chosen = train if split == "train" else test
    picks = torch.randperm(len(chosen), generator=torch.Generator().manual_seed(seed))[:count]
    titles = [chosen.classes[int(chosen.labels[i])] for i in picks]
    click.echo(f"wrote {save_image_grid(chosen.images[picks], titles, out)}")


@cli.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", required=True, metavar="onnx|torchscript",
    help="onnx (runs in onnxruntime; needs cnnkit[export]) or torchscript (traced; torch only).",
)  # fmt: skip
@click.option(
    "--quantize", metavar="int8", help="Store the fully connected layers as int8 [float32]."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="File to write.")
@data_dir_option
@click.option(
    "--test-limit",
    type=click.IntRange(min=1),
    help="Check the file on the first N test images [all].",
)
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
        click.echo(
            f"{result.quantize}: size {kib(result.float_bytes)} -> {kib(result.bytes)}; "
            f"top-1 error {100 * result.float_top1_error:.2f}% -> "
            f"{100 * result.top1_error:.2f}% {on}"
        )
    else:
        click.echo(f"top-1 error {100 * result.top1_error:.2f}% {on}")


def kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB"
