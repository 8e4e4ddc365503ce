"""Classical baselines: hand-designed descriptors and a linear classifier."""

from cnnkit.baseline.hog_svm import (
    BaselineResult,
    HogSettings,
    hog_features,
    save_result,
    train_hog_svm,
)

__all__ = ["BaselineResult", "HogSettings", "hog_features", "save_result", "train_hog_svm"]
