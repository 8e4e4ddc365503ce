"""Every Python example in docs/api.md and README.md runs as written, in order, in a
folder holding what they name (a photo of a digit, ``digit.png``, and a folder of digit
images by class, ``digits/``), so that the documentation cannot go stale."""

import contextlib
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.real_images import digit_photo

ROOT = Path(__file__).resolve().parents[2]
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(document: Path) -> list[str]:
    return PYTHON_BLOCK.findall(document.read_text())


@pytest.fixture
def example_folder(tmp_path, mnist, monkeypatch) -> Path:
    _, test = mnist
    digit_photo(test.images[0, 0].numpy(), tmp_path / "digit.png")
    for position in range(50):
        label = test.classes[int(test.labels[position])]
        folder = tmp_path / "digits" / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(test.images[position, 0].numpy()).save(folder / f"{position}.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_blocks(blocks: list[str]) -> tuple[dict, str]:
    namespace: dict = {"__name__": "__docs__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, "<docs>", "exec"), namespace)  # noqa: S102
    return namespace, printed.getvalue()


def test_the_documents_have_examples() -> None:
    assert len(python_blocks(ROOT / "docs" / "api.md")) >= 6
    readme = python_blocks(ROOT / "README.md")
    assert len(readme) == 1 and len(readme[0].strip().splitlines()) <= 10


@pytest.mark.slow
def test_the_api_examples_run_and_say_what_they_claim(example_folder) -> None:
    names, printed = run_blocks(python_blocks(ROOT / "docs" / "api.md"))
    assert len(set(names["same"])) == 1  # a path, a PIL image and arrays: one class
    assert names["prediction"].label in [str(d) for d in range(10)]
    assert tuple(names["vector"].shape) == (84,) and tuple(names["vectors"].shape) == (2, 84)
    assert "1,000 test images: top-1 error" in printed
    assert "60000 340908" in printed
    assert len(names["index"]) == 50
    assert names["best"].path.startswith(str(example_folder / "digits"))
    assert printed.count("unknown model 'lenet6'") == 1
    assert "epochs=0: expected a value >= 1" in printed
    assert "an array of shape (3, 28, 28)" in printed


@pytest.mark.slow
def test_the_readme_example_runs(example_folder) -> None:
    names, printed = run_blocks(python_blocks(ROOT / "README.md"))
    assert (example_folder / "runs" / "quick" / "report.html").is_file()
    assert "10,000 test images: top-1 error" in printed
    assert "rank" in printed and "similarity" in printed
    assert names["run"].record.model == "lenet5"


# What a new user writes from docs/api.md alone: train a tiny model, predict on a PIL
# image and on a numpy array, print a summary, query an index.
NEW_USERS_SCRIPT = """
import cnnkit
import numpy as np
from PIL import Image

run = cnnkit.train("lenet5", epochs=1, train_limit=2000, test_limit=500, report=False)
photo = Image.open("digit.png")
print(run.predict(photo))
print(run.predict(np.asarray(photo.convert("L"))).label)
print(cnnkit.summary("lenet5"))
index = cnnkit.index(run, "digits", out="index")
print(index.search(photo, top=3))
"""


@pytest.mark.slow
def test_a_new_users_script_from_the_api_page_is_under_15_lines(example_folder) -> None:
    assert len(NEW_USERS_SCRIPT.strip().splitlines()) < 15
    names, printed = run_blocks([NEW_USERS_SCRIPT])
    assert printed.count("rank") >= 2 and "similarity" in printed and "340,908" in printed
    assert names["index"].path == Path("index") and len(names["index"]) == 50
