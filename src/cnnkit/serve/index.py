"""What the model process computes with a search index (``cnnkit serve --index``):
the nearest items to uploaded images, the items most probably of a class, and an
item's thumbnail. ``worker`` runs it beside ``ServedModel``.

The index is opened with ``cnnkit.search.open_index`` and queried through its public
API only; queries are embedded with the served checkpoint, which must have the
index's weights (a ``FingerprintError`` at start-up otherwise). Hits are sent as plain
dicts: the item's id, label and file name, never its path on the server.
"""

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.errors import ImageError, IndexFileError, NotFoundError, UnknownNameError
from cnnkit.search import Hit, SearchIndex, open_index
from cnnkit.serve.uploads import Upload
from cnnkit.serve.wire import Operation

THUMBNAIL_SIZE = 96  # pixels on the longer side, as cnnkit search's result pages show them


def hit_json(hit: Hit, score_name: str) -> dict[str, Any]:
    record = hit.record
    return {
        "rank": hit.rank,
        score_name: round(hit.score, 6),
        "id": record.id,
        "label": record.label,
        "name": Path(record.source).name,  # the file's name, or "17" of mnist/train/17
        "thumbnail": Operation.THUMBNAIL.path.format(item_id=record.id),
    }


@dataclass(frozen=True)
class ServedIndex:
    index: SearchIndex
    checkpoint: Path  # the served run's: queries are embedded with it

    @classmethod
    def open(cls, path: Path, checkpoint: Path, device: str) -> "ServedIndex":
        """The index at ``path``, checked against ``checkpoint``'s weights now rather
        than at the first query."""
        index = open_index(path)
        index.embedder(checkpoint, device)
        return cls(index, checkpoint)

    def search(self, items: list[tuple[Upload, int]]) -> list[list[dict] | ImageError]:
        """The ``top`` nearest items to each (upload, top), or why it could not be read."""
        results: list[list[dict] | ImageError] = []
        for upload, top in items:
            try:
                (hits,) = self.index.query_files(
                    [io.BytesIO(upload.data)], top, [upload.name], self.checkpoint
                )
            except ImageError as error:
                results.append(error)
                continue
            results.append([hit_json(hit, "similarity") for hit in hits])
        return results

    def by_class(self, items: list[tuple[str, int]]) -> list[list[dict] | NotFoundError]:
        """The ``top`` items the model finds most probably of each (class, top)."""
        results: list[list[dict] | NotFoundError] = []
        for name, top in items:
            try:
                hits = self.index.by_class(name, top)
            except UnknownNameError as error:
                results.append(NotFoundError(str(error)))
                continue
            results.append([hit_json(hit, "probability") for hit in hits])
        return results

    def thumbnails(self, item_ids: list[int]) -> list[bytes | NotFoundError]:
        """A PNG of each item, or a ``NotFoundError`` for an id the index does not hold."""
        results: list[bytes | NotFoundError] = []
        for item_id in item_ids:
            try:
                self.index.record(item_id)
            except IndexFileError:
                results.append(NotFoundError(f"no item {item_id} in the index"))
                continue
            results.append(self.index.thumbnail(item_id, THUMBNAIL_SIZE))
        return results

    def describe(self) -> dict[str, Any]:
        manifest = self.index.manifest
        return {"items": len(self.index), "collection": manifest.collection}
