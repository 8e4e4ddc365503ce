"""The manifest of a search index: what the folder holds and how to check it.

``manifest.json`` is written last, atomically, after every file it names: a folder
with a manifest is a complete index, one without is a build in progress (or killed).
It records the format version, the feature size, the item count, the metric, the
checkpoint the vectors came from (path, model name, SHA-256 of its weights), the
model's classes (for ``search class``), the backend (``search.backends``) with its
settings, its file if any, the recall@10 it was tuned to and the one it measured, and
for each shard its files with their size and SHA-256. ``Manifest.from_dict`` reads
every field by its rule (``MANIFEST``, a ``files.Schema``) and checks the fields that
must agree, so that a damaged or hand-edited manifest is one clear ``IndexFileError``
naming the field.
"""

import hashlib
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cnnkit.config import VECTOR_DTYPES
from cnnkit.errors import IndexFileError
from cnnkit.files import (
    SHA256,
    Integer,
    Invalid,
    Items,
    Mapping,
    Number,
    Optional,
    Schema,
    Text,
    invalid_error,
    shown_value,
)
from cnnkit.search.backends import BACKENDS, EXACT
from cnnkit.search.faiss_backend import PARAM_NAMES

FORMAT_NAME = "cnnkit-search-index"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
BUILD_STATE_NAME = "build.json"  # present only while a build is unfinished
METRIC = "cosine"  # vectors are L2-normalised: inner product = cosine similarity
SHARD_PARTS = ("vectors", "scores", "tiny", "records")  # records last: then a shard is whole
CHUNK = 1 << 20  # bytes hashed per read


def shard_file_names(number: int) -> dict[str, str]:
    """The files of shard ``number``: L2-normalised features (N, D), the model's class
    log-probabilities (N, K) in float32, tiny images (N, C * 64) in uint8, and one JSON
    record per item."""
    stem = f"shard-{number:05d}"
    names = {part: f"{stem}.{part}.npy" for part in SHARD_PARTS}
    return {**names, "records": f"{stem}.records.jsonl"}


def backend_file_name(prefix: str, generation: int) -> str:
    """A new name for each backend file written (``faiss-00000.index``), so that the
    manifest's stays in place until the manifest naming the new one has replaced it."""
    return f"{prefix}-{generation:05d}.index"


def next_generation(file: "FileEntry | None") -> int:
    """The number of the backend file to write after ``file`` (0 for the first)."""
    return int(file.name.rsplit("-", 1)[1].split(".")[0]) + 1 if file else 0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    name: str  # inside the index folder
    bytes: int
    sha256: str

    @classmethod
    def of(cls, folder: Path, name: str) -> "FileEntry":
        path = folder / name
        return cls(name, path.stat().st_size, file_sha256(path))

    def check(self, folder: Path) -> Path:
        """The file's path, or an ``IndexFileError`` if it is missing, of another size
        (truncated) or of other content than when the index was written."""
        path = folder / self.name
        if not path.is_file():
            raise IndexFileError(f"{path}: missing (the manifest lists it)")
        size = path.stat().st_size
        if size != self.bytes:
            state = "truncated" if size < self.bytes else "grown"
            raise IndexFileError(
                f"{path}: {state} ({size:,} bytes, the manifest says {self.bytes:,})"
            )
        if file_sha256(path) != self.sha256:
            raise IndexFileError(
                f"{path}: damaged or changed (SHA-256 differs from the manifest's)"
            )
        return path


@dataclass(frozen=True)
class Shard:
    number: int
    count: int
    files: dict[str, FileEntry]  # by part: vectors, scores, tiny, records


@dataclass(frozen=True)
class Backend:
    """Which backend an index has (``search.backends``), as the manifest records it."""

    name: str  # a key of search.backends.BACKENDS
    params: dict[str, int]  # its settings (FAISS: nlist, nprobe, m, ...); none for exact
    file: FileEntry | None  # its file (FAISS's index), for a backend that stores one
    recall_at_10: float | None  # against exact search on held-out queries, at build time
    # What its search-time setting (nprobe, ef_search) was tuned to reach (search.tune);
    # None: the settings as given (and in a manifest written before targets existed).
    target_recall: float | None = None

    @property
    def short_of_target(self) -> bool:
        return falls_short(self.recall_at_10, self.target_recall)


def falls_short(recall: float | None, target: float | None) -> bool:
    """Whether a measured recall is below the target it was tuned to (where both exist):
    the setting's most, or a memory budget that leaves compressed codes only, could not
    reach it."""
    return recall is not None and target is not None and recall < target


