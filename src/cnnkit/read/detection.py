"""Detection measured as object detection is (PASCAL VOC): a found box is right when its
class is right and it overlaps a true box of that class by IoU >= 0.5, each true box
matched once, most probable first; precision and recall over all classes, and average
precision per class (the area under its precision-recall curve, all points) averaged
over the classes present: mAP@0.5."""

from dataclasses import dataclass

import numpy as np

from cnnkit.read.results import Box, DigitBox

IOU = 0.5


@dataclass(frozen=True)
class DetectionScore:
    precision: float
    recall: float
    mean_average_precision: float
    found: int  # boxes reported
    true: int  # boxes there were


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (x1, y1 exclusive)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def score_detections(pages: list[tuple[list[DigitBox], list[tuple[Box, str]]]]) -> DetectionScore:
    """Each page's found digits against its true (box, class) pairs."""
    hits: dict[str, list[tuple[float, bool]]] = {}
    totals: dict[str, int] = {}
    for found, truth in pages:
        for _, label in truth:
            totals[label] = totals.get(label, 0) + 1
        matched = [False] * len(truth)
        for digit in sorted(found, key=lambda d: -d.probability):
            overlaps = [
                iou(digit.box, box) if label == digit.label and not matched[i] else 0.0
                for i, (box, label) in enumerate(truth)
            ]
            best = int(np.argmax(overlaps)) if overlaps else -1
            right = best >= 0 and overlaps[best] >= IOU
            if right:
                matched[best] = True
            hits.setdefault(digit.label, []).append((digit.probability, right))
    found_count = sum(len(h) for h in hits.values())
    correct = sum(right for h in hits.values() for _, right in h)
    true_count = sum(totals.values())
    precisions = [average_precision(hits.get(label, []), total) for label, total in totals.items()]
    return DetectionScore(
        precision=correct / found_count if found_count else 0.0,
        recall=correct / true_count if true_count else 0.0,
        mean_average_precision=float(np.mean(precisions)) if precisions else 0.0,
        found=found_count,
        true=true_count,
    )


def average_precision(hits: list[tuple[float, bool]], total: int) -> float:
    """The area under the precision-recall curve of one class (VOC 2010 on: every point,
    precision made non-increasing from the right)."""
    if total == 0 or not hits:
        return 0.0
    right = np.array([r for _, r in sorted(hits, key=lambda h: -h[0])], float)
    true_positives = np.cumsum(right)
    recall = np.concatenate([[0.0], true_positives / total, [1.0]])
    precision = np.concatenate([[1.0], true_positives / np.arange(1, len(right) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))
