"""The results page of ``search query --out``: self-contained, every thumbnail loads in
headless Chromium with no console errors, and the PNG grid beside it has a cell per hit."""

from PIL import Image

from tests.helpers import run_cli
from tests.helpers.browser import chromium_browser, page_recording_errors

TOP = 5


def test_results_page_renders_in_chromium(photo_run, real_image_tree, tmp_path):
    out = tmp_path / "index"
    built = run_cli(
        "index", "build", str(photo_run), str(real_image_tree / "train"), "--out", str(out)
    )
    assert built.returncode == 0, built.stderr
    queries = sorted((real_image_tree / "test").rglob("*.jpg"))[::20][:3]
    page_path = tmp_path / "results.html"
    result = run_cli("search", "query", str(out), *map(str, queries), "--top", str(TOP),
                     "--out", str(page_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote {page_path} and {page_path.with_suffix('.png')}" in result.stdout
    html = page_path.read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html

    with chromium_browser(tmp_path / "profile", viewport={"width": 1000, "height": 800}) as browser:
        page, errors = page_recording_errors(browser, failed_requests=True)
        page.goto(page_path.as_uri(), wait_until="load")
        sizes = page.eval_on_selector_all(
            "img", "images => images.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        captions = page.eval_on_selector_all("figcaption", "c => c.map(e => e.innerText)")
    assert errors == []
    assert len(sizes) == len(queries) * (TOP + 1)
    assert all(complete and width == 96 and height == 96 for complete, width, height in sizes)
    assert sum(c.startswith("query") for c in captions) == len(queries)
    grid = Image.open(page_path.with_suffix(".png"))
    assert grid.format == "PNG" and grid.width > (TOP + 1) * 96 and grid.height > len(queries) * 96
