"""The page's wide canvas in headless Chromium against a real ``cnnkit serve`` on
loopback: a number written with the mouse from three real MNIST test digits' strokes is
read as written, with a box over each digit and every class's probability at each
position; Clear empties it; at 390 px the canvas fits and the page does not scroll sideways."""

import numpy as np
import pytest

from tests.helpers.browser import chromium_browser, page_recording_errors
from tests.helpers.page import CANVAS_SPREAD, PHONE, SIDEWAYS, WIDE, ink_runs
from tests.helpers.serving import serving

SCALE = 7  # canvas pixels per MNIST pixel: a digit 196 pixels tall on the 240-pixel canvas
WIDTH = 900  # the wide canvas's own pixels
LEFTS = (40, 320, 600)  # where each digit's 28x28 square starts on the canvas, apart
TOP = 22


def write(page, images: list[np.ndarray]) -> None:
    """Write the digits side by side on the wide canvas with mouse strokes, one per run
    of ink of each digit, as a hand writes a number."""
    canvas = page.locator("#number-canvas")
    canvas.scroll_into_view_if_needed()  # the mouse writes where the viewport shows it
    box = canvas.bounding_box()
    ratio = box["width"] / WIDTH

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * ratio, box["y"] + y * ratio

    for image, left in zip(images, LEFTS, strict=True):
        for row, first, last in ink_runs(image):
            y = TOP + (row + 0.5) * SCALE
            page.mouse.move(*at(left + (first + 0.5) * SCALE, y))
            page.mouse.down()
            page.mouse.move(*at(left + (last + 0.5) * SCALE, y), steps=2)
            page.mouse.up()


def read_text(page, expected: str) -> str:
    """The number the page shows once it has read what was written last (or its text
    after a few seconds, when it does not read ``expected``)."""
    settled = f"""() => document.getElementById("number-text").textContent === "{expected}"
        && document.getElementById("number-panel-body").getAttribute("aria-busy") === "false\""""
    try:
        page.wait_for_function(settled, timeout=10_000)
    except Exception:  # Playwright's TimeoutError: the assertion shows what was read
        pass
    return page.text_content("#number-text")


@pytest.mark.slow  # starts a server and a browser: seconds
def test_a_number_written_from_real_mnist_strokes_is_read_on_the_wide_canvas(
    serve_extra, digit_checkpoint, mnist, tmp_path
):
    _, test = mnist
    images = [test.images[k, 0].numpy() for k in range(3)]  # the first test digits: 7, 2, 1
    with (
        serving(digit_checkpoint) as served,
        chromium_browser(tmp_path / "profile", viewport=WIDE) as browser,
    ):
        page, errors = page_recording_errors(browser)
        page.goto(served.url, wait_until="load")
        page.wait_for_selector("#number-panel:not([hidden])")
        assert page.locator("#number-empty").is_visible()
        assert page.locator("#number-read").is_hidden()

        write(page, images)
        assert read_text(page, "721") == "721"
        assert page.locator("#number-overlay").evaluate(CANVAS_SPREAD) > 100  # boxes drawn
        table = page.locator("#number-probs table")
        assert table.locator("tr").count() == 11  # a heading, then classes 0-9
        heading = table.locator("tr").first.locator("th").all_text_contents()
        assert heading == ["class", "1", "2", "3"]
        assert table.locator("td.read").count() == 3  # the class read at each position
        assert "% sure" in page.text_content("#number-status")
        page.screenshot(path=str(tmp_path / "number.png"), full_page=True)

        page.click("#number-clear")
        assert page.text_content("#number-text") == ""
        assert page.locator("#number-empty").is_visible()
        assert page.locator("#number-overlay").evaluate(CANVAS_SPREAD) == 0
        assert page.locator("#number-canvas").evaluate(CANVAS_SPREAD) == 0

        # On a phone the canvas fits the width, and the page does not scroll sideways.
        page.set_viewport_size(PHONE)
        assert page.evaluate(SIDEWAYS) == 0
        assert page.locator("#number-canvas").bounding_box()["width"] <= PHONE["width"]
    assert errors == []
