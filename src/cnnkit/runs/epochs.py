"""``EpochRecord``: what one finished epoch of training measured, the one line per epoch
of a run's ``metrics.jsonl`` (and its checkpoint's ``history``). The trainer writes it;
the command line, the report, TensorBoard, ``history`` and ``bench`` read it through
here, by attribute."""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from cnnkit.errors import CnnkitError
from cnnkit.files import Integer, Number, Optional, Schema, atomic_write_text, parse_json
from cnnkit.runs.folder import METRICS_NAME


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # 1 for the first pass over the training set
    train_loss: float  # mean over the epoch's batches
    test_top1_error: float  # fraction of the test split, after the epoch
    test_top5_error: float
    # Older runs wrote no rate (then NaN) and no elapsed time (then None).
    lr: float = math.nan  # the schedule's rate at the epoch's last step
    seconds: float = 0.0  # the epoch's wall time: training and testing
    images_per_second: float = 0.0  # training images per second of training
    elapsed_seconds: float | None = None  # since the run (or its resumption) started
    # Older runs measured neither (then NaN).
    train_top1_error: float = math.nan  # of the training batches as they were trained on
    test_loss: float = math.nan  # mean cross-entropy on the test split, after the epoch

    @property
    def test_accuracy(self) -> float:
        return 1 - self.test_top1_error

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain types only, as metrics.jsonl and ``weights_only`` checkpoints hold them."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: object) -> "EpochRecord":
        """A record as ``to_dict`` (or an older cnnkit) wrote it, every field read by
        its rule (``EPOCH_RECORD``); a ``files.Invalid`` (a ValueError) naming the field
        otherwise, for the caller to name its file."""
        return EPOCH_RECORD.read(values)


ANY_NUMBER = Number(finite=False)  # NaN where an older cnnkit recorded no rate
# Every field with the rule it is read by. A key that is none of these is ignored, so
# that a newer run's metrics still read: they are figures to show, and one this cnnkit
# does not know changes nothing it does. A missing field takes its default (older runs).
EPOCH_RECORD = Schema(
    EpochRecord,
    {
        "epoch": Integer(0, 1 << 31),
        "train_loss": ANY_NUMBER,
        "test_top1_error": ANY_NUMBER,
        "test_top5_error": ANY_NUMBER,
        "lr": ANY_NUMBER,
        "seconds": ANY_NUMBER,
        "images_per_second": ANY_NUMBER,
        "elapsed_seconds": Optional(ANY_NUMBER),
        "train_top1_error": ANY_NUMBER,
        "test_loss": ANY_NUMBER,
    },
    defaults=True,
    ignore_unknown=True,
)


MAX_METRICS_BYTES = 64 << 20  # a few hundred bytes an epoch


def read_metrics(run_dir: Path) -> list[EpochRecord]:
    """The epochs of ``run_dir``'s metrics.jsonl; a ``CnnkitError`` naming the file if
    it is missing, damaged or empty."""
    if not run_dir.is_dir():
        raise CnnkitError(f"{run_dir}: no such run folder")
    path = run_dir / METRICS_NAME
    if not path.is_file():
        raise CnnkitError(f"{path}: not found; is {run_dir} a folder of `cnnkit train --out`?")
    if path.stat().st_size > MAX_METRICS_BYTES:
        raise CnnkitError(f"{path}: damaged metrics (more than {MAX_METRICS_BYTES:,} bytes)")
    history = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if line.strip():
            source = f"{path}:{number}"
            values = parse_json(line, source, CnnkitError, "epoch record", allow_nan=True)
            history.append(EPOCH_RECORD.parse(values, source, CnnkitError, "epoch record"))
    if not history:
        raise CnnkitError(f"{path}: no finished epoch yet")
    return history


def write_metrics(path: Path, history: list[EpochRecord]) -> None:
    """The whole of ``metrics.jsonl`` rewritten (a few hundred bytes an epoch), so that
    a full disk or a kill never leaves half a line in it."""
    atomic_write_text(path, "".join(json.dumps(record.to_dict()) + "\n" for record in history))
