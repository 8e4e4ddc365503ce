"""Building an index: ``build_index``, with ``resume`` for a build that was stopped.

A build embeds its collection shard by shard (``shard_size`` items each, in batches,
with a progress bar), writing each shard's files as soon as it is embedded; the
manifest comes last (``search.store``), so a build stopped at any point leaves a
folder that does not open as an index. ``build.json`` holds the plan while the build
runs, so that a resumed build can check that the checkpoint, the collection and the
settings are the same, and embeds only the shards not yet written. Batches are cut
the same way in every shard, so a resumed build gives the vectors of an
uninterrupted one, bit for bit.
"""

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cnnkit.errors import DataError, IndexFileError
from cnnkit.files import (
    LOCK_NAME,
    FolderLock,
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temporaries,
)
from cnnkit.runs import Run, load_run
from cnnkit.search.collection import Collection, Record
from cnnkit.search.embed import Embedder, Embedding, run_fingerprint
from cnnkit.search.faiss_backend import build_faiss, choose_backend, default_params, recall_at_10
from cnnkit.search.manifest import (
    BUILD_STATE_NAME,
    EXACT,
    MANIFEST_NAME,
    Backend,
    FileEntry,
    Manifest,
    Shard,
    faiss_file_name,
    shard_file_names,
)
from cnnkit.search.pipeline import Planned, default_workers, embedded_batches
from cnnkit.search.store import read_array, shard_entry, write_manifest, write_shard

DEFAULT_SHARD_SIZE = 16_384  # items per shard: 32 MiB of 512-d float32 vectors


@dataclass(frozen=True)
class BuildSettings:
    backend: str = "auto"  # exact, a FAISS kind, or auto (by size)
    dtype: str = "float32"  # of the stored vectors
    shard_size: int = DEFAULT_SHARD_SIZE
    batch_size: int = 256  # images per forward pass
    workers: int | None = None  # processes reading, on a CPU embedding too [a core each, <= 8]
    nprobe: int | None = None  # IVF cells a query visits [faiss_backend.default_params]
    device: str = "auto"
    progress: bool = False
    resume: bool = False


@dataclass(frozen=True)
class BuildResult:
    path: Path
    count: int  # items in the index now
    embedded: int  # images embedded by this call
    seconds: float  # spent embedding
    backend: Backend
    problems: list[str]  # files that could not be read, one message each
    resumed_shards: int = 0  # shards a resumed build found already written

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0


def build_index(
    checkpoint: Path,
    out: Path,
    collect: Callable[[Run], Collection],
    settings: BuildSettings = BuildSettings(),
) -> BuildResult:
    """Embed the collection that ``collect(run)`` lists with ``checkpoint``'s model into
    a new index folder ``out`` (or finish the stopped build there, ``resume``)."""
    out = Path(out)
    check_new_folder(out, settings.resume)
    run = load_run(checkpoint, settings.device)  # a bad checkpoint or source: nothing written
    collection = collect(run)
    if not collection.records:
        raise DataError(f"{collection.description}: no images to index")
    plan = build_plan(run, collection, settings)
    with FolderLock(out, "index build"):
        check_new_folder(out, settings.resume)  # again: another build may have begun
        remove_stale_temporaries(out)
        begin_plan(out, plan, settings.resume)
        written = {n for n in range(plan_shards(plan)) if shard_written(out, n)}
        shards, embedded, seconds, problems = embed_shards(
            out, run, collection, settings, 0, skip=written
        )
        if not shards:
            raise DataError(f"{collection.description}: none of the images could be read")
        manifest = Manifest(
            feature_size=int(read_vectors(out, shards[0], None, settings.dtype).shape[1]),
            count=sum(shard.count for shard in shards),
            dtype=settings.dtype,
            checkpoint=plan["checkpoint"],
            model=run.record.model,
            weights_sha256=plan["weights_sha256"],
            classes=run.record.classes,
            collection=collection.description,
            next_id=len(collection.records),
            shards=tuple(shards),
        )
        manifest = with_backend(out, manifest, settings.backend, settings.nprobe)
        write_manifest(out, manifest)
        (out / BUILD_STATE_NAME).unlink()
    return BuildResult(
        out, manifest.count, embedded, seconds, manifest.backend, problems, len(written)
    )


def check_new_folder(out: Path, resume: bool) -> None:
    """An index is built in a new or empty folder, never over an index or other files."""
    if out.exists() and not out.is_dir():
        raise IndexFileError(f"{out}: exists and is not a folder")
    names = {p.name for p in out.iterdir()} - {LOCK_NAME} if out.is_dir() else set()
    if MANIFEST_NAME in names:
        raise IndexFileError(
            f"{out}: an index exists here; choose another --out, or change this one with "
            "`cnnkit index add` and `cnnkit index remove`"
        )
    if resume and BUILD_STATE_NAME not in names:
        raise IndexFileError(f"{out}: no unfinished build here to resume")
    if not resume and BUILD_STATE_NAME in names:
        raise IndexFileError(f"{out}: holds an unfinished build; continue it with --resume")
    if not resume and names:
        raise IndexFileError(f"{out}: the folder exists and is not empty; choose another --out")


