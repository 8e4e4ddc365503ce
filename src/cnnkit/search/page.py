"""The results page of ``search query --out results.html``: each query and its
neighbours as thumbnails with rank, similarity, label and source, self-contained
(PNG data URIs, no scripts, nothing fetched), and the same as one PNG grid beside it.
"""

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.data.image_files import png_data_uri, read_image
from cnnkit.errors import ConfigError
from cnnkit.files import atomic_write_bytes, atomic_write_text
from cnnkit.search.index import Hit, SearchIndex
from cnnkit.search.thumbnails import grid_png, thumbnail_png

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
section { margin-bottom: 28px; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; width: 110px; font-size: 12px; overflow-wrap: anywhere; }
figure.query { border-right: 2px solid #a00; padding-right: 10px; }
img { width: 96px; height: 96px; object-fit: contain; background: #eee; display: block; }
"""


@dataclass(frozen=True)
class QueryResult:
    name: str  # the query file's name
    image: torch.Tensor  # uint8 (C, H, W) as read from the file
    hits: list[Hit]


def figure(png: bytes, lines: list[str], css: str = "") -> str:
    caption = "<br>".join(html.escape(line) for line in lines)
    alt = html.escape(lines[0])
    return (
        f'<figure class="{css}"><img src="{png_data_uri(png)}" alt="{alt}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def results_html(index: SearchIndex, results: list[QueryResult], grid_name: str) -> str:
    sections = []
    for result in results:
        cells = [figure(thumbnail_png(result.image), ["query", Path(result.name).name], "query")]
        for hit in result.hits:
            lines = [f"#{hit.rank}  {hit.score:.3f}", hit.record.label or "", hit.record.source]
            cells.append(figure(index.thumbnail(hit.record.id), [Path(lines[2]).name, *lines[:2]]))
        sections.append(
            f"<section><h2>{html.escape(result.name)}</h2>"
            f'<div class="row">{"".join(cells)}</div></section>'
        )
    manifest = index.manifest
    title = f"search results: {index.path.name}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{len(index):,} items ({html.escape(manifest.collection)})"
        f", model {html.escape(manifest.model)}, cosine similarity of penultimate-layer "
        f"features; the same as one image: {html.escape(grid_name)}</p>"
        f"{''.join(sections)}</body></html>\n"
    )


def write_results(
    index: SearchIndex, files: list[Path], hits: Sequence[Sequence[Hit]], out: Path
) -> tuple[Path, Path]:
    """The page of the queries ``files`` and their ``hits`` at ``out``, and the grid
    beside it (``out`` with the suffix ``.png``); returns both paths."""
    out = Path(out)
    grid_path = out.with_suffix(".png")
    if grid_path == out:
        raise ConfigError(f"{out}: name the HTML page (results.html); the grid goes beside it")
    results = [
        QueryResult(str(f), read_image(f, 3), list(h)) for f, h in zip(files, hits, strict=True)
    ]
    rows = [
        [(r.image, "query")] + [(index.image(h.record.id), f"{h.score:.3f}") for h in r.hits]
        for r in results
    ]
    atomic_write_bytes(grid_path, grid_png(rows))
    atomic_write_text(out, results_html(index, results, grid_path.name))
    return out, grid_path
