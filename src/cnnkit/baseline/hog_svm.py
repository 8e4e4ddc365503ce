"""HOG descriptors fed to a linear SVM: the hand-designed pipeline the nets replaced.

Dalal and Triggs, "Histograms of oriented gradients for human detection", CVPR
2005: gradient orientations binned in small cells, normalised over overlapping
blocks of cells (L2-Hys), concatenated into one descriptor. A linear SVM on such
descriptors (with richer codings) won the ImageNet challenge of 2010 (Lin et al.,
"Large-scale image classification", CVPR 2011). Needs the ``[classic]`` extra:
scikit-image for HOG, scikit-learn for the SVM.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.data import load_dataset
from cnnkit.errors import import_extra
from cnnkit.files import atomic_write_text
from cnnkit.metrics import topk_correct


@dataclass(frozen=True)
class HogSettings:
    orientations: int = 9  # Dalal and Triggs 2005, Sec. 6.3: 9 unsigned bins
    pixels_per_cell: int = 4  # 7x7 cells on a 28x28 digit (their 8x8 px on 64x128 people)
    cells_per_block: int = 2  # 2x2 cells per block, Sec. 6.4
    svm_c: float = 0.1  # LinearSVC's C: the hinge-loss weight against the L2 penalty


@dataclass(frozen=True)
class BaselineResult:
    model: str
    dataset: str
    train_images: int
    test_images: int
    features: int  # length of one descriptor
    parameters: int  # the SVM's: a weight per class and feature, a bias per class
    connections: int  # the SVM's multiply-adds for one image (HOG's own work not counted)
    top1_error: float
    top5_error: float
    train_seconds: float  # descriptors of the training split plus the SVM fit
    test_seconds: float  # descriptors of the test split plus the decision function
    settings: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _require_classic() -> tuple[Callable[..., Any], Callable[..., Any]]:
    purpose = "the HOG+SVM baseline"
    features = import_extra("skimage.feature", "classic", purpose)
    return features.hog, import_extra("sklearn.svm", "classic", purpose).LinearSVC


def hog_features(images: torch.Tensor, settings: HogSettings = HogSettings()) -> np.ndarray:
    """(N, D) float32 HOG descriptors of uint8 images (N, C, H, W)."""
    hog, _ = _require_classic()
    cell, block = settings.pixels_per_cell, settings.cells_per_block
    pixels = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    return np.stack(
        [
            hog(
                image,
                orientations=settings.orientations,
                pixels_per_cell=(cell, cell),
                cells_per_block=(block, block),
                block_norm="L2-Hys",
                channel_axis=-1,
            )
            for image in pixels
        ]
    ).astype(np.float32)


def train_hog_svm(
    dataset: str = "mnist",
    data_dir: Path | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    settings: HogSettings = HogSettings(),
) -> BaselineResult:
    """Fit a one-vs-rest linear SVM on HOG descriptors; its test-set top-1 and top-5 error."""
    _, linear_svc = _require_classic()
    train_set, test_set = load_dataset(dataset, data_dir)
    train_set = train_set.subset(train_limit or len(train_set))
    test_set = test_set.subset(test_limit or len(test_set))

    start = time.perf_counter()
    svm = linear_svc(C=settings.svm_c, dual=False)
    svm.fit(hog_features(train_set.images, settings), train_set.labels.numpy())
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    test_features = hog_features(test_set.images, settings)
    scores = torch.from_numpy(svm.decision_function(test_features)).float()  # (N, K)
    test_seconds = time.perf_counter() - start
    top1, top5 = topk_correct(scores, test_set.labels, (1, 5))
    count = len(test_set.labels)
    return BaselineResult(
        model="hog-svm",
        dataset=dataset,
        train_images=len(train_set.labels),
        test_images=count,
        features=test_features.shape[1],
        parameters=int(svm.coef_.size + svm.intercept_.size),
        connections=int(svm.coef_.size),
        top1_error=1 - top1 / count,
        top5_error=1 - top5 / count,
        train_seconds=train_seconds,
        test_seconds=test_seconds,
        settings=asdict(settings),
    )


def save_result(result: BaselineResult, out: Path) -> Path:
    """The result as ``out/result.json``."""
    return atomic_write_text(out / "result.json", json.dumps(result.to_dict(), indent=2) + "\n")
