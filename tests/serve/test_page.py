"""The page in headless Chromium (Playwright, the system's Chromium) against a real
``cnnkit serve`` on loopback: no console errors; clear empty states before any input; a
real MNIST test digit drawn with the mouse is classified right, with every layer's maps,
the Grad-CAM overlay that follows the class clicked, and its nearest training digits;
Clear empties every panel; a photo of a digit chosen or dropped is read; an upload's
error shows under its input; a checkerboard gets the novelty caution; at 390 px the page
does not scroll sideways; a real CIFAR-10 photo dropped on a photo model gets its top 5.
Screenshots stay in each test's ``tmp_path`` (pytest keeps the last three runs')."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.helpers.browser import chromium_browser, page_recording_errors
from tests.helpers.page import CANVAS_SPREAD, PHONE, SIDEWAYS, WIDE, ink_runs
from tests.helpers.serving import CIFAR_CLASSES, serving

SCALE = 10  # canvas pixels per MNIST pixel: the page's canvas is 280x280
LENET5_LAYERS = ["c1", "s2", "c3", "s4", "c5", "f6", "output"]  # LeCun et al. 1998, Fig. 2
LENET5_MAPS = [6, 6, 16, 16, 0, 0, 0]  # C5's maps are 1x1: a row of units, as F6's
# Whether any image on view is broken or has no picture (what an <img> without a src shows).
BROKEN_IMAGES = """() => [...document.images].filter(
    (i) => i.offsetParent !== null && !(i.complete && i.naturalWidth)).length"""
CANVAS_PIXELS = """(canvas) => Array.from(
    canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data)"""


def settled(page) -> None:
    """Wait until the page has shown the explanation it asked for last."""
    page.locator('main:not([aria-busy="true"])').wait_for()


def draw(page, image: np.ndarray) -> None:
    """Draw the digit on the canvas with mouse strokes, one per run of ink; the last
    stroke's release waits for the page's /v1/explain answer to be shown."""
    box = page.locator("#canvas").bounding_box()
    runs = ink_runs(image)
    for k, (row, first, last) in enumerate(runs):
        y = box["y"] + (row + 0.5) * SCALE * box["height"] / 280
        x0 = box["x"] + (first + 0.5) * SCALE * box["width"] / 280
        x1 = box["x"] + (last + 0.5) * SCALE * box["width"] / 280
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move(x1, y, steps=3)
        if k == len(runs) - 1:
            with page.expect_response(lambda response: "/v1/explain" in response.url):
                page.mouse.up()
            settled(page)
        else:
            page.mouse.up()


def photo_of(digit: np.ndarray) -> bytes:
    """An MNIST digit as a photo of paper would show it: dark ink on a light ground,
    224 pixels square, a JPEG."""
    paper = 235 - digit.astype(float) * 200 / 255
    picture = Image.fromarray(paper.astype(np.uint8)).resize((224, 224), Image.BILINEAR)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def checkerboard_png() -> bytes:
    """A checkerboard of 8-pixel squares: as unlike a handwritten digit as an image gets."""
    board = (np.indices((64, 64)).sum(axis=0) // 8 % 2 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(board).save(buffer, format="PNG")
    return buffer.getvalue()


def drop(page, data: bytes, name: str, kind: str) -> None:
    """Drop a file on the page's drop zone, and wait for its /v1/explain answer."""
    transfer = page.evaluate_handle(
        """([data, name, kind]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: kind }));
            return transfer;
        }""",
        [base64.b64encode(data).decode(), name, kind],
    )
    with page.expect_response(lambda response: "/v1/explain" in response.url):
        page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    settled(page)


def shown_top(page) -> list[tuple[str, float]]:
    names = page.locator("#bars .bar-name").all_text_contents()
    percents = page.locator("#bars .bar-label span:last-child").all_text_contents()
    return [(name, float(p.rstrip("%"))) for name, p in zip(names, percents, strict=True)]


