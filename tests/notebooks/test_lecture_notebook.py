"""notebooks/lecture12.ipynb, the lecture as a notebook: executed in quick mode as
``tools/render_notebook.py`` executes it (once for the module), its outputs hold
LeNet-5's size table as ``cnnkit.summary`` prints and renders it, and the lecture's
comparison; the page rendered from it, and the committed ``docs/lecture12.html``, show
that table, in Chromium too; the committed notebook has no outputs."""

import re
from pathlib import Path

import pytest

import cnnkit
from tests.helpers import require_path
from tests.helpers.browser import chromium_browser
from tests.helpers.real_images import CIFAR_JPEG_ARCHIVE
from tools.render_notebook import NOTEBOOK, PAGE, QUICK_VARIABLE, execute, render_html

LENET5_ROWS = ["input", "c1", "s2", "c3", "s4", "c5", "f6", "output", "total"]
FIGURES = 8  # digits, photos, two learning curves, augmentation, a photo, two searches


@pytest.fixture(scope="module")
def lenet5_table() -> tuple[str, str]:
    """LeNet-5's size table as text and as HTML, as a notebook shows ``cnnkit.summary``."""
    summary = cnnkit.summary("lenet5")
    return repr(summary), summary._repr_html_()


@pytest.fixture(scope="module")
def executed():
    """The notebook run top to bottom in quick mode in a fresh kernel."""
    require_path(CIFAR_JPEG_ARCHIVE, "the CIFAR-10 JPEGs that the notebook's photos come from")
    return execute(NOTEBOOK, quick=True, timeout=120)


@pytest.fixture(scope="module")
def rendered(executed, tmp_path_factory) -> Path:
    """The executed notebook as tools/render_notebook.py renders it."""
    page = tmp_path_factory.mktemp("page") / "lecture12.html"
    page.write_text(render_html(executed), encoding="utf-8")
    return page


def results(executed, mime: str) -> list[str]:
    """Every output of type ``mime`` (execute results and displays), in order."""
    return [
        output["data"][mime]
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if mime in output.get("data", {})
    ]


def html_table(html: str) -> str:
    (table,) = re.findall(r"<table>.*?</table>", html, flags=re.DOTALL)
    return table


def as_exported(html: str) -> str:
    """``html`` as nbconvert's HTMLExporter writes it into a page: it passes the whole page
    through BeautifulSoup, which writes a text of only whitespace as one space (LeNet-5's
    total row has two blank cells) and ``&#x27;`` as ``'``."""
    from bs4 import BeautifulSoup  # nbconvert's own dependency

    return str(BeautifulSoup(html, features="html.parser"))


def assert_page_holds(page: str, summary_html: str) -> None:
    """The page holds the summary's table and notes as cnnkit wrote them, but for the
    exporter's pass (and that pass changes nothing in the table but its blank cells)."""
    table = html_table(summary_html)
    assert re.sub(r"<td>\s+</td>", "<td> </td>", table) == as_exported(table)
    assert as_exported(table) in page
    assert as_exported(summary_html) in page


def test_committed_notebook_has_no_outputs() -> None:
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "no code cells"
    for cell in code:
        assert cell.outputs == [], f"cell {cell.id} has outputs"
        assert cell.execution_count is None, f"cell {cell.id} has an execution count"
        assert "execution" not in cell.metadata, f"cell {cell.id} has execution times"
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}  # no widget state
    # Its first code cell reads the quick mode's variable, the one the tool sets.
    assert f'os.environ.get("{QUICK_VARIABLE}")' in code[0].source


@pytest.mark.slow
def test_every_cell_runs_without_an_error(executed) -> None:
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    errors = [output for cell in code for output in cell.outputs if output.output_type == "error"]
    assert errors == []
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert "quick mode" in code[0].outputs[0].text
    assert len(results(executed, "image/png")) == FIGURES


