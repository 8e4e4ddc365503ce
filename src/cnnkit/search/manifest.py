"""The manifest of a search index: what the folder holds and how to check it.

``manifest.json`` is written last, atomically, after every file it names: a folder
with a manifest is a complete index, one without is a build in progress (or killed).
It records the format version, the feature size, the item count, the metric, the
checkpoint the vectors came from (path, model name, SHA-256 of its weights), the
model's classes (for ``search class``), the backend (``search.backends``) and its file
if any, and for each shard its
three files with their size and SHA-256. ``Manifest.from_dict`` checks every field,
so that a damaged or hand-edited manifest is one clear ``IndexFileError``.
"""

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cnnkit.config import VECTOR_DTYPES
from cnnkit.errors import IndexFileError
from cnnkit.search.backends import BACKENDS, EXACT

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
    recall_at_10: float | None  # against exact search, measured at build time


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
    backend: Backend = Backend(EXACT.name, {}, None, None)  # until a build chooses one
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
        """The manifest in ``values`` (as ``to_dict`` wrote it), every field checked."""
        check = Fields(values, source)
        if check.values.get("format") != FORMAT_NAME:
            raise IndexFileError(f"{source}: not a cnnkit search index manifest")
        version = check.values.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexFileError(
                f"{source}: index format {version!r} is not supported (this cnnkit reads "
                f"format {FORMAT_VERSION})"
            )
        if check.values.get("metric") != METRIC:
            raise check.fail("metric", f"{METRIC!r}")
        shards = tuple(
            Fields(value, source, f"shards[{i}].").shard()
            for i, value in enumerate(check.array("shards"))
        )
        manifest = cls(
            feature_size=check.count("feature_size"),
            count=check.count("count", minimum=0),
            dtype=check.text("dtype", VECTOR_DTYPES),
            checkpoint=check.text("checkpoint"),
            model=check.text("model"),
            weights_sha256=check.digest("weights_sha256"),
            classes=tuple(check.names("classes")),
            collection=check.text("collection"),
            next_id=check.count("next_id", minimum=0),
            shards=shards,
            backend=check.child("backend").backend(),
        )
        if sum(shard.count for shard in shards) != manifest.count:
            raise check.fail("count", f"the sum of the shards' counts ({manifest.count} is not)")
        if len({shard.number for shard in shards}) != len(shards):
            raise check.fail("shards", "distinct shard numbers")
        return manifest


@dataclass(frozen=True)
class Fields:
    """Reads one manifest field at a time, with one error per bad field; nested
    objects are read by a ``child`` that names its fields with their path."""

    values: Any
    source: Path
    prefix: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.values, dict):
            where = f"{self.prefix.rstrip('.')} is" if self.prefix else "manifest"
            raise IndexFileError(f"{self.source}: damaged {where} (not a JSON object)")

    def child(self, key: str) -> "Fields":
        return Fields(self.values.get(key), self.source, f"{self.prefix}{key}.")

    def fail(self, key: str, expected: str) -> IndexFileError:
        return IndexFileError(
            f"{self.source}: damaged manifest: {self.prefix}{key} is not {expected}"
        )

    def count(self, key: str, minimum: int = 1) -> int:
        value = self.values.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise self.fail(key, f"an integer >= {minimum}")
        return value

    def text(self, key: str, choices: tuple[str, ...] = ()) -> str:
        value = self.values.get(key)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            raise self.fail(key, "one of " + ", ".join(choices) if choices else "a name")
        return value

    def array(self, key: str) -> list:
        value = self.values.get(key)
        if not isinstance(value, list):
            raise self.fail(key, "a list")
        return value

    def names(self, key: str) -> list[str]:
        value = self.array(key)
        if not value or not all(isinstance(name, str) for name in value):
            raise self.fail(key, "a list of names")
        return value

    def digest(self, key: str) -> str:
        value = self.values.get(key)
        if not isinstance(value, str) or len(value) != 64 or set(value) - set("0123456789abcdef"):
            raise self.fail(key, "a SHA-256 in hex")
        return value

    def file(self) -> FileEntry:
        name = self.text("name")
        if Path(name).name != name:  # a manifest must not point outside its folder
            raise self.fail("name", "a file name inside the index folder")
        return FileEntry(name, self.count("bytes", 0), self.digest("sha256"))

    def shard(self) -> Shard:
        files = self.child("files")
        if set(files.values) != set(SHARD_PARTS):
            raise self.fail("files", "vectors, scores, tiny and records")
        parts = {part: files.child(part).file() for part in SHARD_PARTS}
        return Shard(self.count("number", 0), self.count("count", 0), parts)

    def backend(self) -> Backend:
        name = self.text("name", tuple(BACKENDS))
        params = self.values.get("params")
        if not isinstance(params, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in params.values()
        ):
            raise self.fail("params", "a mapping of positive integers")
        recall = self.values.get("recall_at_10")
        if recall is not None and not (isinstance(recall, float | int) and 0 <= recall <= 1):
            raise self.fail("recall_at_10", "a fraction")
        file = None if self.values.get("file") is None else self.child("file").file()
        if (BACKENDS[name].file_prefix is None) != (file is None):
            raise self.fail("file", "present exactly for FAISS backends")
        return Backend(name, params, file, recall)
