"""Writing files safely: whole or not at all, and one writer per folder.

``atomic_write`` writes through a temporary file beside the target, flushed to disk
and renamed into place: a reader sees the old file or the new one, never half of one,
whatever kills the writer (a signal, kill -9, a full disk). ``FolderLock`` makes a run
or index folder one process's at a time with an OS lock (``fcntl.flock``), which the
kernel releases when its holder dies, so a killed run never leaves a stale lock; a
holder that finishes removes the lock file, so a finished folder holds none.
``stop_signals_held`` keeps files that belong together (a checkpoint and the metrics
of the same epoch) from being parted by a Ctrl-C or SIGTERM between their writes.
"""

import contextlib
import dataclasses
import errno
import fcntl
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from cnnkit.errors import CnnkitError, FolderBusyError, WriteError

TEMPORARY_SUFFIX = ".tmp"
LOCK_NAME = ".lock"


FULL_DISK_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full


def describe_write_error(error: Exception, folder: Path) -> str:
    """A failed write in a few words: "no space left on device", "permission denied".
    torch's and onnx's writers raise RuntimeError for a write that the disk refused,
    so the free space tells what happened."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "no space left on device"
    try:
        if shutil.disk_usage(folder).free < FULL_DISK_BYTES:
            return "no space left on device"
    except OSError:
        pass
    if isinstance(error, OSError):
        return (error.strerror or type(error).__name__).lower()
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` by calling ``write(file)`` on a temporary file in the same folder,
    then renaming it into place; on any failure the temporary file is removed, the
    old ``path`` is left as it was, and an ``OSError`` becomes one ``WriteError``."""
    path = Path(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            dir=path.parent, prefix=path.name + ".", suffix=TEMPORARY_SUFFIX
        )
        temporary = Path(name)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())  # as open() would: mkstemp makes 0600
        os.replace(temporary, path)
        temporary = None
    except (OSError, RuntimeError) as error:
        reason = describe_write_error(error, path.parent if path.parent.exists() else Path("/"))
        raise WriteError(f"{path}: cannot write ({reason})") from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM until the block is done, then deliver the ones that
    came, to the handlers that were in place. Each write is atomic on its own; this
    makes a group of writes atomic against a stop (kill -9 still parts them, which is
    why a resumed run trusts the checkpoint). Outside the main thread, where handlers
    cannot be changed, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def note(signum: int, frame: object) -> None:
        arrived.append(signum)

    handlers = {
        signum: signal.signal(signum, note)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) is not None  # None: set outside Python, not restorable
    }
    try:
        yield
    finally:
        for stop_signal, handler in handlers.items():
            signal.signal(stop_signal, handler)
        for signum in dict.fromkeys(arrived):  # each kind once, in the order they came
            signal.raise_signal(signum)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder`` (call it while
    holding the folder's lock, so that no live writer's file is taken)."""
    removed = []
    for stale in Path(folder).glob(f"*{TEMPORARY_SUFFIX}"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


LOCK_ATTEMPTS = 10  # lock files removed under us in a row before we call the folder busy


class FolderLock:
    """``with FolderLock(folder, "training"):`` holds ``folder/.lock`` exclusively, or
    raises ``FolderBusyError`` naming the folder and the process that holds it; the
    lock file is removed as the lock is released."""

    def __init__(self, folder: Path, purpose: str) -> None:
        self.folder, self.purpose = Path(folder), purpose
        self.path = self.folder / LOCK_NAME
        self.file: BinaryIO | None = None

    def __enter__(self) -> "FolderLock":
        for _ in range(LOCK_ATTEMPTS):
            file = self.open_lock_file()
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                file.seek(0)
                holder = file.read().decode(errors="replace").strip() or "another process"
                file.close()
                raise self.busy(holder) from None
            if is_file_at(self.path, file):
                break
            # The holder removed this file as it let go (__exit__) between our open and
            # our lock: we hold a lock on a file that no other process can find. Take the
            # lock of the file at the path now (a new one, or a newer holder's).
            file.close()
        else:
            raise self.busy("another process")
        file.seek(0)
        file.truncate()
        file.write(f"process {os.getpid()} ({self.purpose})".encode())
        file.flush()
        self.file = file
        return self

    def open_lock_file(self) -> BinaryIO:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return open(self.path, "a+b")  # noqa: SIM115  # held until __exit__
        except OSError as error:
            reason = describe_write_error(error, Path("/"))
            raise WriteError(f"{self.folder}: cannot use as a folder ({reason})") from None

    def busy(self, holder: str) -> FolderBusyError:
        return FolderBusyError(
            f"{self.folder}: in use by {holder}; wait for it to finish or use another folder"
        )

    def __exit__(self, *exc_info: object) -> None:
        if self.file is None:
            return
        # Removed while the lock is still held, never after: a process that opened the
        # file before this point and locks it after our unlock finds it gone from the
        # path and opens the path again (__enter__), so only a lock on the file at the
        # path counts. Removed after the unlock, the file could already be a new holder's,
        # and a third process would create another and lock it too: two holders.
        # Among FolderLocks the path is our file until we remove it (only a missing file
        # is created), so the check below guards against someone deleting it by hand.
        if is_file_at(self.path, self.file):
            with contextlib.suppress(OSError):  # left behind, it is still a working lock file
                self.path.unlink()
        fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
        self.file.close()
        self.file = None


def is_file_at(path: Path, file: BinaryIO) -> bool:
    """Whether the open ``file`` is the file at ``path`` now (not one removed from it)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(file.fileno()))
    except FileNotFoundError:
        return False


