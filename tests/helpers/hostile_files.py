"""Hostile and damaged files, made from real ones: a truncated PNG, a PNG bomb, and a
small full disk (a tmpfs, which needs root: CI and ``bash .ci/run`` run as root)."""

import os
import struct
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import IN_CI


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int) -> bytes:
    """The signature and IHDR of an 8-bit RGB PNG of ``width`` x ``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)


def truncated_png() -> bytes:
    """68 bytes: a valid 32x32 RGB header and a 10-byte IDAT, then the end; libpng
    reports "Not enough image data" (and torchvision's decoder crashed on it)."""
    data = png_header(32, 32) + png_chunk(b"IDAT", zlib.compress(b"\0" * 2)[:10])
    return data + png_chunk(b"IEND", b"")


def bomb_png(side: int = 100_000) -> bytes:
    """A PNG whose header claims side x side pixels (30 GB as RGB) in a few hundred bytes."""
    row = b"\0" + b"\0" * 3 * 16
    return png_header(side, side) + png_chunk(b"IDAT", zlib.compress(row)) + png_chunk(b"IEND", b"")


@contextmanager
def full_disk(folder: Path, size_kb: int) -> Iterator[Path]:
    """``folder`` as a tmpfs of ``size_kb`` KiB for the block's duration."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        message = f"cannot mount a tmpfs as a small disk ({mounted.stderr.strip()}; needs root)"
        if IN_CI or os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