def shown_layers(page) -> list[tuple[str, int, int]]:
    """(name, maps, rows of units) of each layer the page shows."""
    return page.eval_on_selector_all(
        "#layers li",
        """items => items.map((i) => [i.dataset.name, i.querySelectorAll("canvas.map").length,
            i.querySelectorAll("canvas.units").length])""",
    )


def panels_are_empty(page) -> bool:
    """Every panel shows its empty state and nothing of an earlier input."""
    empty_states = page.locator("[data-empty]:visible").count()
    return (
        page.locator("#bars li, #layers li, #neighbours figure").count() == 0
        and page.locator("#seen").is_hidden()
        and page.locator("#caution").is_hidden()
        and page.locator("#preview").is_hidden()
        and empty_states == 4  # top 5, what the network receives, every layer, neighbours
        and page.locator("#canvas").evaluate(CANVAS_SPREAD) == 0
    )


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_the_page_explains_a_drawn_digit_layer_by_layer_and_photos_too(
    serve_extra, digit_checkpoint, digit_index, digits, mnist, tmp_path
):
    _, test = mnist
    two = next(i for i, d in enumerate(digits) if d.label == 2)  # a real test "2"
    served_with_index = serving(digit_checkpoint, "--index", str(digit_index))
    with (
        served_with_index as served,
        chromium_browser(tmp_path / "profile", viewport=WIDE) as (browser),
    ):
        page, errors = page_recording_errors(browser)
        page.goto(served.url, wait_until="load")
        page.wait_for_selector("#draw:not([hidden])")
        assert "lenet5, trained on mnist" in page.text_content("#model-line")
        # Before any input: a hint in every panel, no broken image, no empty boxes.
        assert panels_are_empty(page) and page.evaluate(BROKEN_IMAGES) == 0
        assert page.locator("[data-empty]").first.text_content().startswith("Draw a digit")
        page.screenshot(path=str(tmp_path / "page-empty.png"), full_page=True)

        draw(page, test.images[two, 0].numpy())
        layers = shown_layers(page)
        page.wait_for_load_state("networkidle")  # the finished drawing's search and thumbnails
        top = shown_top(page)
        assert len(top) == 5 and top[0][0] == "2", top
        assert layers == [
            [name, maps, 0 if maps else 1]
            for name, maps in zip(LENET5_LAYERS, LENET5_MAPS, strict=True)
        ]
        assert page.locator("#net-input").evaluate("c => [c.width, c.height]") == [32, 32]
        assert page.locator("#gradcam").is_visible()
        assert page.locator("#gradcam").evaluate(CANVAS_SPREAD) > 100  # a heat map over a digit
        assert '"2"' in page.text_content("#gradcam-caption")
        captions = page.locator("#neighbours figcaption").all_text_contents()
        labels = [caption.split(":")[0] for caption in captions]
        assert labels.count("2") >= 5, labels  # a drawn 2's nearest training digits: mostly 2s
        page.screenshot(path=str(tmp_path / "page-digit.png"), full_page=True)

        # The overlay follows the class clicked in the top 5.
        before = page.locator("#gradcam").evaluate(CANVAS_PIXELS)
        runner_up = top[1][0]
        with page.expect_response(lambda response: f"class={runner_up}" in response.url):
            page.locator("#bars button").nth(1).click()
        settled(page)
        assert f'"{runner_up}"' in page.text_content("#gradcam-caption")
        assert page.locator("#gradcam").evaluate(CANVAS_PIXELS) != before
        assert page.locator("#bars button").nth(1).get_attribute("aria-pressed") == "true"
        assert shown_top(page) == top

        page.click("#clear")
        assert panels_are_empty(page)

        # A photo of a digit, chosen with the file input, then another dropped.
        seven, four = (next(i for i, d in enumerate(digits) if d.label == n) for n in (7, 4))
        with page.expect_response(lambda response: "/v1/explain" in response.url):
            page.set_input_files(
                "#file",
                files=[
                    {
                        "name": "seven.jpg",
                        "mimeType": "image/jpeg",
                        "buffer": photo_of(test.images[seven, 0].numpy()),
                    }
                ],
            )
        settled(page)
        assert [name for name, _, _ in shown_layers(page)] == LENET5_LAYERS
        assert shown_top(page)[0][0] == "7"
        assert page.eval_on_selector("#preview", "i => [i.complete, i.naturalWidth]") == [True, 224]
        drop(page, photo_of(test.images[four, 0].numpy()), "four.jpg", "image/jpeg")
        assert shown_top(page)[0][0] == "4" and len(shown_layers(page)) == 7

        # An upload's error shows under the photo input, and no earlier result stays.
        drop(page, b"not an image at all", "notes.txt", "text/plain")
        assert "notes.txt" in page.text_content("#photo-error")
        assert page.locator("#draw-error").is_hidden()
        assert page.locator("#bars li, #layers li").count() == 0

        # An image unlike any digit: answered, with the caution above the bars.
        drop(page, checkerboard_png(), "board.png", "image/png")
        assert page.locator("#caution").is_visible() and page.locator("#photo-error").is_hidden()
        assert "looks unlike the training images" in page.text_content("#caution")

        # On a phone: every panel full, and no sideways scroll.
        page.set_viewport_size(PHONE)
        drop(page, photo_of(test.images[seven, 0].numpy()), "seven.jpg", "image/jpeg")
        page.wait_for_load_state("networkidle")
        page.locator("#neighbours img").nth(7).wait_for()
        assert page.evaluate(SIDEWAYS) == 0
        assert page.locator("#photo-error").is_hidden()
        page.screenshot(path=str(tmp_path / "page-phone.png"), full_page=True)
    # The one console error: the browser's own line for the refused upload's 415.
    assert len(errors) == 1 and "415" in errors[0], errors
    assert Image.open(tmp_path / "page-digit.png").size[0] >= 1000
    assert Image.open(tmp_path / "page-phone.png").size[0] == 390


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_a_dropped_cifar_photo_gets_its_top_5_once_the_token_is_given(
    serve_extra, photo_checkpoint, real_image_tree, tmp_path
):
    photo = sorted((real_image_tree / "test").rglob("*.*"))[0]
    token = "page-token-93b1"
    served_with_token = serving(photo_checkpoint, "--token", token)
    with (
        served_with_token as served,
        chromium_browser(tmp_path / "profile", viewport=WIDE) as (browser),
    ):
        page, errors = page_recording_errors(browser)
        page.goto(served.url, wait_until="load")
        page.wait_for_selector("#token-form:not([hidden])")  # /v1/model answered 401
        page.fill("#token", token)
        page.click("#token-form button")
        page.wait_for_selector("#photo:not([hidden])")
        assert page.locator("#draw").is_hidden()  # a photo model: nothing to draw
        assert page.locator("#number-panel").is_hidden()  # nor a number to read
        assert page.locator("[data-empty]").first.text_content().startswith("Give a photo")
        drop(page, photo.read_bytes(), photo.name, "image/jpeg")
        top = shown_top(page)
        preview = page.eval_on_selector("#preview", "i => [i.complete, i.naturalWidth]")
        seen = page.locator("#net-input").evaluate("c => c.width")
        first_maps = page.locator("#layers li").first.locator("canvas.map").count()
        note = page.text_content("#novelty-note")
        page.screenshot(path=str(tmp_path / "page-photo.png"), full_page=True)
    assert len(errors) == 1 and "401" in errors[0]  # the first /v1/model, without the token
    assert [name for name, _ in top] and all(name in CIFAR_CLASSES for name, _ in top)
    assert len({name for name, _ in top}) == 5
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert sum(p for _, p in top) <= 100.5
    assert preview == [True, 32] and seen == 32 and first_maps == 16  # ResNet-8's conv1: 16
    # Its training photos are not at hand (a folder that is gone): no verdict, a note.
    assert note.startswith("no novelty score:") and "no train/ folder" in note
    shot = np.asarray(Image.open(tmp_path / "page-photo.png").convert("L"), dtype=float)
    assert shot.std() > 10  # a page with content, not a blank one
