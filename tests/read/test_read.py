"""Reading numbers written with real MNIST test digits, finding digits on a page, the
detection scores, the generator's determinism, hostile images and the commands' JSON."""

import json

import numpy as np
import pytest
from PIL import Image

from cnnkit.errors import ImageError
from cnnkit.read import find_images, read_images
from cnnkit.read.detection import score_detections
from cnnkit.read.ink import find_ink
from cnnkit.read.results import DigitBox
from cnnkit.read.strings import Distortions, Spacing, write_digits, write_page, write_string
from cnnkit.runs import load_run
from tests.helpers import assert_one_line_error, run_cli
from tests.helpers.hostile_files import bomb_png

CALM = Distortions(slant=0.0, stroke=0.0, scale=(1.0, 1.0), drift=1)  # still on paper


@pytest.fixture(scope="module")
def run(digit_run):
    return load_run(digit_run, "cpu")


@pytest.fixture(scope="module")
def test_digits(mnist):
    return mnist[1]


def test_a_string_with_gaps_is_read_exactly_with_a_box_on_each_digit(run, test_digits):
    rng = np.random.default_rng(0)
    written = write_digits(test_digits, [0, 1, 2, 3, 4], Spacing.GAP, rng, CALM)
    assert written.text == "72104"  # the first five test digits
    reading = read_images(run, written.image)
    assert reading.text == "72104"
    for digit, box in zip(reading.digits, written.boxes, strict=True):
        assert abs(digit.box[0] - box[0]) <= 2 and abs(digit.box[2] - box[2]) <= 2


def test_a_touching_pair_is_read_by_at_least_one_reader(run, test_digits):
    written = write_digits(test_digits, [0, 1], Spacing.TOUCHING, np.random.default_rng(0), CALM)
    assert find_ink(written.image).count == 1  # the two digits are one piece of ink
    texts = {read_images(run, written.image, reader).text for reader in ("segment", "sdnn")}
    assert "72" in texts


def test_the_generator_is_seeded_and_deterministic(test_digits):
    first = write_string(test_digits, 5, Spacing.OVERLAPPING, np.random.default_rng(7))
    again = write_string(test_digits, 5, Spacing.OVERLAPPING, np.random.default_rng(7))
    other = write_string(test_digits, 5, Spacing.OVERLAPPING, np.random.default_rng(8))
    assert np.array_equal(first.image, again.image) and first.text == again.text
    assert first.text != other.text or not np.array_equal(first.image, other.image)
    page = write_page(test_digits, np.random.default_rng(1))
    assert 5 <= len(page.text) <= 20 and len(page.boxes) == len(page.text)


def test_detection_scores_of_a_known_case() -> None:
    truth = [((0, 0, 10, 10), "1"), ((20, 0, 30, 10), "2")]
    found = [
        DigitBox((0, 0, 10, 10), "1", 0.9),  # right
        DigitBox((21, 0, 31, 10), "2", 0.8),  # IoU 9 x 10 / 110 = 0.82: right
        DigitBox((50, 50, 60, 60), "2", 0.95),  # nothing there, ranked first for class 2
    ]
    score = score_detections([(found, truth)])
    assert score.precision == pytest.approx(2 / 3) and score.recall == 1.0
    # class 1: AP 1; class 2: a false positive first, then the hit: precision 1/2 at recall 1
    assert score.mean_average_precision == pytest.approx((1.0 + 0.5) / 2)


def test_every_digit_on_a_page_is_found(run, test_digits):
    page = write_page(test_digits, np.random.default_rng(2))
    found = find_images(run, page.image)
    truth = list(zip(page.boxes, page.text, strict=True))
    assert score_detections([(found.digits, truth)]).recall >= 0.8


def test_images_without_digits_are_empty_readings_with_a_reason(run) -> None:
    blank = np.full((40, 120), 230, np.uint8)
    assert read_images(run, blank).reason.startswith("no ink")
    assert read_images(run, np.zeros((1, 1), np.uint8)).reason.startswith("no ink")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)
    reading = find_images(run, noise)
    assert reading.text == "" and "not digits written on paper" in reading.reason


def test_a_photo_is_an_empty_reading_with_a_reason(run, real_image_tree) -> None:
    photo = real_image_tree / "train" / "airplane" / "0000.jpg"
    if not photo.is_file():  # the tree was written from MNIST digits: no photo in it
        pytest.skip("CIFAR-10's JPEGs are not in ../shared/data")
    for reading in (read_images(run, photo), find_images(run, photo)):
        assert reading.text == "" and "a photo or a drawing" in reading.reason


def test_a_decompression_bomb_is_one_line(run, tmp_path, digit_run):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    with pytest.raises(ImageError, match="decompression bomb"):
        read_images(run, bomb)
    assert_one_line_error(run_cli("read", str(digit_run), str(bomb)), "bomb.png")


def test_the_commands_print_the_json_the_issue_asks_for(digit_run, test_digits, tmp_path):
    written = write_digits(test_digits, [0, 1, 2], Spacing.GAP, np.random.default_rng(0), CALM)
    path = tmp_path / "zip.png"
    Image.fromarray(written.image).save(path)
    out = str(tmp_path / "b.png")
    result = run_cli("read", str(digit_run), str(path), "--format", "json", "--out", out)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["text"] == "721" and set(found) == {"text", "confidence", "digits"}
    assert [set(d) for d in found["digits"]] == [{"box", "class", "probability"}] * 3
    assert all(len(d["box"]) == 4 for d in found["digits"]) and (tmp_path / "b.png").is_file()
    located = json.loads(run_cli("find", str(digit_run), str(path), "--format", "json").stdout)
    assert located["text"] == "721"