@dataclass(frozen=True)
class Manifest:
    feature_size: int
    count: int
    dtype: str  # of the vectors, one of VECTOR_DTYPES
    checkpoint: str  # absolute path of the checkpoint the vectors came from
    model: str  # its registry name
    weights_sha256: str  # runs' fingerprint of its state_dict (search.embed)
    classes: tuple[str, ...]  # the model's, for ``search class``
    collection: str  # what was embedded, for people: "mnist train", "files"
    next_id: int  # item ids are never reused, so that a removed id stays unknown
    shards: tuple[Shard, ...]
    backend: Backend = Backend(EXACT.name, {}, None, None, None)  # until a build chooses one
    format_version: int = FORMAT_VERSION
    metric: str = METRIC

    def with_shards(self, shards: list[Shard], next_id: int) -> "Manifest":
        return replace(
            self, shards=tuple(shards), count=sum(s.count for s in shards), next_id=next_id
        )

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["classes"] = list(self.classes)
        values["shards"] = [asdict(shard) for shard in self.shards]
        return {"format": FORMAT_NAME, **values}

    @classmethod
    def from_dict(cls, values: object, source: Path) -> "Manifest":
        """The manifest in ``values`` (as ``to_dict`` wrote it), every field read by its
        rule (``MANIFEST``) and the fields that must agree checked together."""
        if not isinstance(values, dict) or values.get("format") != FORMAT_NAME:
            raise IndexFileError(f"{source}: not a cnnkit search index manifest")
        version = values.get("format_version")
        if version != FORMAT_VERSION:
            shown = shown_value(version)
            raise IndexFileError(
                f"{source}: index format {shown} is not supported (this cnnkit reads "
                f"format {FORMAT_VERSION})"
            )
        manifest = MANIFEST.parse(
            {k: v for k, v in values.items() if k != "format"}, source, IndexFileError, "manifest"
        )
        manifest.check_agreement(source)
        return manifest

    def check_agreement(self, source: Path) -> None:
        def fail(where: str, value: object, expected: str) -> IndexFileError:
            return invalid_error(
                Invalid(expected, value, where), source, IndexFileError, "manifest"
            )

        total = sum(shard.count for shard in self.shards)
        if total != self.count:
            raise fail("count", self.count, f"the sum of the shards' counts ({total:,})")
        if self.next_id < self.count:
            raise fail("next_id", self.next_id, f"at least count ({self.count:,})")
        if len({shard.number for shard in self.shards}) != len(self.shards):
            raise fail("shards", [s.number for s in self.shards], "distinct shard numbers")
        for i, shard in enumerate(self.shards):
            for part, name in shard_file_names(shard.number).items():
                if shard.files[part].name != name:
                    raise fail(f"shards[{i}].files.{part}.name", shard.files[part].name, name)
        backend, prefix = self.backend, BACKENDS[self.backend.name].file_prefix
        settings = BACKENDS[backend.name].params(max(1, self.count), self.feature_size, {})
        if set(backend.params) - set(settings):
            raise fail("backend.params", backend.params, f"some of {', '.join(settings) or '{}'}")
        if (prefix is None) != (backend.file is None):
            shown = backend.file.name if backend.file else None
            raise fail("backend.file", shown, "present exactly for FAISS backends")
        if prefix is not None and backend.file is not None:
            if not re.fullmatch(rf"{prefix}-\d{{5,9}}\.index", backend.file.name):
                expected = f"{backend_file_name(prefix, 0)} or a later number"
                raise fail("backend.file.name", backend.file.name, expected)


MAX_ITEMS = 1 << 40  # items (and ids) an index may hold
MAX_SHARDS = 1 << 20
FILE_ENTRY = Schema(
    FileEntry,
    {
        # A bare file name: a manifest must not point outside its folder.
        "name": Text(
            max_length=255,
            pattern=r"(?!\.\.?$)[^/]+",
            meaning="a file name inside the index folder",
        ),
        "bytes": Integer(0, 1 << 50),
        "sha256": SHA256,
    },
)
SHARD = Schema(
    Shard,
    {
        "number": Integer(0, MAX_SHARDS),
        "count": Integer(0, MAX_ITEMS),
        "files": Mapping(SHARD_PARTS, FILE_ENTRY),
    },
)
BACKEND = Schema(
    Backend,
    {
        "name": Text(tuple(BACKENDS)),
        "params": Mapping(PARAM_NAMES, Integer(1, 1 << 24), partial=True),
        "file": Optional(FILE_ENTRY),
        "recall_at_10": Optional(Number(0, 1)),
        "target_recall": Optional(Number(0, 1, positive=True)),
    },
)
# Every field of the manifest with the rule it is read by; a key that is none of
# these is refused: the format's version says which fields there are.
MANIFEST = Schema(
    Manifest,
    {
        "feature_size": Integer(1, 1 << 16),
        "count": Integer(0, MAX_ITEMS),
        "dtype": Text(VECTOR_DTYPES),
        "checkpoint": Text(),
        "model": Text(max_length=256),
        "weights_sha256": SHA256,
        "classes": Items(Text(max_length=1024), 1, 1 << 20),
        "collection": Text(),
        "next_id": Integer(0, MAX_ITEMS),
        "shards": Items(SHARD, 0, MAX_SHARDS),
        "backend": BACKEND,
        "format_version": Integer(FORMAT_VERSION, FORMAT_VERSION),
        "metric": Text((METRIC,)),
    },
)
