"""Fetch a file from a list of mirrors: progress bar, checksum, atomic write."""

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from cnnkit.errors import DownloadError
from cnnkit.progress import bar as progress_bar

_CHUNK_BYTES = 1 << 16
_TIMEOUT_SECONDS = 30
# What refuses downloads for now (``no_downloads``): None where they are allowed.
_REFUSED_BY: ContextVar[str | None] = ContextVar("refused_by", default=None)


@contextmanager
def no_downloads(by: str) -> Iterator[None]:
    """Within it, a data set's missing file is a ``DownloadError`` naming ``by`` (what
    wanted the data, e.g. "the novelty score"), not a download: reading some training
    images on the side must not fetch a data set of hundreds of megabytes."""
    token = _REFUSED_BY.set(by)
    try:
        yield
    finally:
        _REFUSED_BY.reset(token)


def download(urls: list[str], destination: Path, content_sha256: str) -> Path:
    """Download the first mirror that works to ``destination``, atomically.

    ``content_sha256`` is the SHA-256 of the file's content after gzip
    decompression when the file is gzipped (archives get re-compressed; their
    content does not change). Nothing is left at ``destination`` on failure.
    """
    return _download_first(urls, destination, lambda path: _check_sha256(path, content_sha256))


def download_archive(urls: list[str], destination: Path, md5: str) -> Path:
    """Like ``download``, for an archive whose publisher gives the MD5 of the file itself
    (CIFAR's page does); the MD5 guards against a broken transfer, not an attacker."""
    return _download_first(urls, destination, lambda path: _check_md5(path, md5))


def _download_first(urls: list[str], destination: Path, check: Callable[[Path], None]) -> Path:
    refused_by = _REFUSED_BY.get()
    if refused_by is not None:
        refusal = f"{destination.name} is not here, and {refused_by} does not download it"
        raise DownloadError(refusal)
    destination.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    for url in urls:
        try:
            _download_one(url, destination, check)
            return destination
        except (OSError, urllib.error.URLError, ValueError, EOFError) as error:
            problems.append(f"{url}: {error}")
    raise DownloadError(
        f"{destination.name}: no mirror delivered a valid file ({'; '.join(problems)})"
    )


def _check_sha256(path: Path, expected: str) -> None:
    actual = content_digest(path)
    if actual != expected:
        raise ValueError(f"checksum mismatch (SHA-256 {actual}, expected {expected})")


def _check_md5(path: Path, expected: str) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ValueError(f"checksum mismatch (MD5 {digest.hexdigest()}, expected {expected})")


def _download_one(url: str, destination: Path, check: Callable[[Path], None]) -> None:
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".")
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress_bar(
                total=total, unit="B", unit_scale=True, desc=destination.name, leave=False
            ) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    out.write(chunk)
                    bar.update(len(chunk))
        check(Path(temporary))
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def content_digest(path: Path) -> str:
    """SHA-256 of a file's content, decompressed first when it is gzipped."""
    with open(path, "rb") as file:
        is_gzip = file.read(2) == b"\x1f\x8b"
    opener = gzip.open if is_gzip else open
    digest = hashlib.sha256()
    with opener(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
