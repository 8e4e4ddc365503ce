"""``cnnkit index build|add|remove|info``: search indexes (docs/search.md)."""

import json
from pathlib import Path

import click
from tabulate import tabulate

from cnnkit.cli.options import FiniteFloat, checkpoint_argument, data_dir_option, progress_option
from cnnkit.config import DEVICES, VECTOR_DTYPES
from cnnkit.search.backends import AUTO, BACKEND_CHOICES, describe_backends
from cnnkit.search.tune import DEFAULT_TARGET_RECALL

FORMATS = ("table", "json")

device_option = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="Where to embed: auto takes a CUDA GPU, else Apple MPS, else the CPU.",
)
batch_size_option = click.option(
    "--batch-size",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images per forward pass.",
)
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=0),
    help="Processes reading the images, and on a CPU embedding them too (0: all in this "
    "process) [one per core, at most 8].",
)
format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
    help="Output format.",
)  # fmt: skip


@click.group()
def index() -> None:
    """Build, change and inspect search indexes of image collections."""


@index.command()
@checkpoint_argument()
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dataset", help="Index a data set's split instead of files (mnist, folder:PATH).")
@click.option(
    "--split", type=click.Choice(("train", "test")), default="train", show_default=True,
    help="The split of --dataset.",
)  # fmt: skip
@data_dir_option
@click.option("--limit", type=click.IntRange(min=1), help="Index the first N images only [all].")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="New index folder.")
@click.option("--resume", is_flag=True, help="Finish the stopped build in --out.")
@click.option(
    "--backend", type=click.Choice(BACKEND_CHOICES), default=AUTO, show_default=True,
    help=f"How queries find the nearest items: {describe_backends()}.",
)  # fmt: skip
@click.option(
    "--dtype", type=click.Choice(VECTOR_DTYPES), default="float32", show_default=True,
    help="Stored vectors (float16: half the disk and memory).",
)  # fmt: skip
@click.option(
    "--target-recall", type=FiniteFloat(0, 1, min_open=True),
    help="Recall@10 against exact search, measured on held-out items, that the search-time "
    f"setting (IVF's nprobe, HNSW's ef_search) is tuned to [{DEFAULT_TARGET_RECALL}].",
)  # fmt: skip
@click.option(
    "--memory-budget", type=FiniteFloat(0, min_open=True), metavar="MB",
    help="Most memory the backend may take, in MB (10^6 bytes): auto takes a smaller "
    "index (fewer HNSW links, IVF, IVF-PQ codes) where the first does not fit [no limit].",
)  # fmt: skip
@click.option("--nprobe", type=click.IntRange(min=1),
              help="IVF cells a query visits, not tuned to --target-recall.")  # fmt: skip
@click.option("--ef-search", type=click.IntRange(min=1),
              help="HNSW candidates a query keeps, not tuned to --target-recall.")  # fmt: skip
@click.option(
    "--shard-size", default=16_384, show_default=True, type=click.IntRange(min=1),
    help="Items per shard file (a stopped build resumes at the first missing shard).",
)  # fmt: skip
@batch_size_option
@workers_option
@device_option
@progress_option
@click.option(
    "--dist-timeout", type=FiniteFloat(min=1), default=1800, show_default=True,
    help="Under torchrun: seconds a process waits for the others (the first to finish "
    "waits for the last one's last shard) before it fails.",
)  # fmt: skip
def build(checkpoint: Path, sources: tuple[Path, ...], dataset: str | None, split: str,
          data_dir: Path | None, limit: int | None, out: Path, resume: bool, backend: str,
          dtype: str, target_recall: float | None, memory_budget: float | None,
          nprobe: int | None, ef_search: int | None, shard_size: int, batch_size: int,
          workers: int | None, device: str, progress: bool,
          dist_timeout: float) -> None:  # fmt: skip
    """Embed image files and folders (SOURCES), or a data set's split, with CHECKPOINT's
    model into a new index folder.

    Under `torchrun --nproc-per-node N -m cnnkit index build ...`, N processes (on one
    machine or several sharing the --out folder) embed a share of the shards each, and
    the first writes the index and prints (docs/search.md).
    """
    from cnnkit.search import BuildSettings, build_index, dataset_collection, file_collection

    if bool(sources) == (dataset is not None):
        raise click.UsageError("give image files or folders, or --dataset, not both")
    if target_recall is not None and (nprobe or ef_search):
        raise click.UsageError("give --target-recall, or a setting (--nprobe, --ef-search)")
    settings = BuildSettings(
        backend=backend, target_recall=target_recall or DEFAULT_TARGET_RECALL,
        memory_budget_mb=memory_budget, nprobe=nprobe, ef_search=ef_search, dtype=dtype,
        shard_size=shard_size, batch_size=batch_size, workers=workers, device=device,
        progress=progress, resume=resume, dist_timeout=dist_timeout,
    )  # fmt: skip

    def collect(run):
        if dataset is not None:
            return dataset_collection(dataset, split, run, limit, data_dir)
        return file_collection(list(sources), limit)

    result = build_index(checkpoint, out, collect, settings)
    if result is not None:  # None: a torchrun process that does not write the index
        show_build(result, "indexed")


