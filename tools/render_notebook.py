"""Execute notebooks/lecture12.ipynb and write docs/lecture12.html.

Run ``python tools/render_notebook.py`` from the repository root (the ``notebook`` or
``test`` extra installed) to regenerate the page: it executes the notebook at its full
sizes, a few minutes on two CPU cores, or at its tiny ones with ``--quick``
(``CNNKIT_NOTEBOOK_QUICK=1``). The notebook runs in its own folder, on the ``python3``
kernel of this interpreter, and is rendered with nbconvert's HTML exporter (the ``lab``
template, images embedded); a progress bar shows as its final state, and one that
cleared itself not at all. The notebook file is not changed: it stays committed
without outputs. ``tests/notebooks/test_lecture_notebook.py`` executes it the same way.
"""

import argparse
import base64
import io
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "lecture12.ipynb"
PAGE = ROOT / "docs" / "lecture12.html"
QUICK_VARIABLE = "CNNKIT_NOTEBOOK_QUICK"  # the notebook's first code cell reads it
CELL_TIMEOUT = 600  # seconds; the full mode's longest cell trains two networks


def execute(
    notebook: Path = NOTEBOOK, quick: bool = False, timeout: float = CELL_TIMEOUT
) -> nbformat.NotebookNode:
    """The notebook at ``notebook`` with the outputs of running it top to bottom in a
    fresh kernel (its folder the working directory); nbclient's ``CellExecutionError``
    names the cell that failed."""
    executed = nbformat.read(notebook, as_version=4)
    environment = {**os.environ, QUICK_VARIABLE: "1" if quick else "0"}
    client = NotebookClient(
        executed,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
        coalesce_streams=True,  # one stream per cell, a progress bar's redraws (\r) merged
    )
    client.execute(env=environment)
    for cell in executed.cells:
        if cell.cell_type == "code":
            cell.outputs = [output for output in cell.outputs if not _is_blank(output)]
    return executed


def _is_blank(output: nbformat.NotebookNode) -> bool:
    """A stream that holds only whitespace: what a progress bar leaves that clears itself
    when it closes (``leave=False``)."""
    return output.output_type == "stream" and not output.text.strip()


def render_html(executed: nbformat.NotebookNode) -> str:
    """The executed notebook as one HTML page, its images embedded, each figure stored
    in 256 colours (a third of the bytes: the page stays well under a megabyte)."""
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                output.data["image/png"] = compact_png(output.data["image/png"])
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    page, _ = exporter.from_notebook_node(executed)
    return page


def compact_png(encoded: str) -> str:
    """A base64 PNG again in base64, quantised to a palette of 256 colours."""
    picture = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    stored = io.BytesIO()
    picture.quantize(colors=256).save(stored, format="PNG", optimize=True)
    return base64.b64encode(stored.getvalue()).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (CNNKIT_NOTEBOOK_QUICK=1) [full sizes]"
    )
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help=f"[{NOTEBOOK}]")
    parser.add_argument("--out", type=Path, default=PAGE, help=f"the HTML page [{PAGE}]")
    parser.add_argument(
        "--timeout", type=float, default=CELL_TIMEOUT, help=f"seconds per cell [{CELL_TIMEOUT}]"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    page = render_html(execute(args.notebook.resolve(), args.quick, args.timeout))
    args.out.write_text(page, encoding="utf-8")
    mode = "quick" if args.quick else "full"
    print(f"{args.out}: {mode} mode, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
