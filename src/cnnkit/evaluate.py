"""``evaluate`` of a trained run on a test set, with and without test-time augmentation."""

from dataclasses import dataclass
from pathlib import Path

from cnnkit.config import TTA_MODES, is_count
from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.runs import Run, load_run
from cnnkit.runtime.inference import EvalStats


@dataclass(frozen=True, repr=False)
class EvalReport:
    classes: list[str]
    plain: EvalStats  # the centre (or only) crop
    tta: EvalStats | None  # with the test-time augmentation, if one was asked for

    @property
    def top1_error(self) -> float:
        """Of the single view (``tta`` holds the augmented one's)."""
        return self.plain.top1_error

    @property
    def top5_error(self) -> float:
        return self.plain.top5_error

    def __repr__(self) -> str:
        lines = [error_line(self.plain)]
        if self.tta is not None:
            lines.append(f"with test-time augmentation: {error_line(self.tta)}")
        return "\n".join(lines)


def error_line(stats: EvalStats) -> str:
    """Top-1 and top-5 error, as every surface states them."""
    return (
        f"{stats.images:,} test images: top-1 error {100 * stats.top1_error:.2f}%, "
        f"top-5 error {100 * stats.top5_error:.2f}%"
    )


def evaluate_checkpoint(
    checkpoint: Path,
    dataset: str | None = None,
    data_dir: Path | None = None,
    test_limit: int | None = None,
    tta: str = "none",
) -> EvalReport:
    """Errors, per-class accuracy and confusion of CHECKPOINT on a test set (its own
    data set's by default), once on the single centre view and, with ``tta``, once
    more with it."""
    return evaluate_run(load_run(checkpoint), dataset, data_dir, test_limit, tta)


def evaluate_run(
    run: Run,
    dataset: str | None = None,
    data_dir: Path | None = None,
    test_limit: int | None = None,
    tta: str = "none",
) -> EvalReport:
    """``evaluate_checkpoint`` of a loaded run."""
    if tta not in TTA_MODES:
        raise UnknownNameError.of("test-time augmentation", tta, TTA_MODES)
    if test_limit is not None and not is_count(test_limit):
        raise ConfigError(
            f"test_limit={test_limit!r}: expected a whole number of images, 1 or more"
        )
    test_set = run.test_set(dataset, data_dir, test_limit)
    augmented = run.evaluate(test_set, tta) if tta != "none" else None
    return EvalReport(test_set.classes, run.evaluate(test_set), augmented)
