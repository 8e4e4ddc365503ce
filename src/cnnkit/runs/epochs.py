"""``EpochRecord``: what one finished epoch of training measured, the one line per epoch
of a run's ``metrics.jsonl`` (and its checkpoint's ``history``). The trainer writes it;
the command line, the report, TensorBoard, ``history`` and ``bench`` read it through
here, by attribute."""

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cnnkit.errors import CnnkitError
from cnnkit.files import atomic_write_text
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

    @property
    def test_accuracy(self) -> float:
        return 1 - self.test_top1_error

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain types only, as metrics.jsonl and ``weights_only`` checkpoints hold them."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "EpochRecord":
        """A record as ``to_dict`` (or an older cnnkit) wrote it; keys it does not know
        are ignored, so that a newer run's metrics still read."""
        known = {field.name for field in fields(cls)}
        record = cls(**{key: value for key, value in values.items() if key in known})
        for field in fields(cls):
            value = getattr(record, field.name)
            optional = field.name == "elapsed_seconds" and value is None
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (optional or number) or (field.name == "epoch" and not isinstance(value, int)):
                raise TypeError(f"{field.name} is {value!r:.40}, not a number")
        return record


def read_metrics(run_dir: Path) -> list[EpochRecord]:
    """The epochs of ``run_dir``'s metrics.jsonl; a ``CnnkitError`` naming the file if
    it is missing, damaged or empty."""
    if not run_dir.is_dir():
        raise CnnkitError(f"{run_dir}: no such run folder")
    path = run_dir / METRICS_NAME
    if not path.is_file():
        raise CnnkitError(f"{path}: not found; is {run_dir} a folder of `cnnkit train --out`?")
    try:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        history = [EpochRecord.from_dict(values) for values in lines]
    except (ValueError, TypeError, AttributeError, RecursionError) as error:  # JSON's too
        raise CnnkitError(f"{path}: not the JSON lines of epoch records ({error})") from None
    if not history:
        raise CnnkitError(f"{path}: no finished epoch yet")
    return history


def write_metrics(path: Path, history: list[EpochRecord]) -> None:
    """The whole of ``metrics.jsonl`` rewritten (a few hundred bytes an epoch), so that
    a full disk or a kill never leaves half a line in it."""
    atomic_write_text(path, "".join(json.dumps(record.to_dict()) + "\n" for record in history))