def show_build(result, verb: str) -> None:
    resumed = f", {result.resumed_shards} shards kept from before" if result.resumed_shards else ""
    click.echo(
        f"{verb} {result.embedded:,} images in {result.seconds:.1f} s "
        f"({result.images_per_second:,.0f} img/s{resumed}); {result.path} holds "
        f"{result.count:,} items; backend {result.backend.name}"
        + "".join(f" {k}={v}" for k, v in result.backend.params.items())
    )
    recall, target = result.backend.recall_at_10, result.backend.target_recall
    if recall is not None:
        tuned = f" (target {target:.3f})" if target is not None else ""
        click.echo(f"recall@10 against exact search: {recall:.3f}{tuned}")
    if result.backend.short_of_target:
        click.echo(
            f"cnnkit: warning: recall@10 {recall:.3f} is below the target {target:.3f}, "
            "the most this backend reached (a larger --memory-budget allows another)",
            err=True,
        )
    if result.problems:
        shown = "; ".join(result.problems[:3])
        click.echo(
            f"cnnkit: warning: skipped {len(result.problems):,} unreadable: {shown}", err=True
        )


@index.command()
@click.argument("index_path", metavar="INDEX", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@batch_size_option
@workers_option
@device_option
@progress_option
def add(index_path: Path, images: tuple[Path, ...], batch_size: int, workers: int | None,
        device: str, progress: bool) -> None:  # fmt: skip
    """Embed IMAGES (files or folders) not yet in INDEX and add them; the rest stays."""
    from cnnkit.search import BuildSettings, add_to_index

    settings = BuildSettings(
        batch_size=batch_size, workers=workers, device=device, progress=progress
    )
    show_build(add_to_index(index_path, list(images), settings), "added")


@index.command()
@click.argument("index_path", metavar="INDEX", type=click.Path(path_type=Path))
@click.argument("items", nargs=-1, required=True)
def remove(index_path: Path, items: tuple[str, ...]) -> None:
    """Remove ITEMS from INDEX: file paths, folders (all items in them), or data-set
    items as listed (mnist/train/17)."""
    from cnnkit.search import remove_from_index

    result = remove_from_index(index_path, list(items))
    click.echo(f"removed {result.removed:,} items; {result.path} holds {result.count:,}")


@index.command()
@click.argument("index_path", metavar="INDEX", type=click.Path(path_type=Path))
@format_option
def info(index_path: Path, fmt: str) -> None:
    """The manifest of INDEX and its counts, after checking every file."""
    from cnnkit.search import index_info

    result = index_info(index_path)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    rows = [
        (k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v)
        for k, v in result.manifest.items()
        if k not in ("classes", "backend")
    ]
    backend = result.manifest["backend"]
    rows.append(
        (
            "backend",
            " ".join([backend["name"], *(f"{k}={v}" for k, v in backend["params"].items())]),
        )
    )
    if backend["recall_at_10"] is not None:
        rows.append(("recall@10", f"{backend['recall_at_10']:.3f} against exact search"))
    if backend["target_recall"] is not None:
        rows.append(("target recall@10", f"{backend['target_recall']:.3f}"))
    rows += [("classes", ", ".join(result.manifest["classes"])), ("shards", f"{result.shards:,}")]
    rows += [("bytes", f"{result.bytes:,}"), ("items", f"{result.items:,}")]
    click.echo(tabulate(rows, tablefmt="plain"))
    labels = sorted(result.labels.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = [(k or "(none)", v) for k, v in labels]
    click.echo("\n" + tabulate(rows, ["label", "items"], intfmt=("", ",")))
