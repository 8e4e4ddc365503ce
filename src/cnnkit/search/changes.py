"""Changing an index without embedding it again: ``add_to_index``, ``remove_from_index``;
and ``index_info``, what ``cnnkit index info`` shows.

Adding embeds only the new files, into new shards; removing rewrites only the shards
that held removed items, from their stored vectors. The backend's file (FAISS's
index) is rebuilt from the stored vectors (seconds where embedding them was minutes).
Every change writes its new files first and the manifest last, under the folder's lock, and
then deletes the files the new manifest no longer lists.
"""

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cnnkit.errors import IndexFileError
from cnnkit.files import FolderLock
from cnnkit.runs import load_run
from cnnkit.search.backends import get_backend
from cnnkit.search.build import (
    BuildResult,
    BuildSettings,
    embed_shards,
    with_backend,
    written_shards,
)
from cnnkit.search.collection import file_collection
from cnnkit.search.embed import check_fingerprint
from cnnkit.search.index import SearchIndex, open_index
from cnnkit.search.manifest import Manifest, Shard
from cnnkit.search.store import read_manifest, remove_unlisted, write_manifest, write_shard
from cnnkit.search.tune import BackendChoice

DEFAULTS = BuildSettings()


def add_to_index(path: Path, files: list[Path], settings: BuildSettings = DEFAULTS) -> BuildResult:
    """Embed image files (and the images in folders) that ``path`` does not hold yet
    with the index's own checkpoint, and add them."""
    path = Path(path)
    read_manifest(path)  # before the lock, which would create a missing folder
    with FolderLock(path, "index add"):
        index = open_index(path)
        manifest = index.manifest
        remove_unlisted(path, manifest)
        run = load_run(Path(manifest.checkpoint), settings.device)
        check_fingerprint(run, manifest.weights_sha256, str(path))
        held = {record.path for record in index.records}
        listed = file_collection(files)
        new = [record for record in listed.records if record.path not in held]
        ids = range(manifest.next_id, manifest.next_id + len(new))
        collection = replace(
            listed, records=[replace(r, id=i) for r, i in zip(new, ids, strict=True)]
        )
        first = max((shard.number for shard in manifest.shards), default=-1) + 1
        # One new shard, its vectors stored as the index's others are.
        settings = replace(settings, shard_size=max(1, len(new)), dtype=manifest.dtype)
        stats = embed_shards(path, run, collection, settings, first)
        shards = written_shards(path, [first])
        manifest = manifest.with_shards([*manifest.shards, *shards], ids.stop)
        manifest = updated_backend(path, manifest, bool(shards), settings.progress)
        write_manifest(path, manifest)
        remove_unlisted(path, manifest)
    return BuildResult(
        path, manifest.count, stats.embedded, stats.seconds, manifest.backend, stats.problems
    )


@dataclass(frozen=True)
class RemoveResult:
    path: Path
    removed: int
    count: int  # items left


def remove_from_index(path: Path, sources: list[str]) -> RemoveResult:
    """Remove the items that ``sources`` name: file paths (a folder: every item in
    it) or data-set items as ``index info`` shows them ("mnist/train/17")."""
    path = Path(path)
    read_manifest(path)
    with FolderLock(path, "index remove"):
        index = open_index(path)
        manifest = index.manifest
        remove_unlisted(path, manifest)
        drop = matching_ids(index, sources)
        if len(drop) == len(index):
            raise IndexFileError(
                f"{path}: removing every item would leave an empty index; delete the folder"
            )
        shards: list[Shard] = []
        number = max(shard.number for shard in manifest.shards) + 1
        start = 0
        for shard, stored in zip(manifest.shards, index.embeddings(), strict=True):
            records = index.records[start : start + shard.count]
            start += shard.count
            keep = np.array([record.id not in drop for record in records], dtype=bool)
            if keep.all():
                shards.append(shard)
            elif keep.any():
                kept = [record for record, k in zip(records, keep, strict=True) if k]
                shards.append(write_shard(path, number, stored[keep], kept, manifest.dtype))
                number += 1
        manifest = manifest.with_shards(shards, manifest.next_id)
        manifest = updated_backend(path, manifest, changed=True)
        write_manifest(path, manifest)
        remove_unlisted(path, manifest)
    return RemoveResult(path, len(drop), manifest.count)


def matching_ids(index: SearchIndex, sources: list[str]) -> set[int]:
    """The ids that ``sources`` name; an error naming the first that names none."""
    ids: set[int] = set()
    for source in sources:
        target = str(Path(source).expanduser().resolve())
        found = {
            record.id
            for record in index.records
            if record.source == source
            or record.path == target
            or (record.path or "").startswith(target.rstrip("/") + "/")
        }
        if not found:
            raise IndexFileError(f"{index.path}: holds no item {source!r}; nothing was removed")
        ids |= found
    return ids


def updated_backend(
    path: Path, manifest: Manifest, changed: bool, progress: bool = False
) -> Manifest:
    """``manifest`` with its backend built again over its vectors where they changed
    (and its file rewritten, where it stores one): the same kind with the settings it
    had, its search-time setting tuned again to the target it had (else kept), the
    cells of an inverted file counted again for the new size."""
    if not changed:
        return manifest
    backend = manifest.backend
    knob = get_backend(backend.name).knob(backend.params)
    tuned = {knob.name} if knob is not None and backend.target_recall is not None else set()
    kept = {k: v for k, v in backend.params.items() if k not in {"nlist", *tuned}}
    choice = BackendChoice(backend.name, backend.target_recall, None, kept)
    return with_backend(path, manifest, choice, progress)


@dataclass(frozen=True)
class IndexInfo:
    manifest: dict  # as stored, without the per-shard file entries
    items: int
    shards: int
    bytes: int  # of the files the manifest lists
    labels: dict[str, int]  # items per label, unlabelled under ""

    def to_dict(self) -> dict:
        return {
            "manifest": self.manifest,
            "items": self.items,
            "shards": self.shards,
            "bytes": self.bytes,
            "labels": self.labels,
        }


def index_info(path: Path) -> IndexInfo:
    """The manifest and counts of the index at ``path``, after checking every file."""
    index = open_index(path)
    manifest = index.manifest
    files = [entry for shard in manifest.shards for entry in shard.files.values()]
    files += [manifest.backend.file] if manifest.backend.file else []
    stored = manifest.to_dict()
    stored.pop("shards")
    labels = Counter(record.label or "" for record in index.records)
    return IndexInfo(
        stored, len(index), len(manifest.shards), sum(e.bytes for e in files), dict(labels)
    )
