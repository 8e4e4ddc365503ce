"""Training with augmentation and ten-crop: an interrupted run resumes to the same weights."""

from pathlib import Path

import pytest
import torch

from cnnkit.config import Recipe, TrainOptions
from cnnkit.runs import EpochRecord
from tests.helpers import trained


def _options(out: Path, resume: bool = False) -> TrainOptions:
    return TrainOptions(
        model="lenet5-modern",
        dataset="mnist",
        recipe=Recipe(epochs=2, batch_size=64, lr=0.05, augment="crop,pca"),
        out=out,
        resume=resume,
        train_limit=512,
        test_limit=200,
        report=False,
        tta="ten-crop",
    )


def test_resume_with_augmentation_matches_uninterrupted_run(tmp_path: Path) -> None:
    whole = trained(_options(tmp_path / "whole"))
    assert whole.final_tta is not None and whole.final_tta.images == 200

    def stop_after_first(record: EpochRecord) -> None:
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trained(_options(tmp_path / "cut"), on_epoch=stop_after_first)
    resumed = trained(_options(tmp_path / "cut", resume=True))
    weights = [torch.load(r.checkpoint, weights_only=True)["model_state"] for r in (whole, resumed)]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    assert resumed.final_tta.top1_error == whole.final_tta.top1_error
