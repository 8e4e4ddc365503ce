"""Building an index: ``build_index``, with ``resume`` for a build that was stopped.

A build embeds its collection shard by shard (``shard_size`` items each, in batches,
with a progress bar), writing each shard's files as soon as it is embedded; the
manifest comes last (``search.store``), so a build stopped at any point leaves a
folder that does not open as an index. ``build.json`` holds the plan while the build
runs, so that a resumed build can check that the checkpoint, the collection and the
settings are the same, and embeds only the shards not yet written. Batches are cut
the same way in every shard, so a resumed build gives the vectors of an
uninterrupted one, bit for bit.

Under torchrun the ranks share the work by shards: rank 0 takes the folder's lock,
checks or writes the plan and tells the others which shards are written; each embeds
the shards n with n modulo the world size equal to its rank into the same folder (on
one machine, or a file system that all of them mount); rank 0 writes the manifest
once every rank has reported (``runtime.distributed``). The shards and their batches
are cut as in one process, so the index is the one a single process builds, and a
stopped build resumes with any number of processes.
"""

import contextlib
import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cnnkit.config import default_workers
from cnnkit.errors import CheckpointError, ConfigError, DataError, IndexFileError
from cnnkit.files import (
    LOCK_NAME,
    FolderLock,
    atomic_write_bytes,
    atomic_write_text,
    read_json,
    remove_stale_temporaries,
)
from cnnkit.progress import bar as progress_bar
from cnnkit.runs import Run, load_run
from cnnkit.runtime.distributed import World, from_main, gathered, process_group, world_from_env
from cnnkit.search.backends import MB
from cnnkit.search.collection import Collection, Record
from cnnkit.search.embed import Embedder, Embedding, run_fingerprint
from cnnkit.search.knob import settings_given
from cnnkit.search.manifest import (
    BUILD_STATE_NAME,
    MANIFEST_NAME,
    Backend,
    FileEntry,
    Manifest,
    Shard,
    backend_file_name,
    next_generation,
    shard_file_names,
)
from cnnkit.search.pipeline import Planned, embedded_batches
from cnnkit.search.store import read_array, shard_entry, write_manifest, write_shard
from cnnkit.search.tune import DEFAULT_TARGET_RECALL, BackendChoice, build_tuned, check_choice

DEFAULT_SHARD_SIZE = 16_384  # items per shard: 32 MiB of 512-d float32 vectors


@dataclass(frozen=True)
class BuildSettings:
    backend: str = "auto"  # a name in search.backends.BACKEND_CHOICES (auto: by size, budget)
    # recall@10 that the backend's search-time setting is tuned to (search.tune), unless
    # nprobe or ef_search is given
    target_recall: float | None = DEFAULT_TARGET_RECALL
    memory_budget_mb: float | None = None  # MB (10^6 bytes) the backend may take [no limit]
    nprobe: int | None = None  # IVF cells a query visits, as given [tuned]
    ef_search: int | None = None  # HNSW candidates a query keeps, as given [tuned]
    dtype: str = "float32"  # of the stored vectors
    shard_size: int = DEFAULT_SHARD_SIZE
    batch_size: int = 256  # images per forward pass
    workers: int | None = None  # processes reading, on a CPU embedding too [a core each, <= 8]
    device: str = "auto"
    progress: bool = False
    resume: bool = False
    # Under torchrun: seconds a process waits for the others; the first to finish waits
    # for the last one's last shard (16,384 images: minutes for a large model on a CPU).
    dist_timeout: float = 1800.0

    def backend_choice(self) -> BackendChoice:
        budget = self.memory_budget_mb
        number = isinstance(budget, int | float) and not isinstance(budget, bool)
        if budget is not None and not (number and 0 < budget < 1e15):
            raise ConfigError(f"memory budget {budget!r} MB: expected a number above 0")
        budget = None if budget is None else int(budget * MB)
        settings = settings_given(self.nprobe, self.ef_search)
        return BackendChoice(self.backend, self.target_recall, budget, settings)


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
) -> BuildResult | None:
    """Embed the collection that ``collect(run)`` lists with ``checkpoint``'s model into
    a new index folder ``out`` (or finish the stopped build there, ``resume``).

    Under torchrun every rank embeds its share of the shards (shard n on rank n modulo
    the world size) into ``out``, which they must share, and rank 0 writes the manifest
    once every shard is there; the other ranks return None."""
    out, world = Path(out), world_from_env()
    settings = replace(settings, progress=settings.progress and world.is_main)  # one bar
    check_choice(settings.backend_choice())  # before minutes of embedding
    check_new_folder(out, settings.resume)
    created = not out.exists()
    try:
        return build_into(checkpoint, out, collect, settings, world)
    finally:  # a new build that failed before writing anything leaves no folder
        if created and out.is_dir() and not any(out.iterdir()):
            with contextlib.suppress(OSError):  # another process's file came meanwhile
                out.rmdir()


