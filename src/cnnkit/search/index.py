"""``open_index``: a search index folder, checked, ready to answer queries.

The folder (docs/search.md): ``manifest.json``; per shard, ``shard-NNNNN.vectors.npy``
(L2-normalised features, float32 or float16), ``shard-NNNNN.scores.npy`` (the model's
class log-probabilities, float32), ``shard-NNNNN.tiny.npy`` (8x8 tiny images, uint8)
and ``shard-NNNNN.records.jsonl`` (one item per line: id, path or data-set image,
label); and with a backend that stores one (FAISS's kinds), its file,
``faiss-NNNNN.index``. Opening checks every file against the manifest (size,
SHA-256, array shape and dtype, record count), so that a truncated, damaged or
replaced file is one clear ``IndexFileError`` and not a wrong answer.

Queries by example embed with the manifest's checkpoint, or another whose weights
have the same fingerprint; any other checkpoint is refused (``FingerprintError``).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from tabulate import tabulate

from cnnkit.config import is_count
from cnnkit.data import load_dataset
from cnnkit.data.held import HeldImage
from cnnkit.data.image_files import png_data_uri, read_image
from cnnkit.errors import CnnkitError, ConfigError, IndexFileError, UnknownNameError
from cnnkit.runs import Run, load_run
from cnnkit.search.backends import EXACT, Searcher, get_backend
from cnnkit.search.collection import SPLITS, Record
from cnnkit.search.embed import Embedder, Embedding, check_fingerprint
from cnnkit.search.manifest import Manifest
from cnnkit.search.store import (
    check_log_probabilities,
    check_tiny_width,
    check_unit_rows,
    read_array,
    read_manifest,
    read_records,
)
from cnnkit.search.thumbnails import thumbnail_png


@dataclass(frozen=True)
class Hit:
    rank: int  # 1 = best
    score: float  # cosine similarity (query), or probability of the class (by_class)
    record: Record

    def to_dict(self, score_name: str = "similarity") -> dict:
        return {"rank": self.rank, score_name: round(self.score, 6), **self.record.to_json()}

    @property
    def path(self) -> str:
        """The item's file, or its data-set image ("mnist/test/17")."""
        return self.record.source

    @property
    def label(self) -> str | None:
        """The item's class, where its folder or data set gave one."""
        return self.record.label

    @property
    def similarity(self) -> float:
        """Cosine similarity to the query (a query by example's score)."""
        return self.score


class Neighbours(list[Hit]):
    """The hits of one query, best first; prints as a table (Jupyter: as HTML, with each
    item's picture where the index that found them is known)."""

    def __init__(
        self,
        hits: Iterable[Hit] = (),
        score_name: str = "similarity",
        query: str | None = None,
        thumbnail: Callable[[int], bytes] | None = None,
    ) -> None:
        super().__init__(hits)
        self.score_name = score_name  # what a hit's score is: similarity or probability
        self.query = query  # the query image's name, where it has one
        self.thumbnail = thumbnail  # an item's PNG by its id (``SearchIndex.thumbnail``)

    def table(self, style: str = "simple") -> str:
        rows = [(hit.rank, f"{hit.score:.3f}", hit.label or "", hit.path) for hit in self]
        headers = ["rank", self.score_name, "label", "path"]
        return tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True)

    def __repr__(self) -> str:
        return self.table() if self.query is None else f"{self.query}:\n{self.table()}"

    def _repr_html_(self) -> str:
        heading = "" if self.query is None else f"<p>{escape(self.query)}</p>"
        thumbnail = self.thumbnail
        if thumbnail is None:
            return heading + self.table("html")
        header = ("rank", "image", self.score_name, "label", "path")
        rows = "".join(
            f"<tr><td>{hit.rank}</td><td>{picture(hit, thumbnail)}</td><td>{hit.score:.3f}</td>"
            f"<td>{escape(hit.label or '')}</td><td>{escape(hit.path)}</td></tr>"
            for hit in self
        )
        cells = "".join(f"<th>{name}</th>" for name in header)
        return f"{heading}<table><thead><tr>{cells}</tr></thead><tbody>{rows}</tbody></table>"


def picture(hit: Hit, thumbnail: Callable[[int], bytes]) -> str:
    """The hit's thumbnail as an ``<img>``; the reason instead where its file can no
    longer be read (moved or changed since the index was built)."""
    try:
        png = thumbnail(hit.record.id)
    except CnnkitError as error:
        return f"<small>{escape(str(error))}</small>"
    return f'<img src="{png_data_uri(png)}" alt="{escape(hit.path, quote=True)}">'


class Searches(list[Neighbours]):
    """The neighbours of each query of a list or a batch, in order."""

    def __repr__(self) -> str:
        return "\n\n".join(map(repr, self))

    def _repr_html_(self) -> str:
        return "".join(neighbours._repr_html_() for neighbours in self)


