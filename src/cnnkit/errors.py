"""Errors a user can cause and fix. The CLI prints their message as one line."""

import importlib
from collections.abc import Iterable
from types import ModuleType


class CnnkitError(Exception):
    """Base class: the message names the file or value and what is wrong with it."""


class DataError(CnnkitError):
    """A data file is missing, corrupt, truncated or of the wrong shape."""


class ChecksumError(DataError):
    """A data file's content does not match its published SHA-256."""


class DownloadError(DataError):
    """No mirror delivered a data file."""


class UnknownNameError(CnnkitError):
    """A name that is not among the valid ones (models, data sets, augmentations,
    devices, formats...); the message lists the valid names."""

    @classmethod
    def of(cls, kind: str, name: object, known: Iterable[str]) -> "UnknownNameError":
        return cls(f"unknown {kind} {name!r}; known: {', '.join(known)}")


class ConfigError(CnnkitError):
    """Settings that do not fit together (e.g. a model and a data set's class count)."""


class ImageError(CnnkitError):
    """An image file that cannot be read or decoded."""


class ImageTooLargeError(ImageError):
    """An image whose header claims more pixels than the reader accepts."""


class UnsupportedImageError(ImageError):
    """Bytes that are not an image of a format the reader accepts."""


class CheckpointError(CnnkitError):
    """A checkpoint that is missing, corrupt or does not fit the request."""


class TrainingError(CnnkitError):
    """Training cannot go on (for example the loss became NaN)."""


class DistributedError(CnnkitError):
    """Processes working together (torchrun ranks) lost one another."""


class InputSizeError(CnnkitError):
    """An input size an architecture cannot take (too small, or not the size it needs)."""


class UncountedLayerError(CnnkitError):
    """A layer the size analyzer has no counting rule for."""


class MissingExtraError(CnnkitError):
    """An optional package is not installed; the message names the extra that brings it."""


def import_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """``module``, or a ``MissingExtraError`` saying that ``purpose`` needs it and
    which of cnnkit's extras installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = error.name or module
        raise MissingExtraError(
            f"{purpose} needs {missing}: pip install 'cnnkit[{extra}]'"
        ) from None


class WriteError(CnnkitError):
    """A file cannot be written: the disk is full, the place is read-only or missing."""


class FolderBusyError(CnnkitError):
    """Another process holds the folder (a run or an index being written)."""


class IndexFileError(CnnkitError):
    """A search index folder that is missing, incomplete, damaged, tampered with, or
    in the way of a new one."""


class FingerprintError(CheckpointError):
    """A checkpoint whose weights are not the ones a search index was built with."""


class ExportError(CnnkitError):
    """A model cannot be exported in the format asked for."""


class RequestError(CnnkitError):
    """A request the server cannot act on: no image in it, bad base64, a bad parameter."""


class RequestTooLargeError(RequestError):
    """A request body over the server's byte limit."""


class NotFoundError(CnnkitError):
    """A request names what the server does not have: a search index, an item, a class."""


class ServerBusyError(CnnkitError):
    """The server's queue is full or it is shutting down; the client may retry later."""


class ServerTimeoutError(CnnkitError):
    """A request waited longer for the model than the server allows."""


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C's KeyboardInterrupt, so that files being
    written are cleaned up, and ``cli.main`` ends with one line and exit status 143."""


class SkippedImagesWarning(UserWarning):
    """Some image files of a folder data set could not be decoded and were left out."""