def build_into(
    checkpoint: Path,
    out: Path,
    collect: Callable[[Run], Collection],
    settings: BuildSettings,
    world: World,
) -> BuildResult | None:
    # a bad checkpoint or source: nothing written
    run = load_run(checkpoint, settings.device, world.local_rank)
    collection = collect(run)
    if not collection.records:
        raise DataError(f"{collection.description}: no images to index")
    plan = build_plan(run, collection, settings)
    with process_group(world, run.placement.device, settings.dist_timeout), ExitStack() as held:
        check_same_plan(world, plan)

        def begin() -> set[int]:
            held.enter_context(FolderLock(out, "index build"))
            return begin_build(out, plan, settings.resume)

        written = from_main(world, begin)
        others = {n for n in range(plan_shards(plan)) if n % world.size != world.rank}
        stats = embed_shards(out, run, collection, settings, 0, skip=written | others)
        every = gathered(world, stats)
        if not world.is_main:
            return None
        return finish_build(out, run, collection, plan, settings, every, len(written))


def check_same_plan(world: World, plan: dict) -> None:
    """Every rank must embed the same collection with the same weights and settings."""
    plans = gathered(world, plan)
    changed = sorted({key for other in plans for key in plan if other[key] != plans[0][key]})
    if changed:
        raise IndexFileError(
            f"the {world.size} processes of this build disagree on {', '.join(changed)}; "
            "give every one the same checkpoint, images and options"
        )


def begin_build(out: Path, plan: dict, resume: bool) -> set[int]:
    """Check the folder under its lock, clear what a stopped writer left, write or
    check the plan; the numbers of the shards a stopped build wrote."""
    check_new_folder(out, resume)  # again: another build may have begun
    remove_stale_temporaries(out)
    begin_plan(out, plan, resume)
    return {n for n in range(plan_shards(plan)) if shard_written(out, n)}


def finish_build(
    out: Path,
    run: Run,
    collection: Collection,
    plan: dict,
    settings: BuildSettings,
    stats: list["EmbedStats"],
    resumed: int,
) -> BuildResult:
    """The manifest of every shard written (by this build's processes or before it),
    and the backend's file where it stores one."""
    shards = written_shards(out, range(plan_shards(plan)))
    if not shards:  # nothing to resume either: the plan goes, and the folder is empty
        (out / BUILD_STATE_NAME).unlink(missing_ok=True)
        first = f" ({stats[0].problems[0]})" if stats and stats[0].problems else ""
        raise DataError(f"{collection.description}: none of the images could be read{first}")
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
    manifest = with_backend(out, manifest, settings.backend_choice(), settings.progress)
    write_manifest(out, manifest)
    (out / BUILD_STATE_NAME).unlink()
    total = EmbedStats.merge(stats)
    return BuildResult(
        out, manifest.count, total.embedded, total.seconds, manifest.backend, total.problems,
        resumed,
    )  # fmt: skip


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


BUILD_STATE_MAX_BYTES = 1 << 20  # build.json holds a few hashes and numbers


