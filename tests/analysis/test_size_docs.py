"""docs/model-sizes.md is what ``python tools/model_sizes_doc.py`` generates now."""

from pathlib import Path

from tools.model_sizes_doc import render_docs

DOCS = Path(__file__).parents[2] / "docs" / "model-sizes.md"


def test_model_sizes_page_is_current() -> None:
    assert DOCS.read_text() == render_docs(), (
        "docs/model-sizes.md is stale; run python tools/model_sizes_doc.py"
    )
