"""The honest checks of explanations on whole test sets, for docs/explain.md: pointing
(Grad-CAM's share of mass on the digit's ink beside a uniform map's, over every
correctly classified MNIST test digit), Adebayo et al.'s sanity checks (cascading
randomisation layer by layer, and a network that learnt random labels, with a control
trained the same way on the true labels), the novelty score's AUROC against
Fashion-MNIST and grayscale CIFAR-10 test photos with its false alarms on MNIST, and what
an explanation costs beside a prediction.

    python benchmarks/explain_checks.py RUN [RUN ...]   # runs trained on MNIST

Each RUN is a checkpoint (or its folder), e.g. from ``cnnkit train lenet5`` and
``cnnkit train lenet5-modern``.
"""

import argparse
import io
import os
import statistics
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnkit.data import load_dataset, load_test_split
from cnnkit.explain_checks import (
    auroc,
    cascade,
    explanation_maps,
    pointing,
    rank_correlations,
    trained_on_labels,
)
from cnnkit.runs import Run, load_run
from cnnkit.runs.explain import explain_batch

CIFAR_ARCHIVE = (
    Path(__file__).resolve().parents[1].parent / "shared/data/cifar10-jpeg/cifar10-jpeg.tar.gz"
)
SANITY_IMAGES = 1000
RANDOM_LABEL_IMAGES, RANDOM_LABEL_EPOCHS = 1000, 30


def print_pointing(run: Run, test) -> None:
    found = pointing(run, test.images, test.labels)
    cam, grad, uniform = found.gradcam, found.gradient, found.uniform
    print(f"pointing over {found.digits:,} correctly classified test digits (ink >= 128, "
          f"dilated 2 px): Grad-CAM {cam:.3f}, gradient {grad:.3f}, uniform {uniform:.3f}; "
          f"Grad-CAM / uniform = {cam / uniform:.2f}x "
          f"({'meets' if cam >= 1.5 * uniform else 'misses'} 1.5x)")  # fmt: skip


def sanity(run: Run, train, test) -> None:
    images = test.images[:SANITY_IMAGES]
    trained = explanation_maps(run, images)
    targets = torch.from_numpy(trained.predicted)
    print(f"cascading randomisation from the top, {SANITY_IMAGES} test digits "
          "(mean Spearman rank correlation with the trained network's maps):")  # fmt: skip
    print("| randomised down to | Grad-CAM | gradient |\n|---|---:|---:|")
    for name, randomised in cascade(run):
        maps = explanation_maps(randomised, images, targets)
        cam = rank_correlations(trained.gradcam, maps.gradcam).mean()
        grad = rank_correlations(trained.gradient, maps.gradient).mean()
        print(f"| {name} | {cam:.3f} | {grad:.3f} |")
    count = RANDOM_LABEL_IMAGES
    shuffled = torch.randint(0, 10, (count,), generator=torch.Generator().manual_seed(1))
    print(f"networks trained by one plain loop on {count} training digits, "
          f"{RANDOM_LABEL_EPOCHS} epochs:")  # fmt: skip
    print("| labels | learnt | Grad-CAM | gradient |\n|---|---:|---:|---:|")
    for what, labels in (("random", shuffled), ("true (control)", train.labels[:count])):
        other, learnt = trained_on_labels(run, train.images[:count], labels, RANDOM_LABEL_EPOCHS)
        maps = explanation_maps(other, images, targets)
        cam = rank_correlations(trained.gradcam, maps.gradcam).mean()
        grad = rank_correlations(trained.gradient, maps.gradient).mean()
        print(f"| {what} | {learnt:.3f} | {cam:.3f} | {grad:.3f} |")


def cifar_test_photos(limit: int) -> list[bytes]:
    """The first ``limit`` CIFAR-10 test JPEGs of ../shared's archive, as file bytes."""
    photos = []
    with tarfile.open(CIFAR_ARCHIVE) as tar:
        for member in tar:
            if member.isfile() and member.name.startswith("test/"):
                photos.append(tar.extractfile(member).read())
                if len(photos) == limit:
                    break
    return photos


def novelty(run: Run, test, photos: list[bytes]) -> None:
    detector = run.novelty

    def scores(images: torch.Tensor) -> np.ndarray:
        return detector.scores(run.logits(images)).numpy()

    def doubt(images: torch.Tensor) -> np.ndarray:
        """The softmax's own doubt: 1 - its largest probability."""
        return 1 - run.logits(images).softmax(dim=1).amax(dim=1).numpy()

    digits = scores(test.images)
    fashion_images = load_test_split("fashion-mnist").images
    clothes = scores(fashion_images)
    gray = torch.from_numpy(
        np.stack(
            [
                np.asarray(Image.open(io.BytesIO(p)).convert("L").resize((28, 28), Image.BILINEAR))
                for p in photos
            ]
        )
    )[:, None]
    as_stored = scores(gray)
    as_uploaded = scores(
        torch.stack([run.read_file(io.BytesIO(p), f"photo {k}") for k, p in enumerate(photos)])
    )
    alarms = (digits > detector.threshold).mean()
    print(f"novelty (threshold {detector.threshold:.1f}): false alarms on the "
          f"{len(digits):,} MNIST test digits {alarms:.2%}")  # fmt: skip
    doubts = {
        "Fashion-MNIST test": doubt(fashion_images),
        "CIFAR-10 test photos, grayscale 28x28": doubt(gray),
    }
    digit_doubt = doubt(test.images)
    print("| unfamiliar set | images | AUROC | flagged | AUROC of 1 - max softmax |")
    print("|---|---:|---:|---:|---:|")
    for name, values in (
        ("Fashion-MNIST test", clothes),
        ("CIFAR-10 test photos, grayscale 28x28", as_stored),
        ("the same photos as uploaded (the digit preparation)", as_uploaded),
    ):
        flagged = (values > detector.threshold).mean()
        baseline = f"{auroc(digit_doubt, doubts[name]):.4f}" if name in doubts else "-"
        print(f"| {name} | {len(values):,} | {auroc(digits, values):.4f} | {flagged:.1%} "
              f"| {baseline} |")  # fmt: skip


def cost(run: Run, test) -> None:
    """Milliseconds for one image: its logits, and its explanation (no SmoothGrad, as the
    server computes it; and with SmoothGrad's 16 copies)."""
    image = test.images[:1]
    timings: dict[str, list[float]] = {"predict": [], "explain": [], "explain + SmoothGrad": []}
    calls = {
        "predict": lambda: run.logits(image),
        "explain": lambda: explain_batch(run, image, ["x"], smoothgrad_samples=0),
        "explain + SmoothGrad": lambda: explain_batch(run, image, ["x"]),
    }
    for _ in range(3):
        for call in calls.values():
            call()  # warm
    for _ in range(50):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            timings[name].append(1000 * (time.perf_counter() - start))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(" | ".join(f"{name} p50 {ms:.2f} ms" for name, ms in medians.items())
          + f"; explain / predict = {medians['explain'] / medians['predict']:.1f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    train, test = load_dataset("mnist")
    photos = cifar_test_photos(10_000)
    for path in args.runs:
        run = load_run(path)
        history = run.history
        accuracy = 1 - history[-1].test_top1_error if history else float("nan")
        print(f"\n## {run.record.model}: {path} ({len(history)} epochs, test accuracy "
              f"{accuracy:.2%}); {os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip
        print_pointing(run, test)
        sanity(run, train, test)
        novelty(run, test, photos)
        cost(run, test)


if __name__ == "__main__":
    main()
