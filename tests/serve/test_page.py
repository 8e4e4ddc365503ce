"""The page in headless Chromium (Playwright, Debian's Chromium) against a real
``cnnkit serve``: no console errors; a real MNIST test digit drawn with the mouse is
classified right and, with an index, its nearest training digits shown; a real
CIFAR-10 photo dropped on the page gets its top 5. Screenshots stay in each test's
``tmp_path`` (pytest keeps the last three runs' folders)."""

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import require_module, require_path
from tests.helpers.serving import CIFAR_CLASSES, serving

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INK = 128  # an MNIST pixel at least this bright is drawn
SCALE = 10  # canvas pixels per MNIST pixel: the page's canvas is 280x280


@contextmanager
def page_at(url: str, tmp_path: Path) -> Iterator[tuple]:
    """A fresh Chromium page at ``url`` and the list its errors are collected in."""
    sync_api = require_module("playwright.sync_api", "test")
    chromium = require_path(Path("/usr/bin/chromium"), "Debian's chromium package")
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1150, "height": 800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("requestfailed", lambda request: errors.append(request.url[:80]))
            page.goto(url, wait_until="load")
            yield page, errors
        finally:
            browser.close()


def ink_runs(image: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, first column, last column) of each horizontal run of ink in a digit."""
    runs = []
    for row, line in enumerate(image >= INK):
        columns = np.flatnonzero(line)
        if len(columns):
            breaks = np.flatnonzero(np.diff(columns) > 1)
            starts = [columns[0], *columns[breaks + 1]]
            ends = [*columns[breaks], columns[-1]]
            runs += [(row, int(s), int(e)) for s, e in zip(starts, ends, strict=True)]
    return runs


def draw(page, image: np.ndarray) -> None:
    """Draw the digit on the canvas with mouse strokes, one per run of ink; the last
    stroke's release waits for the page's /v1/explain answer."""
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
        else:
            page.mouse.up()
    page.wait_for_load_state("networkidle")


def shown_top(page) -> list[tuple[str, float]]:
    names = page.locator("#bars .bar-name").all_text_contents()
    percents = page.locator("#bars .bar-label span:last-child").all_text_contents()
    return [(name, float(p.rstrip("%"))) for name, p in zip(names, percents, strict=True)]


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_a_drawn_mnist_digit_is_classified_right_and_its_neighbours_shown(
    serve_extra, digit_checkpoint, digit_index, digits, mnist, tmp_path
):
    _, test = mnist
    index = next(i for i, d in enumerate(digits) if d.label == 2)  # a real test "2"
    image = test.images[index, 0].numpy()
    served_with_index = serving(digit_checkpoint, "--index", str(digit_index))
    with served_with_index as served, page_at(served.url, tmp_path) as (page, errors):
        page.wait_for_selector("#draw:not([hidden])")
        assert "lenet5, trained on mnist" in page.text_content("#model-line")
        draw(page, image)
        top = shown_top(page)
        seen = page.eval_on_selector("#net-input", "i => [i.complete, i.naturalWidth]")
        maps = page.locator("#maps img").count()
        # (Not wait_for_function: its polling evaluates a string, which the CSP refuses.)
        page.locator("#neighbours img").nth(7).wait_for()
        page.wait_for_load_state("networkidle")
        thumbnails = page.eval_on_selector_all(
            "#neighbours img", "images => images.map((i) => i.complete && i.naturalWidth)"
        )
        labels = [
            caption.split(":")[0]
            for caption in page.locator("#neighbours figcaption").all_text_contents()
        ]
        page.screenshot(path=str(tmp_path / "page-digit.png"), full_page=True)
    assert errors == []
    assert len(top) == 5 and top[0][0] == "2", top
    assert seen == [True, 32] and maps == 6  # LeNet-5's 32x32 input and C1's six maps
    assert thumbnails == [96] * 8  # each neighbour's thumbnail, fetched by its item id
    assert labels.count("2") >= 5, labels  # a drawn 2's nearest training digits: mostly 2s
    assert Image.open(tmp_path / "page-digit.png").size[0] >= 1000


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_a_dropped_cifar_photo_gets_its_top_5_once_the_token_is_given(
    serve_extra, photo_checkpoint, real_image_tree, tmp_path
):
    photo = sorted((real_image_tree / "test").rglob("*.*"))[0]
    encoded = base64.b64encode(photo.read_bytes()).decode()
    token = "page-token-93b1"
    served_with_token = serving(photo_checkpoint, "--token", token)
    with served_with_token as served, page_at(served.url, tmp_path) as (page, errors):
        page.wait_for_selector("#token-form:not([hidden])")  # /v1/model answered 401
        page.fill("#token", token)
        page.click("#token-form button")
        page.wait_for_selector("#photo:not([hidden])")
        transfer = page.evaluate_handle(
            """([data, name]) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const transfer = new DataTransfer();
                transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
                return transfer;
            }""",
            [encoded, photo.name],
        )
        with page.expect_response(lambda response: "/v1/explain" in response.url):
            page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
        # (Not wait_for_function: when it has to poll, it evaluates a string, which the
        # page's CSP refuses; the fifth bar appearing is the same wait.)
        page.locator("#bars li").nth(4).wait_for()
        top = shown_top(page)
        preview = page.eval_on_selector("#preview", "i => [i.complete, i.naturalWidth]")
        seen = page.eval_on_selector("#net-input", "i => i.naturalWidth")
        maps = page.locator("#maps img").count()
        page.screenshot(path=str(tmp_path / "page-photo.png"), full_page=True)
    assert len(errors) == 1 and "401" in errors[0]  # the first /v1/model, without the token
    assert [name for name, _ in top] and all(name in CIFAR_CLASSES for name, _ in top)
    assert len({name for name, _ in top}) == 5
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert sum(p for _, p in top) <= 100.5
    assert preview == [True, 32] and seen == 32 and maps == 16  # ResNet-8's conv1: 16 maps
    shot = np.asarray(Image.open(tmp_path / "page-photo.png").convert("L"), dtype=float)
    assert shot.std() > 10  # a page with content, not a blank one
