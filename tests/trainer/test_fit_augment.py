"""``fit`` with augmentation and ten-crop: an interrupted run resumes to the same weights."""

from pathlib import Path

import pytest
import torch

from cnnkit.config import Recipe, TrainConfig
from cnnkit.train.fit import fit


def _config(out: Path, resume: bool = False) -> TrainConfig:
    return TrainConfig(
        model="lenet5-modern",
        dataset="mnist",
        recipe=Recipe(epochs=2, batch_size=64, lr=0.05, augment="crop,pca"),
        out=out,
        resume=resume,
        train_limit=512,
        test_limit=200,
        progress=False,
        tta="ten-crop",
    )


def test_resume_with_augmentation_matches_uninterrupted_run(tmp_path: Path) -> None:
    whole = fit(_config(tmp_path / "whole"))
    assert whole.final_tta is not None and whole.final_tta.images == 200

    def stop_after_first(record: dict) -> None:
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(_config(tmp_path / "cut"), on_epoch=stop_after_first)
    resumed = fit(_config(tmp_path / "cut", resume=True))
    weights = [torch.load(r.checkpoint, weights_only=True)["model_state"] for r in (whole, resumed)]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    assert resumed.final_tta.top1_error == whole.final_tta.top1_error
