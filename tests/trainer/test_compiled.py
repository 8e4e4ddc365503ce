"""`--compile` through the real CLI: torch.compile where a compiler works, and a
one-line fallback to eager training where none does."""

import json
import shutil

import pytest

from tests.helpers import run_cli_process

SHORT_RUN = (
    "train", "lenet5-modern", "--epochs", "1", "--train-limit", "2048", "--batch-size", "32",
    "--test-limit", "500",
    "--no-report", "--no-progress", "--compile",
)  # fmt: skip


def isolated_inductor(tmp_path, **env: str) -> dict[str, str]:
    """Inductor's caches in ``tmp_path``: an earlier run's compiled kernels must not
    hide a missing compiler."""
    return {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"), **env}


@pytest.mark.slow  # processes that train for seconds each
def test_without_a_compiler_training_falls_back_and_says_so_once(tmp_path) -> None:
    result = run_cli_process(
        *SHORT_RUN, "--out", str(tmp_path / "run"),
        env=isolated_inductor(tmp_path, CXX=str(tmp_path / "no-such-compiler")),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "torch.compile failed" in line]
    assert len(warnings) == 1 and warnings[0].endswith("training without it")
    assert "Traceback" not in result.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").open()]
    assert record["test_top1_error"] < 0.5  # it trained: chance is 0.9


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="inductor needs a C++ compiler")
def test_with_a_compiler_training_runs_compiled(tmp_path) -> None:
    compiled = run_cli_process(
        *SHORT_RUN, "--out", str(tmp_path / "compiled"), env=isolated_inductor(tmp_path)
    )
    assert compiled.returncode == 0, compiled.stderr
    assert "torch.compile failed" not in compiled.stderr
    assert any((tmp_path / "inductor").rglob("*.py"))  # inductor generated kernels
    eager = run_cli_process(*SHORT_RUN[:-1], "--out", str(tmp_path / "eager"))
    assert eager.returncode == 0, eager.stderr
    errors = [
        json.loads((tmp_path / name / "metrics.jsonl").read_text())["test_top1_error"]
        for name in ("compiled", "eager")
    ]
    assert errors[0] == pytest.approx(errors[1], abs=0.02)  # same training, fused kernels