# Reading what cnnkit did not just write. Python's own parser refuses hostile JSON in
# more ways than JSONDecodeError (an integer of more than 4,300 digits is a ValueError,
# arrays nested thousands deep a RecursionError) and accepts NaN, Infinity and 1e999;
# ``parse_json`` turns each into one error naming the file, and refuses what no cnnkit
# file holds: nesting deeper than ``JSON_MAX_DEPTH``, integers beyond 64 bits and
# numbers that are not finite. Records are then read through a ``Schema``, one rule a
# field, so that a field cannot be read unchecked.

JSON_MAX_DEPTH = 32  # cnnkit's files nest 4 deep (a manifest's shards' files' entries)
JSON_MAX_INTEGER = 1 << 63  # the largest magnitude a stored integer may have, exclusive


def read_json(
    path: Path, max_bytes: int, error: type[CnnkitError] = CnnkitError, what: str = "JSON file"
) -> Any:
    """The JSON value in ``path``, refused as one ``error`` naming the file if it holds
    more than ``max_bytes`` bytes, cannot be read, or is not JSON as ``parse_json``
    takes it."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as error_:
        raise error(f"{path}: cannot read {what} ({error_.strerror or error_})") from None
    if len(data) > max_bytes:
        raise error(f"{path}: damaged {what} (more than {max_bytes:,} bytes)")
    return parse_json(data, str(path), error, what)


def parse_json(
    text: str | bytes,
    source: str,
    error: type[CnnkitError] = CnnkitError,
    what: str = "JSON",
    allow_nan: bool = False,
) -> Any:
    """``text`` parsed, or one ``error`` naming ``source``: not UTF-8, not JSON, nested
    deeper than ``JSON_MAX_DEPTH``, an integer beyond 64 bits, NaN or an infinity (but
    where ``allow_nan``: Python's ``json.dumps`` writes a float NaN as ``NaN``)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        constant = None if allow_nan else refuse_constant
        value = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as failure:
        reason = f"not JSON: {failure.msg} at line {failure.lineno} column {failure.colno}"
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except RecursionError:
        reason = f"nested more than {JSON_MAX_DEPTH} deep"
    except ValueError as failure:  # int() of too many digits, or refuse_constant
        reason = str(failure) if str(failure).startswith("a number") else "an integer too long"
    else:
        problem = json_problem(value, allow_nan)
        if problem is None:
            return value
        reason = problem
    raise error(f"{source}: damaged {what} ({reason})")


def refuse_constant(name: str) -> object:
    """``json.loads``'s ``parse_constant``: NaN and the infinities are no number cnnkit
    stores."""
    raise ValueError(f"a number that is not finite ({name})")


def json_problem(value: object, allow_nan: bool = False) -> str | None:
    """What no cnnkit file holds in a parsed JSON ``value``: deep nesting, a huge
    integer, an infinite float (1e999); None if there is none. Walked without
    recursion, so any depth is safe to inspect."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= JSON_MAX_DEPTH:
                return f"nested more than {JSON_MAX_DEPTH} deep"
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, int) and not -JSON_MAX_INTEGER < item < JSON_MAX_INTEGER:
            return "an integer beyond 64 bits"
        elif isinstance(item, float) and not math.isfinite(item) and not allow_nan:
            return "a number that is not finite"
    return None


class Invalid(ValueError):
    """A value a ``Rule`` refuses: what it expected, where (a field's path) and what it
    found. ``Schema.parse`` turns it into the caller's error, naming the file."""

    def __init__(self, expected: str, value: object, where: str = "") -> None:
        super().__init__(expected)
        self.expected, self.value, self.where = expected, value, where

    def __str__(self) -> str:
        shown = "missing" if self.value is MISSING else shown_value(self.value)
        return f"{self.where or 'it'} is {shown}, expected {self.expected}"

    def inside(self, key: str | int) -> "Invalid":
        step = f"[{key}]" if isinstance(key, int) else str(key)
        joined = step + ("" if not self.where or self.where.startswith("[") else ".") + self.where
        return Invalid(self.expected, self.value, joined)


MISSING = object()  # a field the stored object does not have


class Rule:
    """How one stored value is read: ``read(value)`` returns it (converted where a type
    needs it: a list to a tuple) or raises ``Invalid``."""

    def read(self, value: object) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Integer(Rule):
    low: int = 0
    high: int = JSON_MAX_INTEGER - 1

    def read(self, value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"an integer from {self.low:,} to {self.high:,}", value)
        if not self.low <= value <= self.high:
            raise Invalid(f"an integer from {self.low:,} to {self.high:,}", value)
        return value


@dataclass(frozen=True)
class Number(Rule):
    low: float = -math.inf
    high: float = math.inf
    positive: bool = False  # above 0, not only at least ``low``
    finite: bool = True  # False: NaN and the infinities too (a rate that was not recorded)

    def read(self, value: object) -> float:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if is_number and not self.finite and not math.isfinite(value):  # type: ignore[arg-type]
            return float(value)  # type: ignore[arg-type]
        number = float(value) if is_number else math.nan  # type: ignore[arg-type]
        inside = self.low <= number <= self.high and (number > 0 or not self.positive)
        if not (math.isfinite(number) and inside):
            bounds = " above 0" if self.positive else ""
            if math.isfinite(self.low) or math.isfinite(self.high):
                bounds += f" from {self.low:g} to {self.high:g}"
            raise Invalid(f"a {'finite ' if self.finite else ''}number{bounds}", value)
        return number


@dataclass(frozen=True)
class Text(Rule):
    choices: tuple[str, ...] = ()
    max_length: int = 4096  # a path's length on Linux (PATH_MAX)
    pattern: str | None = None  # a regular expression the whole text must match
    meaning: str | None = None  # what is expected, said in words (for a pattern)

    def read(self, value: object) -> str:
        if (
            not isinstance(value, str)
            or not value
            or len(value) > self.max_length
            or "\0" in value
            or (self.choices and value not in self.choices)
            or (self.pattern is not None and not re.fullmatch(self.pattern, value))
        ):
            if self.choices:
                raise Invalid("one of " + ", ".join(self.choices), value)
            expected = f"a text of 1 to {self.max_length:,} characters"
            raise Invalid(self.meaning or expected, value)
        return value


SHA256 = Text(max_length=64, pattern="[0-9a-f]{64}", meaning="a SHA-256 in hex")


@dataclass(frozen=True)
class Flag(Rule):
    def read(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise Invalid("true or false", value)
        return value


@dataclass(frozen=True)
class FilePath(Rule):
    """A path stored as text."""

    def read(self, value: object) -> Path:
        return Path(Text().read(value))


@dataclass(frozen=True)
class Note(Rule):
    """Free text, empty allowed (a recipe's source)."""

    max_length: int = 4096

    def read(self, value: object) -> str:
        if not isinstance(value, str) or len(value) > self.max_length:
            raise Invalid(f"a text of at most {self.max_length:,} characters", value)
        return value


@dataclass(frozen=True)
class Optional(Rule):
    rule: Rule

    def read(self, value: object) -> Any:
        if value is None or value is MISSING:
            return None
        try:
            return self.rule.read(value)
        except Invalid as invalid:
            raise Invalid(invalid.expected + " or null", invalid.value, invalid.where) from None


@dataclass(frozen=True)
class Items(Rule):
    """A JSON array of ``rule``'s values, as a tuple."""

    rule: Rule
    min_length: int = 0
    max_length: int = 1 << 20

    def read(self, value: object) -> tuple:
        if not isinstance(value, list | tuple) or not (
            self.min_length <= len(value) <= self.max_length
        ):
            raise Invalid(f"a list of {self.min_length:,} to {self.max_length:,} items", value)
        items = []
        for i, item in enumerate(value):
            try:
                items.append(self.rule.read(item))
            except Invalid as invalid:
                raise invalid.inside(i) from None
        return tuple(items)


@dataclass(frozen=True)
class Mapping(Rule):
    """A JSON object of ``rule``'s values by name: the names in ``keys`` exactly, or
    any of ``keys`` where ``partial``."""

    keys: tuple[str, ...]
    rule: Rule
    partial: bool = False

    def read(self, value: object) -> dict[str, Any]:
        if not isinstance(value, dict) or (
            set(value) - set(self.keys) if self.partial else set(value) != set(self.keys)
        ):
            some = "some of " if self.partial else ""
            raise Invalid(f"an object of {some}{', '.join(self.keys)}", value)
        values = {}
        for key in self.keys:
            if key in value:
                try:
                    values[key] = self.rule.read(value[key])
                except Invalid as invalid:
                    raise invalid.inside(key) from None
        return values


@dataclass(frozen=True)
class Schema(Rule):
    """How a stored object becomes the dataclass ``cls``: one rule per field, checked
    against ``cls``'s fields when the schema is made, so that a field added to the
    class without a rule fails at import. A field the object lacks takes the class's
    default where ``defaults`` (else it is refused); a key the class does not know is
    refused, or ignored where ``ignore_unknown``."""

    cls: type
    rules: dict[str, Rule]
    defaults: bool = False
    ignore_unknown: bool = False
    # Worked out once from the fields: (name, default or MISSING, rule), and the names.
    _plan: list[tuple[str, Any, Rule]] = dataclasses.field(init=False, repr=False)
    _names: frozenset[str] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        fields = dataclasses.fields(self.cls)
        names = {field.name for field in fields}
        if set(self.rules) != names:
            raise TypeError(
                f"{self.cls.__name__}'s schema must have one rule per field: "
                f"{sorted(names ^ set(self.rules))}"
            )
        plan = [
            (
                field.name,
                field.default if self.defaults else dataclasses.MISSING,
                self.rules[field.name],
            )
            for field in fields
        ]
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_names", frozenset(names))

    def read(self, value: object) -> Any:
        if not isinstance(value, dict):
            raise Invalid("an object", value)
        if not self.ignore_unknown and not value.keys() <= self._names:
            name = sorted(map(str, value.keys() - self._names))[0]
            raise Invalid("no such field (this cnnkit does not know it)", value[name]).inside(name)
        found: dict[str, Any] = {}
        for name, default, rule in self._plan:
            stored = value.get(name, MISSING)
            if stored is MISSING and default is not dataclasses.MISSING:
                found[name] = default
                continue
            try:
                found[name] = rule.read(stored)
            except Invalid as invalid:
                raise invalid.inside(name) from None
        return self.cls(**found)

    def parse(self, value: object, source: object, error: type[CnnkitError], what: str) -> Any:
        """``value`` as a ``cls``, or one ``error``: "SOURCE: damaged WHAT: FIELD is
        VALUE, expected ..." naming the field's path (``shards[0].count``)."""
        try:
            return self.read(value)
        except Invalid as invalid:
            raise invalid_error(invalid, source, error, what) from None


ErrorType = TypeVar("ErrorType", bound=CnnkitError)


def invalid_error(invalid: Invalid, source: object, error: type[ErrorType], what: str) -> ErrorType:
    return error(f"{source}: damaged {what}: {invalid}")


def shown_value(value: object, limit: int = 40) -> str:
    """A stored value in a message: its repr cut short, on one line; a long container
    by its size (its repr could be megabytes)."""
    if isinstance(value, dict | list | tuple) and len(value) > 8:
        return f"a {'JSON object' if isinstance(value, dict) else 'list'} of {len(value):,} items"
    try:
        text = repr(value).replace("\n", " ")
    except RecursionError:
        return f"a deeply nested {type(value).__name__}"
    except ValueError:  # int's repr refuses more than sys.get_int_max_str_digits() digits
        return "an integer of thousands of digits"
    return text if len(text) <= limit else text[: limit - 3] + "..."
