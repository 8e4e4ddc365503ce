"""In Chromium, the HTML that Jupyter shows for a size summary, a prediction, a list of
predictions and a search's neighbours is a table with the right rows; the neighbours'
pictures load, and an item whose file is gone says so in its cell."""

from pathlib import Path

import pytest

import cnnkit
from tests.helpers.browser import chromium_browser
from tests.helpers.real_images import digit_photo

# The wrapper Jupyter puts around a cell's rich output, reduced to what matters here.
CELL = '<div class="jp-OutputArea-output" data-mime-type="text/html" id="{id}">{html}</div>'


def jupyter_page(outputs: dict[str, str]) -> str:
    cells = "".join(CELL.format(id=key, html=value) for key, value in outputs.items())
    return f"<!doctype html><html><head><title>cells</title></head><body>{cells}</body></html>"


@pytest.mark.slow
def test_rich_outputs_render_as_tables_in_chromium(digit_run, mnist, tmp_path) -> None:
    _, test = mnist
    run = cnnkit.load(digit_run)
    photo = digit_photo(test.images[0, 0].numpy(), tmp_path / "seven.png")
    label = test.classes[int(test.labels[0])]
    folder = tmp_path / "digits" / label
    folder.mkdir(parents=True)
    for position in (0, 17, 26):  # sevens
        digit_photo(test.images[position, 0].numpy(), folder / f"{position}.png", scale=1)
    index = cnnkit.index(run, tmp_path / "digits", out=tmp_path / "index")
    neighbours_html = index.search(photo, top=3)._repr_html_()
    moved = index.search(photo, top=1)[0]
    Path(moved.path).unlink()
    after_the_move = index.search(photo, top=1)._repr_html_()
    assert "<img" not in after_the_move and f"{moved.path}" in after_the_move.split("<td>")[2]
    page_file = tmp_path / "cells.html"
    page_file.write_text(
        jupyter_page(
            {
                "summary": cnnkit.summary("lenet5")._repr_html_(),
                "one": run.predict(photo)._repr_html_(),
                "several": run.predict([photo, photo], top=3)._repr_html_(),
                "neighbours": neighbours_html,
            }
        )
    )
    script = """id => [...document.querySelectorAll(`#${id} table tr`)].map(
        row => [...row.children].map(cell => cell.textContent.trim()))"""
    with chromium_browser(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        tables = {key: page.evaluate(script, key) for key in ("summary", "one", "several")}
        tables["neighbours"] = page.evaluate(script, "neighbours")
        pictures = page.eval_on_selector_all(
            "#neighbours img", "images => images.map(i => [i.complete, i.naturalWidth])"
        )
        heading = page.inner_text("#one p")
    summary = tables["summary"]
    assert [row[0] for row in summary[1:]] == [
        "input", "c1", "s2", "c3", "s4", "c5", "f6", "output", "total"
    ]  # fmt: skip
    assert summary[-1][3:] == ["9,118", "59,752", "248", "332,824", "340,908"]
    assert summary[0][:4] == ["layer", "kind", "output", "units"]
    one = tables["one"]
    assert one[0] == ["rank", "class", "probability"] and len(one) == 1 + 5
    assert one[1][1] == label and heading == f"{photo}: {label}"
    several = tables["several"]
    assert several[0] == ["image", "#1", "#2", "#3"]
    assert [row[0] for row in several[1:]] == [str(photo)] * 2
    neighbours = tables["neighbours"]
    assert neighbours[0] == ["rank", "image", "similarity", "label", "path"]
    assert [row[3] for row in neighbours[1:]] == [label] * 3
    assert all(Path(row[4]).parent == folder for row in neighbours[1:])
    assert pictures == [[True, 96]] * 3
