"""What the model process computes with a search index (``cnnkit serve --index``):
the nearest items to uploaded images, the items most probably of a class, and an
item's thumbnail, one item at a time (``worker`` answers each item with its own result
or error). ``worker`` runs it beside ``ServedModel``.

The index is opened with ``cnnkit.search.open_index`` and queried through its public
API only; queries are embedded with the served checkpoint, which must have the
index's weights (a ``FingerprintError`` at start-up otherwise). Hits are sent as plain
dicts: the item's id, label and file name, never its path on the server.
"""

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.errors import ImageError, IndexFileError, NotFoundError, UnknownNameError
from cnnkit.search import Hit, SearchIndex, open_index
from cnnkit.serve.uploads import Upload
from cnnkit.serve.wire import Operation

log = logging.getLogger(__name__)
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

    def search(self, item: tuple[Upload, int]) -> list[dict]:
        """The ``top`` nearest items to one (upload, top); an ``ImageError`` when the
        upload cannot be read."""
        upload, top = item
        (hits,) = self.index.query_files(
            [io.BytesIO(upload.data)], top, [upload.name], self.checkpoint
        )
        return [hit_json(hit, "similarity") for hit in hits]

    def by_class(self, item: tuple[str, int]) -> list[dict]:
        """The ``top`` items the model finds most probably of one (class, top)."""
        name, top = item
        try:
            hits = self.index.by_class(name, top)
        except UnknownNameError as error:
            raise NotFoundError(str(error)) from None
        return [hit_json(hit, "probability") for hit in hits]

    def thumbnail(self, item_id: int) -> bytes:
        """A PNG of the item; a ``NotFoundError`` for an id the index does not hold, or
        an item whose image file is gone or unreadable (its path stays in the log)."""
        try:
            self.index.record(item_id)
        except IndexFileError:
            raise NotFoundError(f"no item {item_id} in the index") from None
        try:
            return self.index.thumbnail(item_id, THUMBNAIL_SIZE)
        except ImageError as error:
            log.warning("thumbnail of item %d: %s", item_id, error)
            raise NotFoundError(
                f"item {item_id}: its image is missing or unreadable on the server"
            ) from None

    def describe(self) -> dict[str, Any]:
        manifest = self.index.manifest
        return {"items": len(self.index), "collection": manifest.collection}