class SearchIndex:
    """An opened index: ``query`` by features, ``query_files`` by example images,
    ``by_class`` by the model's probability, ``thumbnail`` of an item."""

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        vectors: list[np.ndarray],
        scores: list[np.ndarray],
        tiny: list[np.ndarray],
        records: list[Record],
        searcher: Searcher,
        sources: list[tuple[int, Path]] | None = None,
    ) -> None:
        self.path, self.manifest = path, manifest
        self.vectors, self.scores, self.tiny, self.records = vectors, scores, tiny, records
        self.searcher = searcher  # the manifest's backend over the vectors
        # Each shard's records file, after the position one past its last record.
        self.sources = sources or [(len(records), path)]
        self.positions = {record.id: i for i, record in enumerate(records)}
        self._embedders: dict[Path, Embedder] = {}
        self._datasets: dict[tuple[str, str], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.manifest.classes

    def embeddings(self) -> list[Embedding]:
        """Each shard's stored arrays (memory-mapped)."""
        parts = zip(self.vectors, self.scores, self.tiny, strict=True)
        return [Embedding(*arrays) for arrays in parts]

    def record(self, item_id: int) -> Record:
        if item_id not in self.positions:
            raise IndexFileError(f"{self.path}: no item {item_id}")
        return self.records[self.positions[item_id]]

    def query(
        self,
        features: np.ndarray,
        top: int = 10,
        backend: str | None = None,
        settings: Mapping[str, int] | None = None,
    ) -> list[Neighbours]:
        """The ``top`` nearest items to each row of ``features`` (Q, D), best first, by
        cosine similarity; ``backend`` the index's own, or one that stores no file
        ("exact") [the index's]; ``settings`` its search-time setting for these queries
        (``{"nprobe": 64}``, ``{"ef_search": 256}``) [as the build tuned it]."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.manifest.feature_size:
            raise ConfigError(
                f"query features of shape {features.shape}; {self.path} holds "
                f"{self.manifest.feature_size}-dimensional vectors"
            )
        if not np.isfinite(features).all():
            raise ConfigError("query features that are not finite (NaN or infinite)")
        hits = []
        scores, positions = self.search(features, top, backend, settings)
        if not (np.isfinite(scores).all() and (positions < len(self.records)).all()):
            source = self.manifest.backend.file
            raise IndexFileError(
                f"{self.path / source.name if source else self.path}: damaged (a search gave "
                "a similarity that is not a number or an item it does not hold)"
            )
        for row_scores, row_positions in zip(scores, positions, strict=True):
            found = [(s, p) for s, p in zip(row_scores, row_positions, strict=True) if p >= 0]
            hits.append(
                Neighbours(
                    (Hit(r, float(s), self.records[p]) for r, (s, p) in enumerate(found, 1)),
                    thumbnail=self.thumbnail,
                )
            )
        return hits

    def search(
        self,
        features: np.ndarray,
        k: int,
        backend: str | None = None,
        settings: Mapping[str, int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores and positions (Q, k) of the k nearest rows, as the backend gives them:
        the index's own (with ``settings`` for its search-time setting, where given),
        or another built now where it stores no file (exact)."""
        own = self.manifest.backend.name
        name = backend or own
        if settings:
            return self.searcher_with(settings, name).search(features, k)
        if name == own and len(self):
            return self.searcher.search(features, k)
        chosen = get_backend(name) if len(self) else EXACT
        if chosen.file_prefix is not None:
            raise ConfigError(
                f"{self.path}: has no {name} FAISS index (backend: {own}); "
                f"query with --backend {EXACT.name}"
            )
        params = chosen.params(len(self), self.manifest.feature_size, {})
        return chosen.build(self.vectors, params).search(features, k)

    def searcher_with(self, settings: Mapping[str, int], backend: str) -> Searcher:
        """The index's searcher with a search-time setting other than the build's."""
        own = self.manifest.backend
        knob = get_backend(own.name).knob(own.params) if backend == own.name else None
        for name, value in settings.items():
            if knob is None or name != knob.name:
                has = f"its setting is {knob.name}" if knob else "it has no search-time setting"
                raise ConfigError(f"{name}: {self.path} searches with {backend}; {has}")
            if not is_count(value):
                raise ConfigError(f"{name}={value!r}: expected a whole number, 1 or more")
        return self.searcher.with_settings(settings)

    def by_class(self, name: str, top: int = 10) -> Neighbours:
        """The ``top`` items the model finds most probably of class ``name``."""
        if name not in self.classes:
            raise UnknownNameError.of("class", name, self.classes)
        column = self.classes.index(name)
        probs: np.ndarray = (
            np.concatenate([np.exp(s[:, column]) for s in self.scores])
            if self.scores
            else np.zeros(0)
        )
        order = np.argsort(-np.asarray(probs), kind="stable")[:top]
        hits = (Hit(rank, float(probs[p]), self.records[p]) for rank, p in enumerate(order, 1))
        return Neighbours(hits, score_name="probability", thumbnail=self.thumbnail)

    def embedder(self, checkpoint: Path | None = None, device: str = "auto") -> Embedder:
        """The embedder of the manifest's checkpoint, or of ``checkpoint`` if its weights
        are the same; loaded once."""
        path = Path(checkpoint or self.manifest.checkpoint)
        if path not in self._embedders:
            run = load_run(path, device)
            check_fingerprint(run, self.manifest.weights_sha256, str(self.path))
            self._embedders[path] = Embedder(run)
        return self._embedders[path]

    def embed_files(
        self,
        files: list[Path | BinaryIO],
        names: list[str] | None = None,
        checkpoint: Path | None = None,
    ) -> np.ndarray:
        """Unit-length features (Q, D) of image files (paths, or open binary files
        called ``names`` in messages), prepared as the model's training images."""
        embedder = self.embedder(checkpoint)
        run: Run = embedder.run
        names = names or [str(f) for f in files]
        images = [run.read_file(f, n) for f, n in zip(files, names, strict=True)]
        return embedder(torch.stack(images)).vectors

    def query_files(
        self,
        files: list[Path | BinaryIO],
        top: int = 10,
        names: list[str] | None = None,
        checkpoint: Path | None = None,
        backend: str | None = None,
        settings: Mapping[str, int] | None = None,
    ) -> list[Neighbours]:
        features = self.embed_files(files, names, checkpoint)
        return self.query(features, top, backend, settings)

    def query_images(
        self,
        images: HeldImage | Sequence[HeldImage],
        top: int = 10,
        settings: Mapping[str, int] | None = None,
    ) -> Neighbours | Searches:
        """The ``top`` nearest items to what a user holds (``Run.read_images``: paths,
        PIL images, arrays, tensors), embedded with the manifest's checkpoint: one
        ``Neighbours`` for one image, ``Searches`` for a list or a batch."""
        embedder = self.embedder()
        held = embedder.run.read_images(images)
        found = self.query(embedder(held.images).vectors, top, settings=settings)
        for neighbours, name in zip(found, held.names, strict=True):
            neighbours.query = name
        return found[0] if held.single else Searches(found)

    def image(self, item_id: int) -> torch.Tensor:
        """The item's pixels as stored: uint8 (C, H, W), the file's or the data set's."""
        record = self.record(item_id)
        if record.path is not None:
            return read_image(Path(record.path), 3)
        key = (str(record.dataset), str(record.split))
        if key not in self._datasets:
            self._datasets[key] = load_dataset(key[0])[SPLITS.index(key[1])].images
        images, index = self._datasets[key], int(str(record.index))
        if index >= len(images):
            source = next(file for end, file in self.sources if self.positions[item_id] < end)
            raise IndexFileError(
                f"{source}: damaged record: item {item_id}'s index is {index:,}, expected "
                f"an index below the {len(images):,} images of {key[0]} {key[1]}"
            )
        return images[index]

    def thumbnail(self, item_id: int, size: int = 96) -> bytes:
        """A PNG of the item, its longer side ``size`` pixels."""
        return thumbnail_png(self.image(item_id), size)


def open_index(path: Path) -> SearchIndex:
    """The index in folder ``path``, every file checked against its manifest: sizes and
    checksums, array shapes and dtypes, vectors finite and of unit length, scores
    log-probabilities, tiny images of one width, every record's fields, and the
    backend's file of the manifest's kind and size."""
    path = Path(path)
    manifest = read_manifest(path)
    vectors, scores, tiny, records, sources = [], [], [], [], []
    tiny_width = None
    for shard in manifest.shards:
        files = {part: entry.check(path) for part, entry in shard.files.items()}
        dim, classes = manifest.feature_size, len(manifest.classes)
        vectors.append(read_array(files["vectors"], shard.count, dim, manifest.dtype))
        check_unit_rows(vectors[-1], files["vectors"])
        scores.append(read_array(files["scores"], shard.count, classes, "float32"))
        check_log_probabilities(scores[-1], files["scores"])
        tiny.append(read_array(files["tiny"], shard.count, None, "uint8"))
        tiny_width = check_tiny_width(tiny[-1], files["tiny"], tiny_width)
        records += read_records(files["records"], shard.count)
        sources.append((len(records), files["records"]))
    ids = [record.id for record in records]
    if len(set(ids)) != len(ids) or (ids and max(ids) >= manifest.next_id):
        raise IndexFileError(f"{path}: damaged records (ids repeat or exceed next_id)")
    backend = manifest.backend
    source = path / backend.file.name if backend.file else path
    data = backend.file.check(path).read_bytes() if backend.file else None
    searcher = get_backend(backend.name).load(vectors, data, backend.params, str(source))
    if len(searcher) != manifest.count:
        raise IndexFileError(
            f"{source}: holds {len(searcher)} vectors, the manifest says {manifest.count}"
        )
    dim = getattr(searcher, "dim", manifest.feature_size)  # a stored file's (FAISS's)
    if dim != manifest.feature_size:
        raise IndexFileError(
            f"{source}: holds {dim}-dimensional vectors, the manifest says "
            f"{manifest.feature_size} (feature_size)"
        )
    return SearchIndex(path, manifest, vectors, scores, tiny, records, searcher, sources)