def plan_shards(plan: dict) -> int:
    return -(-plan["items"] // plan["shard_size"])


def begin_plan(out: Path, plan: dict, resume: bool) -> None:
    """Write the plan of a new build; check a resumed build's against it."""
    path = out / BUILD_STATE_NAME
    if not resume:
        atomic_write_text(path, json.dumps(plan, indent=1) + "\n")
        return
    stored = read_json(path, BUILD_STATE_MAX_BYTES, IndexFileError, "build plan")
    changed = [key for key in plan if not isinstance(stored, dict) or stored.get(key) != plan[key]]
    if changed:
        raise IndexFileError(
            f"{path}: cannot resume: {', '.join(changed)} changed since the build began; "
            "build into a new folder"
        )


def shard_written(out: Path, number: int) -> bool:
    """A shard's records file is written last: where it exists, the shard is whole."""
    return (out / shard_file_names(number)["records"]).is_file()


@dataclass(frozen=True)
class EmbedStats:
    embedded: int  # images embedded
    seconds: float  # from the first batch read to the last shard written
    problems: list[str]  # files that could not be read, one message each

    @staticmethod
    def merge(stats: list["EmbedStats"]) -> "EmbedStats":
        """Of processes that ran side by side: the sum, the longest time, every problem."""
        return EmbedStats(
            sum(s.embedded for s in stats),
            max(s.seconds for s in stats),
            [problem for s in stats for problem in s.problems],
        )


def embed_shards(
    out: Path,
    run: Run,
    collection: Collection,
    settings: BuildSettings,
    first_number: int,
    skip: frozenset[int] | set[int] = frozenset(),
) -> EmbedStats:
    """Embed ``collection`` into shards numbered from ``first_number``, leaving out the
    numbers in ``skip`` (written before, or by another process)."""
    embedder = Embedder(run, settings.batch_size)
    workers = default_workers() if settings.workers is None else settings.workers
    plan = build_batches(collection.records, settings, first_number, skip)
    left = Counter(batch.shard for batch in plan)  # batches of each shard still to come
    bar = progress_bar(total=sum(len(b.records) for b in plan), unit="img", desc="embedding",
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
            check_finite(shard, run)
            write_shard(out, batch.shard, shard, records.pop(batch.shard), settings.dtype)
            embedded += len(shard.vectors)
    bar.close()
    return EmbedStats(embedded, time.perf_counter() - start, problems)


def check_finite(embedding: Embedding, run: Run) -> None:
    """The model's features and scores are numbers, or the shard is not written: a NaN
    vector would rank first in every search."""
    finite = np.isfinite(embedding.vectors).all(axis=1) & ~np.isnan(embedding.scores).any(axis=1)
    if not finite.all():
        raise CheckpointError(
            f"{run.path}: the model gave features that are not finite (NaN or infinite) for "
            f"{int((~finite).sum()):,} of {len(finite):,} images; are its weights damaged?"
        )


def written_shards(out: Path, numbers: Iterable[int]) -> list[Shard]:
    """The manifest entries of the shards among ``numbers`` that are written."""
    return [shard_entry(out, n) for n in numbers if shard_written(out, n)]


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


def with_backend(
    out: Path, manifest: Manifest, choice: BackendChoice, progress: bool = False
) -> Manifest:
    """``manifest`` with the backend that ``choice`` names (or "auto"'s) built over the
    stored vectors, its search-time setting tuned to the target recall
    (``search.tune``): its file written under a new name where it stores one, its
    settings, the target and the recall@10 measured."""
    vectors = [read_vectors(out, s, manifest.feature_size, manifest.dtype) for s in manifest.shards]
    tuned = build_tuned(vectors, choice, progress)
    file = None
    if tuned.backend.file_prefix is not None:
        generation = next_generation(manifest.backend.file)
        file_name = backend_file_name(tuned.backend.file_prefix, generation)
        atomic_write_bytes(out / file_name, tuned.searcher.to_bytes())
        file = FileEntry.of(out, file_name)
    recall, target = tuned.recall_at_10, tuned.target_recall
    backend = Backend(tuned.backend.name, tuned.params, file, recall, target)
    return replace(manifest, backend=backend)