def build_plan(run: Run, collection: Collection, settings: BuildSettings) -> dict:
    """What must not change between a build and its resumption."""
    items = hashlib.sha256("\n".join(collection.digest_lines()).encode()).hexdigest()
    return {
        "checkpoint": str(run.path.resolve()),
        "weights_sha256": run_fingerprint(run),
        "collection": collection.description,
        "items": len(collection.records),
        "items_sha256": items,
        "dtype": settings.dtype,
        "shard_size": settings.shard_size,
        "batch_size": settings.batch_size,
    }


def plan_shards(plan: dict) -> int:
    return -(-plan["items"] // plan["shard_size"])


def begin_plan(out: Path, plan: dict, resume: bool) -> None:
    """Write the plan of a new build; check a resumed build's against it."""
    path = out / BUILD_STATE_NAME
    if not resume:
        atomic_write_text(path, json.dumps(plan, indent=1) + "\n")
        return
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        stored = {}
    changed = [key for key in plan if not isinstance(stored, dict) or stored.get(key) != plan[key]]
    if changed:
        raise IndexFileError(
            f"{path}: cannot resume: {', '.join(changed)} changed since the build began; "
            "build into a new folder"
        )


def shard_written(out: Path, number: int) -> bool:
    """A shard's records file is written last: where it exists, the shard is whole."""
    return (out / shard_file_names(number)["records"]).is_file()


def embed_shards(
    out: Path,
    run: Run,
    collection: Collection,
    settings: BuildSettings,
    first_number: int,
    skip: frozenset[int] | set[int] = frozenset(),
) -> tuple[list[Shard], int, float, list[str]]:
    """Embed ``collection`` into shards numbered from ``first_number``, leaving out the
    numbers in ``skip`` (written before); returns every shard's entry, the number of
    images embedded, the seconds it took and the files that could not be read."""
    embedder = Embedder(run, settings.batch_size)
    workers = default_workers() if settings.workers is None else settings.workers
    plan = build_batches(collection.records, settings, first_number, skip)
    left = Counter(batch.shard for batch in plan)  # batches of each shard still to come
    bar = tqdm(total=sum(len(b.records) for b in plan), unit="img", desc="embedding",
               disable=not settings.progress)  # fmt: skip
    records: dict[int, list[Record]] = defaultdict(list)
    parts: dict[int, list[Embedding]] = defaultdict(list)
    embedded, problems, start = 0, [], time.perf_counter()
    for batch in embedded_batches(run, collection, plan, embedder, workers):
        problems += batch.problems
        if batch.embedding is not None:
            records[batch.shard] += batch.records
            parts[batch.shard].append(batch.embedding)
        bar.update(len(batch.records) + len(batch.problems))
        left[batch.shard] -= 1
        if not left[batch.shard] and records[batch.shard]:
            shard = Embedding.concatenate(parts.pop(batch.shard))
            write_shard(out, batch.shard, shard, records.pop(batch.shard), settings.dtype)
            embedded += len(shard.vectors)
    bar.close()
    seconds = time.perf_counter() - start
    count = -(-len(collection.records) // settings.shard_size)
    numbers = range(first_number, first_number + count)
    shards = [shard_entry(out, n) for n in numbers if shard_written(out, n)]
    return shards, embedded, seconds, problems


def build_batches(
    records: list[Record], settings: BuildSettings, first: int, skip: frozenset[int] | set[int]
) -> list[Planned]:
    """The batches of every shard not in ``skip``: ``shard_size`` items a shard, each
    cut into batches of ``batch_size`` from its start, the same in every build."""
    size, batch = settings.shard_size, settings.batch_size
    plan = []
    for number, begin in enumerate(range(0, len(records), size), first):
        if number not in skip:
            shard = records[begin : begin + size]
            plan += [Planned(number, shard[i : i + batch]) for i in range(0, len(shard), batch)]
    return plan


def read_vectors(out: Path, shard: Shard, dim: int | None, dtype: str) -> np.ndarray:
    return read_array(out / shard.files["vectors"].name, shard.count, dim, dtype)


def with_backend(out: Path, manifest: Manifest, name: str, nprobe: int | None) -> Manifest:
    """``manifest`` with the backend ``name`` (resolved from "auto" by size): for a
    FAISS kind, the index built over the stored vectors, written to a new file, and
    its recall@10 against exact search."""
    kind = choose_backend(name, manifest.count)
    if kind == "exact":
        return replace(manifest, backend=EXACT)
    vectors = [read_vectors(out, s, manifest.feature_size, manifest.dtype) for s in manifest.shards]
    params = default_params(kind, manifest.count, manifest.feature_size)
    if nprobe is not None and "nprobe" in params:
        params["nprobe"] = min(nprobe, params["nlist"])
    index = build_faiss(kind, vectors, params)
    old = manifest.backend.file
    generation = int(old.name.split("-")[1].split(".")[0]) + 1 if old else 0
    name = faiss_file_name(generation)
    atomic_write_bytes(out / name, index.to_bytes())
    backend = Backend(kind, params, FileEntry.of(out, name), recall_at_10(index, vectors))
    return replace(manifest, backend=backend)
