"""Reading and writing an index folder's files: shards and the manifest.

Every file is written whole or not at all (``files.atomic_write``); a shard's records
file is written after its arrays, so a shard whose records exist is whole;
the manifest is written after all the files it lists, so an index is either the old
one or the new one, whatever stops the writer. Files that no manifest lists (left by
a writer killed mid-change) are removed by the next writer, under the folder's lock.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import IndexFileError
from cnnkit.files import atomic_write, atomic_write_text, remove_stale_temporaries
from cnnkit.search.backends import BACKENDS
from cnnkit.search.collection import Record
from cnnkit.search.embed import Embedding
from cnnkit.search.manifest import (
    BUILD_STATE_NAME,
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    Shard,
    shard_file_names,
)


def write_array(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda file: np.save(file, array, allow_pickle=False))


def write_shard(
    folder: Path,
    number: int,
    embedding: Embedding,
    records: list[Record],
    dtype: str,
) -> Shard:
    """Shard ``number``'s files: vectors in ``dtype``, scores in float32, tiny images in
    uint8, and then the records."""
    names = shard_file_names(number)
    dtypes: dict[str, Any] = {"vectors": dtype, "scores": np.float32, "tiny": np.uint8}
    for part, part_dtype in dtypes.items():
        array = np.ascontiguousarray(getattr(embedding, part), dtype=part_dtype)
        write_array(folder / names[part], array)
    lines = "".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in records)
    atomic_write_text(folder / names["records"], lines)
    return shard_entry(folder, number)


def shard_entry(folder: Path, number: int) -> Shard:
    """The manifest entry of a shard already written (sizes and checksums)."""
    names = shard_file_names(number)
    files = {part: FileEntry.of(folder, name) for part, name in names.items()}
    return Shard(number, len(read_records(folder / names["records"])), files)


def read_array(path: Path, rows: int, columns: int | None, dtype: str) -> np.ndarray:
    """A memory-mapped ``.npy`` file, checked to be (rows, columns) of ``dtype``.

    Mapped copy-on-write ("c"), not read-only ("r"): the array is writable, so that
    ``torch.from_numpy`` takes it (exact search, dupes) without a copy and without
    torch's warning that the array is not writable; a write would change this
    process's pages only, never the file, which stays as its manifest describes it."""
    try:
        array = np.load(path, mmap_mode="c", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise IndexFileError(f"{path}: not a readable .npy array ({error})") from None
    expected = (rows, columns) if columns is not None else (rows, array.shape[-1])
    if array.ndim != 2 or array.shape != expected or array.dtype != np.dtype(dtype):
        raise IndexFileError(
            f"{path}: holds {array.dtype} {array.shape}, the manifest says {dtype} {expected}"
        )
    return array


def read_records(path: Path) -> list[Record]:
    records = []
    with open(path, encoding="utf-8", errors="replace") as file:
        for number, line in enumerate(file, 1):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                raise IndexFileError(f"{path}: line {number} is not JSON") from None
            records.append(Record.from_json(value, f"{path}:{number}"))
    return records


def write_manifest(folder: Path, manifest: Manifest) -> None:
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest.to_dict(), indent=1) + "\n")


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the index in ``folder``, checked field by field."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        if (folder / BUILD_STATE_NAME).is_file():
            raise IndexFileError(
                f"{folder}: an unfinished build (killed?); finish it with "
                f"`cnnkit index build ... --out {folder} --resume`"
            )
        if not folder.is_dir():
            raise IndexFileError(f"{folder}: no such index folder")
        raise IndexFileError(f"{folder}: not a cnnkit search index (no {MANIFEST_NAME})")
    try:
        values = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise IndexFileError(f"{path}: damaged manifest (not JSON: {error.msg})") from None
    return Manifest.from_dict(values, path)


def remove_unlisted(folder: Path, manifest: Manifest | None) -> None:
    """Delete shard and backend files that ``manifest`` does not list, and temporaries."""
    remove_stale_temporaries(folder)
    listed = set()
    if manifest is not None:
        listed = {entry.name for shard in manifest.shards for entry in shard.files.values()}
        listed |= {manifest.backend.file.name} if manifest.backend.file else set()
    prefixes = {"shard", *(b.file_prefix for b in BACKENDS.values() if b.file_prefix)}
    for path in [path for prefix in sorted(prefixes) for path in folder.glob(f"{prefix}-*")]:
        if path.is_file() and path.name not in listed:
            path.unlink()