@pytest.mark.slow
def test_outputs_hold_the_lenet5_table_as_text_and_html(executed, lenet5_table) -> None:
    text, html = lenet5_table
    assert text.startswith("layer ") and "16.9% of the weights" in text
    assert results(executed, "text/plain").count(text) == 1
    assert results(executed, "text/html").count(html) == 1
    # The two are one output: the result of the cell whose last line is the summary.
    (cell,) = [c for c in executed.cells if c.source.strip() == 'cnnkit.summary("lenet5")']
    (output,) = cell.outputs
    assert output.output_type == "execute_result"
    assert output.data["text/plain"] == text and output.data["text/html"] == html


@pytest.mark.slow
def test_a_digit_is_explained_inline(executed) -> None:
    """``run.explain``'s result draws every layer's maps and Grad-CAM in the notebook."""
    (cell,) = [c for c in executed.cells if c.get("id") == "explain-a-digit"]
    (output,) = cell.outputs
    html = output.data["text/html"]
    assert html.count("data:image/png;base64,") == 1 and "Grad-CAM on c3" in html
    rows = re.findall(r"<tr><td>\s*(\w+)\s*</td>", html)
    assert rows == ["c1", "s2", "c3", "s4", "c5", "f6", "output"]


@pytest.mark.slow
def test_outputs_hold_the_lecture_comparison(executed) -> None:
    comparison = cnnkit.compare(["lenet1", "lenet5", "alexnet"])
    assert results(executed, "text/html").count(comparison._repr_html_()) == 1
    assert repr(comparison) in results(executed, "text/plain")


@pytest.mark.slow
def test_rendered_page_holds_the_lenet5_table(rendered, lenet5_table) -> None:
    _, html = lenet5_table
    page = rendered.read_text(encoding="utf-8")
    assert_page_holds(page, html)
    assert 'src="data:image/png;base64,' in page  # figures embedded, not files beside it


def test_committed_page_holds_the_lenet5_table(lenet5_table) -> None:
    _, html = lenet5_table
    page = PAGE.read_text(encoding="utf-8")
    assert_page_holds(page, html)  # else the page is stale: python tools/render_notebook.py
    assert page.count('src="data:image/png;base64,') >= FIGURES


TABLE_ROWS = """tables => tables.map(table => ({
    rows: [...table.querySelectorAll("tr")].map(row =>
        [...row.querySelectorAll("th, td")].map(cell => cell.textContent.trim())),
    height: table.getBoundingClientRect().height,
    after: table.nextElementSibling ? table.nextElementSibling.textContent : "",
}))"""


@pytest.mark.slow
def test_pages_show_the_lenet5_table_in_chromium(rendered, tmp_path: Path) -> None:
    blocked: list[str] = []
    found = {}
    with chromium_browser(tmp_path / "profile", viewport={"width": 1100, "height": 900}) as browser:
        # the page's MathJax and require.js come from a CDN: offline here
        browser.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("file:", "data:"))
                else (blocked.append(route.request.url), route.abort())
            ),
        )
        page = browser.new_page()
        for name, path in (("rendered", rendered), ("committed", PAGE)):
            page.goto(path.as_uri(), wait_until="load")
            found[name] = page.eval_on_selector_all("table", TABLE_ROWS)
    assert all(url.startswith("https://") for url in blocked)
    for name, tables in found.items():
        lenet5 = [t for t in tables if [row[0] for row in t["rows"][1:]] == LENET5_ROWS]
        assert len(lenet5) == 1, f"{name}: no table with LeNet-5's layers"
        (table,) = lenet5
        assert table["height"] > 100  # laid out, not hidden
        header, *rows = table["rows"]
        assert header == [
            "layer", "kind", "output", "units", "weights", "biases", "connections", "+ biases"
        ]  # fmt: skip
        total = dict(zip(header, rows[-1], strict=True))
        assert total["units"] == "9,118" and total["+ biases"] == "340,908"
        parameters = int(total["weights"].replace(",", "")) + int(total["biases"].replace(",", ""))
        assert parameters == 60_000  # LeCun et al. 1998, Sec. II-B: 60,000 trainable parameters
        assert "60,000 parameters" in table["after"]
        assert "340,908 with biases" in table["after"]
