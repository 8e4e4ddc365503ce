"""Image files that cost or blocked more than an image should: a JPEG whose header claims
9,000 x 9,000 pixels (600 bytes, a gigabyte of preparation), a FIFO given as an image
(the reader blocked until killed), and formats the server refuses (TIFF, BMP) that the
command line decoded. Each is now bounded or one line."""

import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnkit.runs.run as run_module
from cnnkit.data import image_files
from cnnkit.data.held import held_pixels
from cnnkit.data.image_files import read_pixels
from cnnkit.runs import load_run
from cnnkit.transforms import digits
from cnnkit.transforms.resize import decode_side
from tests.helpers import assert_one_line_error, run_cli, run_cli_process

BOMB_SIDE = 9_000  # 81 million pixels: under MAX_PIXELS, so decoded whole before
HANG = 60  # seconds after which a command on a FIFO counts as hung


def bomb_jpeg(path: Path, side: int = BOMB_SIDE, mode: str = "RGB") -> Path:
    """A real 16x16 JPEG whose frame header (SOF0) is rewritten to claim side x side
    pixels: a few hundred bytes that libjpeg decodes at the claimed size."""
    buffer = io.BytesIO()
    Image.new(mode, (16, 16), 250).save(buffer, "JPEG", quality=75)
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc0")  # marker, length (2), precision (1), height, width
    struct.pack_into(">HH", data, frame + 5, side, side)
    path.write_bytes(bytes(data))
    assert Image.open(path).size == (side, side)
    return path


@pytest.mark.parametrize(
    ("channels", "least_side"),
    [(1, digits.MAX_SIDE), (3, digits.MAX_SIDE), (3, decode_side((32, 32)))],
)
def test_a_jpeg_claiming_81_million_pixels_decodes_bounded(tmp_path, channels, least_side):
    bomb = bomb_jpeg(tmp_path / "bomb.jpg")
    pixels = read_pixels(bomb, channels, least_side=least_side)
    # Reduced by a whole factor: both sides at least least_side, less than twice it.
    assert pixels.shape[2] == channels
    assert all(least_side <= side < 2 * least_side for side in pixels.shape[:2])


def test_held_images_are_bounded_as_files_are(tmp_path):
    bomb = bomb_jpeg(tmp_path / "bomb.jpg", mode="L")
    with Image.open(bomb) as opened:
        given = [bomb, opened, np.full((4_000, 3_000), 200, np.uint8)]
        held = held_pixels(given, 1, least_side=digits.MAX_SIDE)
        assert opened.size == (BOMB_SIDE, BOMB_SIDE)  # the caller's image is left as it was
    for pixels in held.pixels:
        assert all(digits.MAX_SIDE <= side < 2 * digits.MAX_SIDE for side in pixels.shape[:2])


def test_the_prediction_path_reads_the_jpeg_bomb_bounded(tmp_path, digit_run, monkeypatch):
    """What ``cnnkit predict``, search and the server decode (the run layer's file path)
    and what a notebook's ``Run.predict`` reads: the pixels the digit steps are given."""
    given: list[tuple[int, ...]] = []

    def spy(gray: np.ndarray) -> np.ndarray:
        given.append(gray.shape)
        return digits.mnist_style(gray)

    monkeypatch.setattr(run_module, "mnist_style", spy)
    bomb = bomb_jpeg(tmp_path / "bomb.jpg")
    run = load_run(digit_run, device="cpu")
    assert run.read_file(bomb).shape == (1, 28, 28)
    assert run.read_images([bomb]).images.shape == (1, 1, 28, 28)
    assert len(given) == 2 and all(max(shape) < 2 * digits.MAX_SIDE for shape in given)


def digit_photos(folder: Path, mnist) -> list[Path]:
    """Real MNIST test digits as photos at normal sizes (28 to 512 pixels): dark ink on
    tinted paper, as JPEG and PNG."""
    _, test = mnist
    paths = []
    for i, side in enumerate((28, 64, 150, 280, 400, 512)):
        ink = test.images[i, 0].numpy().astype(np.float32) / 255
        rgb = np.stack([235 - 200 * ink, 225 - 190 * ink, 200 - 160 * ink], -1)
        photo = Image.fromarray(rgb.astype(np.uint8))
        picture = photo.resize((side, side), Image.Resampling.BICUBIC)
        paths.append(folder / f"digit{i}.{'jpg' if i % 2 else 'png'}")
        picture.save(paths[-1])
    return paths


