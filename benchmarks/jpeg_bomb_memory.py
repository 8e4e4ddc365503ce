"""Peak memory of ``cnnkit predict`` on a JPEG bomb against a normal digit.

The bomb is a real 16x16 JPEG (335 bytes) whose frame header is rewritten to claim
9,000 x 9,000 pixels: under cnnkit's pixel limit (89,478,485), so it is decoded, and
libjpeg fills the missing data in. The normal digit is an MNIST test digit as a
28x28 PNG. Each command runs three times in its own process; the largest peak RSS of
each is printed with the difference (the target: the bomb at most 300 MB above the
normal digit). Without a checkpoint, LeNet-5 is trained for one epoch of 1,000 images
first (the predictions are not the point, the preparation is)::

    python benchmarks/jpeg_bomb_memory.py [CHECKPOINT]
"""

import io
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from startup_memory import measure  # the script beside this one

BOMB_SIDE = 9_000  # 81 million pixels: under MAX_PIXELS, so decoded
TARGET_MB = 300


def bomb_jpeg(side: int = BOMB_SIDE) -> bytes:
    """A real RGB JPEG of 16x16 pixels whose SOF0 header claims ``side`` x ``side``."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (250, 250, 250)).save(buffer, "JPEG", quality=75)
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc0")  # SOF0: marker, length (2), precision (1), height, width
    struct.pack_into(">HH", data, frame + 5, side, side)
    return bytes(data)


def digit_png() -> bytes:
    from cnnkit.data import load_dataset

    _, test = load_dataset("mnist")
    buffer = io.BytesIO()
    Image.fromarray(255 - test.images[0, 0].numpy()).save(buffer, "PNG")  # dark ink on paper
    return buffer.getvalue()


def trained_checkpoint(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "cnnkit", "train", "lenet5", "--epochs", "1",
         "--train-limit", "1000", "--test-limit", "100", "--no-report", "--no-progress",
         "--out", str(folder)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return folder / "checkpoint.pt"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        checkpoint = Path(sys.argv[1]) if len(sys.argv) > 1 else trained_checkpoint(folder / "run")
        (folder / "bomb.jpg").write_bytes(bomb_jpeg())
        (folder / "digit.png").write_bytes(digit_png())
        results = {}
        for name in ("digit.png", "bomb.jpg"):
            predict = [sys.executable, "-m", "cnnkit", "predict", str(checkpoint)]
            results[name] = measure([*predict, str(folder / name)])
    (digit_s, digit_mb), (bomb_s, bomb_mb) = results["digit.png"], results["bomb.jpg"]
    size = len(bomb_jpeg())
    print(f"{'cnnkit predict on':42} {'seconds':>8} {'peak MB':>8}")
    print(f"{'a 28x28 digit (PNG)':42} {digit_s:8.2f} {digit_mb:8.0f}")
    print(f"{f'a {size}-byte JPEG claiming {BOMB_SIDE:,} x {BOMB_SIDE:,}':42} "
          f"{bomb_s:8.2f} {bomb_mb:8.0f}")  # fmt: skip
    difference = bomb_mb - digit_mb
    verdict = "within" if difference <= TARGET_MB else "over"
    print(f"the bomb: {difference:+.0f} MB above the digit ({verdict} the {TARGET_MB} MB target)")
    print("(best seconds and largest peak RSS of 3 runs each)")


if __name__ == "__main__":
    main()
