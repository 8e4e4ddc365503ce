"""``evaluate`` of a checkpoint with and without test-time augmentation."""

from dataclasses import dataclass
from pathlib import Path

from cnnkit.data import load_dataset
from cnnkit.errors import CheckpointError
from cnnkit.train.checkpoint import load_model
from cnnkit.train.loop import EvalStats, evaluate
from cnnkit.train.run import fit_to_model


@dataclass(frozen=True)
class EvalReport:
    classes: list[str]
    plain: EvalStats  # the centre (or only) crop
    tta: EvalStats | None  # with the test-time augmentation, if one was asked for


def evaluate_with_tta(
    checkpoint: Path,
    dataset: str | None = None,
    data_dir: Path | None = None,
    test_limit: int | None = None,
    tta: str = "none",
) -> EvalReport:
    """Errors, per-class accuracy and confusion of CHECKPOINT on a test set, once on the
    single centre view and, with ``tta``, once more with it."""
    model, state = load_model(checkpoint)
    _, test_set = load_dataset(dataset or state["dataset"], data_dir)
    test_set = test_set.subset(test_limit or len(test_set))
    if test_set.classes != list(state["classes"]):
        raise CheckpointError(
            f"{checkpoint}: trained on classes {state['classes'][:5]}..., "
            f"which {dataset!r} does not have"
        )
    common = {
        "mean": tuple(state["mean"]),
        "std": tuple(state["std"]),
        "num_classes": len(test_set.classes),
    }
    plain = evaluate(model, fit_to_model(test_set.images, model), test_set.labels, **common)
    augmented = None
    if tta != "none":
        images = fit_to_model(test_set.images, model, crop=False)
        augmented = evaluate(model, images, test_set.labels, tta=tta, **common)
    return EvalReport(test_set.classes, plain, augmented)
