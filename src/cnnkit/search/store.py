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
from cnnkit.files import (
    atomic_write,
    atomic_write_text,
    parse_json,
    read_json,
    refuse_constant,
    remove_stale_temporaries,
)
from cnnkit.search.backends import BACKENDS
from cnnkit.search.collection import Record
from cnnkit.search.embed import TINY_SIDE, Embedding
from cnnkit.search.manifest import (
    BUILD_STATE_NAME,
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    Shard,
    shard_file_names,
)

MANIFEST_MAX_BYTES = 64 << 20  # about 700 bytes a shard: room for 90,000 shards


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
    except Exception as error:  # a damaged header raises many types (seen: tokenize's TokenError)
        reason = str(error).splitlines()[0][:80] if str(error) else type(error).__name__
        raise IndexFileError(f"{path}: not a readable .npy array ({reason})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2:  # a 0-d or 3-d array
        shape = getattr(array, "shape", None)
        raise IndexFileError(f"{path}: holds an array of shape {shape}, not a table of rows")
    expected = (rows, columns) if columns is not None else (rows, array.shape[-1])
    if array.shape != expected or array.dtype != np.dtype(dtype):
        raise IndexFileError(
            f"{path}: holds {array.dtype} {array.shape}, the manifest says {dtype} {expected}"
        )
    return array


CHECK_ROWS = 1 << 16  # rows checked at a time: a few MiB, whatever the shard's size
# How far a stored row's length may be from 1: float32's rounding is 6e-8 a value and
# float16's 4.9e-4 (2^-11), so a row normalised and then stored stays far inside these.
UNIT_TOLERANCE = {"float32": 1e-4, "float16": 2e-3}


def check_unit_rows(array: np.ndarray, path: Path) -> None:
    """Every row of unit length (a zero row, a feature vector of zeros, stays zero), and
    so finite: read in chunks of the memory map, one vectorised product each."""
    tolerance = UNIT_TOLERANCE.get(array.dtype.name, UNIT_TOLERANCE["float16"])
    for start in range(0, len(array), CHECK_ROWS):
        chunk = np.asarray(array[start : start + CHECK_ROWS], dtype=np.float32)
        squared = np.einsum("ij,ij->i", chunk, chunk)
        bad = ~((np.abs(squared - 1) <= 2 * tolerance) | (squared == 0))
        if bad.any():
            row = start + int(np.argmax(bad))
            what = (
                "not finite" if not np.isfinite(chunk[row - start]).all() else "not of unit length"
            )
            raise IndexFileError(
                f"{path}: row {row} is {what} ({int(bad.sum()):,} such rows in rows "
                f"{start:,}-{start + len(chunk) - 1:,}); the index's vectors are L2-normalised"
            )


def check_log_probabilities(array: np.ndarray, path: Path) -> None:
    """Every value a log-probability: not NaN, at most 0 (with float32's rounding)."""
    for start in range(0, len(array), CHECK_ROWS):
        chunk = array[start : start + CHECK_ROWS]
        bad = ~(chunk <= 1e-4)  # NaN compares false
        if bad.any():
            row = start + int(np.argmax(bad.any(axis=1)))
            raise IndexFileError(
                f"{path}: row {row} holds a value that is not a log-probability (NaN or > 0)"
            )


def check_tiny_width(array: np.ndarray, path: Path, width: int | None) -> int:
    """The width of a shard's tiny images: C * 8 * 8 for C channels, the same in every
    shard (``width``: the first shard's)."""
    found = array.shape[1]
    cells = TINY_SIDE * TINY_SIDE
    if found % cells or not 1 <= found // cells <= 4 or (width is not None and found != width):
        expected = f"{width}" if width is not None else f"{cells} or a multiple up to {4 * cells}"
        raise IndexFileError(f"{path}: tiny images {found} values wide, expected {expected}")
    return found


MAX_RECORD_BYTES = 1 << 16  # one line of a records file: an id, a path, a label


def read_records(path: Path, count: int | None = None) -> list[Record]:
    """The records of a shard, one JSON object a line, each read by ``Record``'s rules
    (``collection.RECORD``, which bounds every value's type and range); ``count``: the
    manifest's, and no more lines than that are read."""
    with open(path, "rb") as file:
        limit = None if count is None else (count + 1) * (MAX_RECORD_BYTES + 1)
        lines = file.read(-1 if limit is None else limit).splitlines()
    if count is not None and len(lines) != count:
        raise IndexFileError(f"{path}: {len(lines):,} records, the manifest says {count:,}")
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_RECORD_BYTES:
            raise IndexFileError(
                f"{path}:{number}: damaged record (over {MAX_RECORD_BYTES:,} bytes)"
            )
    # One parse for the whole file, each line wrapped in a list of its own: the file is
    # read this way only if every line gave exactly one value (a line "1, 2" gives two;
    # lines that close and open brackets across each other give a list of another
    # length); otherwise each line is parsed alone, and the one that fails is named.
    wrapped = b"[" + b",".join(b"[" + line + b"]" for line in lines) + b"]"
    try:
        values = json.loads(wrapped, parse_constant=refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError among them
        values = None
    if values is not None and len(values) == len(lines) and all(len(v) == 1 for v in values):
        values = [value for (value,) in values]
    else:
        values = [parse_json(line, f"{path}:{n}", IndexFileError, "record") for n, line in
                  enumerate(lines, 1)]  # fmt: skip
    return [Record.from_json(value, f"{path}:{n}") for n, value in enumerate(values, 1)]


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
    values = read_json(path, MANIFEST_MAX_BYTES, IndexFileError, "manifest")
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
