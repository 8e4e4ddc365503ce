"""Every user error is one line on stderr and a non-zero exit, never a traceback."""

import pytest

from tests.helpers import assert_one_line_error, run_cli


def test_unknown_model():
    assert_one_line_error(run_cli("train", "lenet99"), "unknown model 'lenet99'", "lenet5")


def test_unknown_dataset(tmp_path):
    result = run_cli("train", "--dataset", "nope", "--out", str(tmp_path))
    assert_one_line_error(result, "unknown data set 'nope'")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "checkpoint not found"), (b"garbage", "not a readable cnnkit checkpoint")],
)
def test_bad_checkpoints(tmp_path, content, message):
    path = tmp_path / "checkpoint.pt"
    if content is not None:
        path.write_bytes(content)
    assert_one_line_error(run_cli("evaluate", str(path)), str(path), message)


def test_truncated_checkpoint(tmp_path):
    run = tmp_path / "run"
    trained = run_cli(
        "train",
        "lenet5-modern",
        "--epochs",
        "1",
        "--train-limit",
        "256",
        "--test-limit",
        "128",
        "--no-progress",
        "--out",
        str(run),
    )
    assert trained.returncode == 0, trained.stderr
    content = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(content[: len(content) // 2])
    assert_one_line_error(
        run_cli("evaluate", str(run / "checkpoint.pt")), "not a readable cnnkit checkpoint"
    )
    resumed = run_cli("train", "--resume", "--out", str(run))
    assert_one_line_error(resumed, "not a readable cnnkit checkpoint")


def test_corrupt_data_file_is_named(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    result = run_cli("train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "train-images-idx3-ubyte.gz", "corrupt or truncated gzip")


def float_options() -> list[tuple[str, str]]:
    """(command path below cnnkit, option) for every option of every command that takes
    a number with a fraction, found by walking the command tree as click builds it."""
    import click

    from cnnkit.cli import cli

    found = []

    def walk(command: click.Command, parent: click.Context | None, path: list[str]) -> None:
        context = click.Context(command, info_name=path[-1] if path else "cnnkit", parent=parent)
        for param in command.params:
            if isinstance(param, click.Option) and isinstance(
                param.type, click.types.FloatParamType
            ):
                found.append((" ".join(path), param.opts[0]))
        if isinstance(command, click.Group):
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None
                walk(sub, context, [*path, name])

    walk(cli, None, [])
    return found


FLOAT_OPTIONS = float_options()


def test_the_walk_finds_the_float_options():
    assert {("train", "--lr"), ("search dupes", "--threshold")} <= set(FLOAT_OPTIONS)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(("command", "option"), FLOAT_OPTIONS)
def test_every_float_option_refuses_what_is_not_a_finite_number(command, option, value):
    """Refused while parsing, before any work: NaN slipped through click's FloatRange
    (it compares false with every bound), so ``--threshold nan`` found nothing."""
    result = run_cli(*command.split(), option, value)
    assert_one_line_error(result, f"'{option}'", f"'{value}' is not a finite number")
    assert result.returncode == 2  # click's status for a usage error
