"""``cnnkit search query|class|dupes|eval``: search an index, score retrieval."""

import json
import math
from pathlib import Path

import click
from tabulate import tabulate

from cnnkit.cli.options import FiniteFloat, checkpoint_argument, data_dir_option, progress_option
from cnnkit.cli.search_index import device_option, format_option
from cnnkit.config import RETRIEVAL_METHODS
from cnnkit.search.backends import BACKENDS
from cnnkit.search.knob import settings_given

index_argument = click.argument("index_path", metavar="INDEX", type=click.Path(path_type=Path))
top_option = click.option(
    "--top", default=10, show_default=True, type=click.IntRange(min=1),
    help="How many items to list per query.",
)  # fmt: skip
backend_option = click.option(
    "--backend", type=click.Choice(tuple(BACKENDS)),
    help=", ".join(name for name, b in BACKENDS.items() if b.file_prefix is None)
    + ", or the index's own backend (its FAISS kind) [the index's].",
)  # fmt: skip


@click.group()
def search() -> None:
    """Search an index by example or by class, find near-duplicates, score retrieval."""


SCORE_FORMAT = ".3f"  # similarities and probabilities, as the results page shows them


def hit_table(hits, score_name: str) -> str:
    rows = [[h.rank, h.score, h.record.label or "", h.record.source] for h in hits]
    return tabulate(rows, ["#", score_name, "label", "item"], floatfmt=("g", SCORE_FORMAT))


def at_least(similarity: float) -> str:
    """``similarity`` rounded down, so that ">=" stays true of what it shows."""
    return f"{math.floor(similarity * 1000) / 1000:{SCORE_FORMAT}}"


@search.command()
@index_argument
@click.argument("queries", metavar="QUERY_IMAGE...", nargs=-1, required=True,
                type=click.Path(path_type=Path))  # fmt: skip
@top_option
@format_option
@click.option(
    "--out", type=click.Path(path_type=Path),
    help="Also write an HTML page of thumbnails here (and a PNG grid beside it).",
)  # fmt: skip
@click.option(
    "--checkpoint", type=click.Path(path_type=Path),
    help="Embed the queries with this checkpoint (same weights) [the index's].",
)  # fmt: skip
@backend_option
@click.option("--nprobe", type=click.IntRange(min=1),
              help="IVF cells these queries visit [as the index was tuned].")  # fmt: skip
@click.option("--ef-search", type=click.IntRange(min=1),
              help="HNSW candidates these queries keep [as the index was tuned].")  # fmt: skip
def query(index_path: Path, queries: tuple[Path, ...], top: int, fmt: str, out: Path | None,
          checkpoint: Path | None, backend: str | None, nprobe: int | None,
          ef_search: int | None) -> None:  # fmt: skip
    """The items of INDEX nearest to each QUERY_IMAGE, by cosine similarity."""
    from cnnkit.search import open_index

    index = open_index(index_path)
    settings = settings_given(nprobe, ef_search)
    results = index.query_files(
        list(queries), top, checkpoint=checkpoint, backend=backend, settings=settings
    )
    if fmt == "json":
        rows = [
            {"query": str(q), "hits": [h.to_dict() for h in hits]}
            for q, hits in zip(queries, results, strict=True)
        ]
        click.echo(json.dumps(rows, indent=1))
    else:
        for q, hits in zip(queries, results, strict=True):
            click.echo(f"query {q}:")
            click.echo(hit_table(hits, "similarity") + "\n")
    if out is not None:
        from cnnkit.search.page import write_results

        page, grid = write_results(index, list(queries), results, out)
        click.echo(f"wrote {page} and {grid}", err=fmt == "json")


@search.command("class")
@index_argument
@click.argument("name")
@top_option
@format_option
def by_class(index_path: Path, name: str, top: int, fmt: str) -> None:
    """The items of INDEX that the model finds most probably of class NAME."""
    from cnnkit.search import open_index

    hits = open_index(index_path).by_class(name, top)
    if fmt == "json":
        click.echo(json.dumps([h.to_dict("probability") for h in hits], indent=1))
    else:
        click.echo(hit_table(hits, "probability"))


