"""The data commands and the augmentation / ten-crop flags, through the real CLI."""

import shutil
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.fixture
def env(tmp_path: Path) -> dict:
    """A fresh cnnkit cache; matplotlib keeps its own (its font cache takes seconds)."""
    import matplotlib

    return {"XDG_CACHE_HOME": str(tmp_path / "cache"), "MPLCONFIGDIR": matplotlib.get_cachedir()}


def test_data_info_and_show_on_a_folder(real_image_tree: Path, tmp_path: Path, env) -> None:  # noqa: F811
    tree = Path(shutil.copytree(real_image_tree, tmp_path / "tree"))
    broken = sorted((tree / "train").rglob("*.jpg"))[0]
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    result = run_cli("data", "info", f"folder:{tree}", env=env)
    assert result.returncode == 0, result.stderr
    assert "image size     32x32, 3 channels" in result.stdout
    assert "normalisation" in result.stdout and "size on disk" in result.stdout
    # The skipped file is named in one warning line, not a traceback.
    (warning,) = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warning.startswith("cnnkit: warning:") and broken.name in warning
    out = tmp_path / "grid.png"
    result = run_cli("data", "show", f"folder:{tree}", "--out", str(out), "--count", "12", env=env)
    assert result.returncode == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_info_counts_with_thousands_separators() -> None:
    result = run_cli("data", "info", "mnist")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["images", "60,000", "training,", "10,000", "test"] in rows
    assert ["1", "1", "6,742", "1,135"] in rows  # MNIST's ones: 6,742 training, 1,135 test


def test_train_with_augment_and_tta_then_evaluate(
    real_image_tree: Path,  # noqa: F811
    tmp_path: Path,
    env,
) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "train", "lenet5-modern", "--dataset", f"folder:{real_image_tree}", "--epochs", "1",
        "--batch-size", "32", "--augment", "alexnet", "--tta", "ten-crop", "--out", str(out),
        "--no-progress", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "augment alexnet" in result.stdout
    assert "ten-crop: top-1 error" in result.stdout and "(single crop" in result.stdout
    png = tmp_path / "confusion.png"
    result = run_cli(
        "evaluate", str(out / "checkpoint.pt"), "--tta", "ten-crop", "--confusion-png", str(png),
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ten-crop: top-1 error" in result.stdout and "confusion matrix" in result.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"
