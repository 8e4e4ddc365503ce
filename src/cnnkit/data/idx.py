"""Reader for the IDX format of MNIST and Fashion-MNIST (LeCun's file format).

An IDX file is: two zero bytes, a type code, the number of dimensions D, then D
big-endian uint32 sizes, then the values in C order (big-endian for multi-byte
types). Files may be gzip-compressed; the first two bytes tell which.
"""

import zlib
from pathlib import Path

import numpy as np

from cnnkit.errors import DataError

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


MAX_IDX_BYTES = 1 << 30  # MNIST's largest file is 47 MB; EMNIST's 700 MB


def read_idx_bytes(path: Path) -> bytes:
    """The decompressed content of an IDX file, gzipped or not."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    # Decompressed up to a limit: a few kilobytes of gzip can expand to gigabytes.
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        content = stream.decompress(raw, MAX_IDX_BYTES + 1)
    except zlib.error as error:
        raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from None
    if len(content) > MAX_IDX_BYTES:
        raise DataError(f"{path}: decompresses to more than {MAX_IDX_BYTES:,} bytes")
    if not stream.eof:
        raise DataError(f"{path}: corrupt or truncated gzip data (the stream ends early)")
    return content


def parse_idx(content: bytes, path: Path) -> np.ndarray:
    """Decode IDX content into an array; ``path`` only names the file in errors."""
    if len(content) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(content)} bytes)")
    zero0, zero1, type_code, ndim = content[:4]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_TYPES or not 1 <= ndim <= 4:
        raise DataError(f"{path}: not an IDX file (magic bytes {content[:4].hex()})")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(f"{path}: IDX header truncated")
    shape = tuple(int(n) for n in np.frombuffer(content, ">u4", ndim, offset=4))
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    actual = len(content) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{path}: IDX data {problem}: header says {shape} = {expected} bytes, "
            f"file holds {actual}"
        )
    values = np.frombuffer(content, dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a native-order, writable copy


def read_idx(path: Path) -> np.ndarray:
    """Read and validate one IDX file (gzipped or not)."""
    return parse_idx(read_idx_bytes(path), path)