@search.command()
@index_argument
@click.option(
    "--by", type=click.Choice(("tiny", "features")), default="tiny", show_default=True,
    help="Compare 8x8 tiny images (and their mirror images), or the model's features.",
)  # fmt: skip
@click.option(
    "--threshold", type=FiniteFloat(-1, 1),
    help="Least cosine similarity of near-duplicates [tiny 0.95, features 0.995: precision "
    "0.97 on CIFAR-10 copies, docs/search.md].",
)  # fmt: skip
@format_option
def dupes(index_path: Path, by: str, threshold: float | None, fmt: str) -> None:
    """Groups of near-duplicate items in INDEX."""
    from cnnkit.search import find_dupes, open_index

    groups = find_dupes(open_index(index_path), threshold, by)
    if fmt == "json":
        rows = [
            {"similarity": g.similarity, "items": [r.to_json() for r in g.records]} for g in groups
        ]
        click.echo(json.dumps(rows, indent=1))
        return
    for number, group in enumerate(groups, 1):
        click.echo(
            f"group {number:,}: {len(group.records):,} items, "
            f"similarity >= {at_least(group.similarity)}"
        )
        for record in group.records:
            click.echo(f"  {record.source}")
    click.echo(f"{len(groups):,} groups, {sum(len(g.records) for g in groups):,} items")


@search.command("eval")
@checkpoint_argument()
@click.option("--dataset", required=True, help="Data set whose labels say what is relevant.")
@click.option("--queries", type=click.Choice(("train", "test")), default="test",
              show_default=True, help="Split whose images are the queries.")  # fmt: skip
@click.option("--collection", type=click.Choice(("train", "test")), default="train",
              show_default=True, help="Split whose images are searched.")  # fmt: skip
@click.option(
    "--methods", default=",".join(RETRIEVAL_METHODS), show_default=True,
    help="Descriptors to compare, from " + ", ".join(RETRIEVAL_METHODS) + " (hog: [classic]).",
)  # fmt: skip
@click.option(
    "--whiten", is_flag=True, help="Also each with PCA whitening learned on the collection."
)
@click.option("--query-limit", type=click.IntRange(min=1), help="The first N queries only [all].")
@click.option(
    "--collection-limit", type=click.IntRange(min=1), help="The first N items only [all]."
)
@click.option("--png", type=click.Path(path_type=Path), help="Also write a bar chart PNG here.")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table",
              show_default=True, help="Output format.")  # fmt: skip
@data_dir_option
@device_option
@progress_option
def evaluate(checkpoint: Path, dataset: str, queries: str, collection: str, methods: str,
             whiten: bool, query_limit: int | None, collection_limit: int | None,
             png: Path | None, fmt: str, data_dir: Path | None, device: str,
             progress: bool) -> None:  # fmt: skip
    """Retrieval quality of raw pixels, HOG and CHECKPOINT's features: mAP, mAP@100,
    P@1, P@10, recall@100, with one split's images as queries and labels as relevance."""
    from cnnkit.search import EvalSettings, evaluate_retrieval

    settings = EvalSettings(
        dataset, queries, collection, tuple(m.strip() for m in methods.split(",") if m.strip()),
        whiten, query_limit, collection_limit, data_dir, device, progress,
    )  # fmt: skip
    result = evaluate_retrieval(checkpoint, settings)
    if fmt == "json":
        click.echo(json.dumps([m.to_dict() for m in result.methods], indent=1))
    else:
        click.echo(
            f"{dataset}: {result.queries:,} {queries} queries, {result.collection:,} "
            f"{collection} items, relevant = same label"
        )
        rows = [
            [m.method, m.dimensions, m.map, m.map_at_100, m.p_at_1, m.p_at_10, m.recall_at_100,
             m.seconds]
            for m in result.methods
        ]  # fmt: skip
        headers = ["method", "dims", "mAP", "mAP@100", "P@1", "P@10", "recall@100", "s"]
        floats = ("g", "g", *[".4f"] * 5, ".1f")
        click.echo(tabulate(rows, headers, floatfmt=floats, intfmt=("", ",")))
    if png is not None:
        from cnnkit.search.retrieval import bar_chart_png

        click.echo(f"wrote {bar_chart_png(result, png)}", err=fmt == "json")
