"""Reading numbers and finding digits, on strings and pages written with MNIST's test
digits (``cnnkit.read.strings``): both readers side by side per regime, detection, and
the default reader's speed against ``run.predict`` on the same five digits.

    python benchmarks/reading.py CHECKPOINT [--strings 10000] [--pages 1000]
        [--examples docs/reading]   # also draw successes and failures of each reader
        [--readers segment] [--regimes gap,touching]   # a part of it
        [--pages 0] [--timings 0]   # no detection, no timing
"""

import argparse
import time
from pathlib import Path

import numpy as np

import cnnkit
from cnnkit.data import load_dataset
from cnnkit.progress import bar
from cnnkit.read.detection import score_detections
from cnnkit.read.drawing import drawn
from cnnkit.read.strings import Spacing, write_page, write_string
from cnnkit.transforms.digits import mnist_style


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--strings", type=int, default=10_000, help="strings per regime")
    parser.add_argument("--pages", type=int, default=1_000, help="detection pages")
    parser.add_argument("--timings", type=int, default=200, help="fields timed")
    parser.add_argument("--examples", type=Path, help="folder for example PNGs")
    parser.add_argument("--digits", type=int, help="read exactly this many digits (a zip's 5)")
    parser.add_argument("--readers", default="segment,sdnn", help="comma-separated")
    parser.add_argument("--regimes", default=",".join(Spacing.names()), help="comma-separated")
    options = parser.parse_args()
    readers, regimes = options.readers.split(","), options.regimes.split(",")
    run = cnnkit.load(options.checkpoint, device="cpu")
    _, test = load_dataset("mnist")
    alone = single_accuracy(run, test)
    print(f"single test digits read alone (predict): {alone:.4f}; ^5 = {alone**5:.4f}")
    gap: dict[str, float] = {}
    for spacing in (Spacing(name) for name in regimes):
        rng = np.random.default_rng(0)
        written = [write_string(test, 5, spacing, rng) for _ in range(options.strings)]
        if spacing is Spacing.GAP:  # their boxes do not overlap: each can be cut out alone
            cut_out = distorted_accuracy(run, written)
            print(
                f"gap strings' digits cut out by their true boxes and read alone: "
                f"{cut_out:.4f}; ^5 = {cut_out**5:.4f}"
            )
        for reader in readers:
            readings = [
                run.read(w.image, reader, options.digits) for w in bar(written, desc=reader)
            ]
            right = [r.text == w.text for r, w in zip(readings, written, strict=True)]
            accuracy = sum(right) / len(written)
            if options.examples:
                examples(options.examples, f"{spacing.value}-{reader}", written, readings, right)
            if spacing is Spacing.GAP:
                gap[reader] = accuracy
                target = f"target >= 0.95 x {alone:.4f}^5 = {0.95 * alone**5:.4f}"
            elif reader in gap:
                target = f"{accuracy / max(gap[reader], 1e-9):.2f} of the gap regime's"
            else:
                target = "no gap regime measured to compare with"
            print(
                f"{spacing.value:12s} {reader:8s} string accuracy {accuracy:.4f} "
                f"({len(written):,} strings; {target})"
            )
    if options.pages:
        detection(run, test, options.pages)
    if options.timings:
        speed(run, test, options.timings)


def examples(folder: Path, name: str, written, readings, right) -> None:
    """The first two strings read right and the first two read wrong, stacked, with
    the boxes and classes the reader gave (text written -> text read on each)."""
    from PIL import Image, ImageDraw

    good = [i for i, ok in enumerate(right) if ok][:2]
    chosen = good + [i for i, ok in enumerate(right) if not ok][:2]
    pictures = []
    for i in chosen:
        picture = drawn(written[i].image, readings[i])
        label = f"{written[i].text} -> {readings[i].text or '-'}"
        ImageDraw.Draw(picture).text((2, 2), label, fill=(0, 0, 200))
        pictures.append(picture)
    width = max((p.width for p in pictures), default=1)
    sheet = Image.new("RGB", (width, sum(p.height for p in pictures) or 1), "white")
    top = 0
    for picture in pictures:
        sheet.paste(picture, (0, top))
        top += picture.height
    folder.mkdir(parents=True, exist_ok=True)
    sheet.quantize(16).save(folder / f"{name}.png", optimize=True)


def single_accuracy(run, test) -> float:
    predicted = run.loaded.logits(test.images).argmax(dim=1)
    return float((predicted == test.labels).float().mean())


def distorted_accuracy(run, written) -> float:
    """Each generated digit cut out by its true box and read alone, as predict reads it."""
    from cnnkit.read.ink import find_ink
    from cnnkit.read.segment import classify

    images, labels = [], []
    for w in written[:2000]:
        ink = find_ink(w.image)
        for (x0, y0, x1, y1), label in zip(w.boxes, w.text, strict=True):
            crop = np.rint(255 * ink.strength[y0:y1, x0:x1]).astype(np.uint8)
            images.append(mnist_style(np.pad(crop, 2)))
            labels.append(int(label))
    probs = classify(run.loaded, images)
    return float((probs.argmax(axis=1) == np.array(labels)).mean())


def detection(run, test, pages: int) -> None:
    rng = np.random.default_rng(0)
    scored = []
    for _ in bar(range(pages), desc="pages"):
        page = write_page(test, rng)
        scored.append((run.find(page.image).digits, list(zip(page.boxes, page.text, strict=True))))
    score = score_detections(scored)
    print(
        f"detection on {pages} pages ({score.true} digits): precision {score.precision:.4f}, "
        f"recall {score.recall:.4f}, mAP@0.5 {score.mean_average_precision:.4f} (target >= 0.95)"
    )


def speed(run, test, count: int) -> None:
    rng = np.random.default_rng(1)
    written = [write_string(test, 5, Spacing.GAP, rng) for _ in range(count)]
    run.read(written[0].image), run.predict([test.images[0, 0].numpy()] * 5)  # warm
    read_times, predict_times = [], []
    for w in written:
        digits = [test.images[i, 0].numpy() for i in w.sources]
        start = time.perf_counter()
        run.predict(digits)
        predict_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        run.read(w.image)
        read_times.append(time.perf_counter() - start)
    for name, times in (
        ("run.predict, 5 images", predict_times),
        ("run.read, 5-digit field", read_times),
    ):
        p50, p99 = (1e3 * np.percentile(times, q) for q in (50, 99))
        print(f"{name:26s} p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    ratio = np.percentile(read_times, 50) / np.percentile(predict_times, 50)
    print(f"read / predict (p50): {ratio:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
