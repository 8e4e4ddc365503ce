"""Classify image files with a trained run: the top classes of each, with probabilities.

Each file is prepared by the run layer's one file-to-pixels path (``Run.prepare_files``):
as MNIST prepared its digits for digit models, resized and cropped as in training for
the others.
"""

from dataclasses import dataclass
from pathlib import Path

from cnnkit.runs import load_run


@dataclass(frozen=True)
class Prediction:
    path: Path
    top: list[tuple[str, float]]  # (class name, probability), most probable first


def predict_files(checkpoint: Path, paths: list[Path], top: int = 5) -> list[Prediction]:
    run = load_run(checkpoint)
    probs = run.logits(run.prepare_files(paths)).softmax(dim=1)
    best = probs.topk(min(top, probs.shape[1]), dim=1)
    return [
        Prediction(path, [(run.classes[i], p) for p, i in zip(values, indices, strict=True)])
        for path, values, indices in zip(
            paths, best.values.tolist(), best.indices.tolist(), strict=True
        )
    ]
