"""``evaluate`` of a trained run on a test set, with and without test-time augmentation."""

from dataclasses import dataclass
from pathlib import Path

from cnnkit.runs import load_run
from cnnkit.runtime.inference import EvalStats


@dataclass(frozen=True)
class EvalReport:
    classes: list[str]
    plain: EvalStats  # the centre (or only) crop
    tta: EvalStats | None  # with the test-time augmentation, if one was asked for


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
    run = load_run(checkpoint)
    test_set = run.test_set(dataset, data_dir, test_limit)
    augmented = run.evaluate(test_set, tta) if tta != "none" else None
    return EvalReport(test_set.classes, run.evaluate(test_set), augmented)