def test_digit_photos_of_normal_sizes_are_prepared_as_before(tmp_path, mnist, monkeypatch):
    """The bound changes nothing below it: the pixels the digit steps make of a whole
    decoded photo (as before: Pillow's decoding, then the steps with no size limit)."""
    photos = digit_photos(tmp_path, mnist)
    prepared = [
        digits.mnist_style(read_pixels(path, 1, least_side=digits.MAX_SIDE)[:, :, 0])
        for path in photos
    ]
    monkeypatch.setattr(digits, "MAX_SIDE", 10**9)
    for path, pixels in zip(photos, prepared, strict=True):
        with Image.open(path) as photo:
            whole = np.asarray(photo.convert("L"))
        assert np.array_equal(pixels, digits.mnist_style(whole)), path.name


@pytest.fixture(scope="module")
def fifo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fifo") / "digit.png"
    os.mkfifo(path)
    return path


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, digit_run) -> Path:
    out = tmp_path_factory.mktemp("index") / "mnist"
    built = run_cli("index", "build", str(digit_run), "--dataset", "mnist", "--limit", "64",
                    "--backend", "exact", "--out", str(out))  # fmt: skip
    assert built.returncode == 0, built.stderr
    return out


def test_predict_on_a_fifo_is_one_line(fifo, digit_run):
    result = run_cli_process("predict", str(digit_run), str(fifo), timeout=HANG)
    assert_one_line_error(result, str(fifo), "not a regular file")
    assert result.returncode == 1


def test_search_query_on_a_fifo_is_one_line(fifo, small_index):
    result = run_cli_process("search", "query", str(small_index), str(fifo), timeout=HANG)
    assert_one_line_error(result, str(fifo), "not a regular file")
    assert result.returncode == 1


def test_a_folder_given_as_an_image_is_one_line(tmp_path, digit_run):
    result = run_cli("predict", str(digit_run), str(tmp_path))
    assert_one_line_error(result, str(tmp_path), "not a regular file (a folder)")


@pytest.mark.parametrize(("fmt", "suffix"), [("TIFF", "tiff"), ("BMP", "bmp"), ("TIFF", "png")])
def test_formats_the_server_refuses_are_refused_by_predict(tmp_path, digit_run, fmt, suffix):
    """A real TIFF or BMP of a digit, whatever its name says, is one line and exit 1."""
    path = tmp_path / f"digit.{suffix}"
    Image.new("L", (28, 28), 0).save(path, format=fmt)
    result = run_cli("predict", str(digit_run), str(path))
    assert_one_line_error(result, str(path), "not a PNG, JPEG, GIF or WebP file")
    assert result.returncode == 1


def test_a_webp_is_read_as_the_server_reads_it(tmp_path, digit_run):
    path = tmp_path / "digit.webp"
    Image.new("L", (28, 28), 0).save(path, format="WEBP", lossless=True)
    result = run_cli("predict", str(digit_run), str(path))
    assert result.returncode == 0, result.stderr


def test_the_server_and_the_reader_accept_the_same_formats():
    """Real files of every format Pillow writes here: the reader and the server's check
    accept the same ones (PNG, JPEG, GIF, WebP), as the same format, and refuse the rest."""
    from cnnkit.errors import UnsupportedImageError
    from cnnkit.serve import limits

    def verdict(check, data: bytes) -> str | None:
        try:
            return check(data)
        except UnsupportedImageError:
            return None

    accepted = {}
    for fmt in ("PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP", "PPM", "ICO", "TGA"):
        stored = io.BytesIO()
        Image.new("RGB", (16, 16), (200, 30, 30)).save(stored, format=fmt)
        data = stored.getvalue()
        by_reader = verdict(lambda d: image_files.image_format(io.BytesIO(d), "x"), data)
        by_server = verdict(lambda d: limits.sniff_format(d, "x"), data)
        assert by_reader == by_server, fmt
        accepted[fmt] = by_reader
    kept = [fmt for fmt, found in accepted.items() if found == fmt]
    assert kept == ["PNG", "JPEG", "GIF", "WEBP"]
