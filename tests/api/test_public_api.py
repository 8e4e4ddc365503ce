"""The public API at the top of the package: what ``import cnnkit`` offers, that it
loads no PyTorch until used, that training from Python checks its options as the command
line does and can run twice, and the size summary with its rules of thumb."""

import dataclasses

import click
import pytest
import torch
from torch import nn

import cnnkit
from cnnkit.cli import cli
from cnnkit.config import Limits, TrainOptions
from cnnkit.errors import ConfigError, UnknownNameError
from tests.helpers import python_output, run_cli


def test_import_cnnkit_loads_no_torch_and_lists_the_api() -> None:
    out = python_output(
        "import sys, cnnkit; print('torch' in sys.modules, 'numpy' in sys.modules); "
        "print(' '.join(dir(cnnkit)))"
    )
    loaded, names = out.splitlines()
    assert loaded == "False False"
    assert {"train", "load", "summary", "index", "open_index", "models"} <= set(names.split())


def test_every_public_name_resolves() -> None:
    import cnnkit.api

    assert sorted(cnnkit.API) == sorted(cnnkit.api.__all__)
    for name in cnnkit.__all__:
        assert getattr(cnnkit, name) is not None
    with pytest.raises(AttributeError):
        cnnkit.no_such_name  # noqa: B018


def test_models_names_and_create() -> None:
    names = cnnkit.models.names()
    assert names[:3] == ["lenet1", "lenet5", "lenet5-modern"] and "resnet152" in names
    model = cnnkit.models.create("resnet20", num_classes=7, in_channels=3)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert (
        sum(p.numel() for p in model.parameters())
        == cnnkit.summary(model, input=(3, 32, 32)).totals.parameters
    )
    with pytest.raises(UnknownNameError, match="unknown model 'lenet6'"):
        cnnkit.models.create("lenet6")
    with pytest.raises(ConfigError, match="num_classes=0: expected a whole number"):
        cnnkit.models.create("lenet5", num_classes=0)
    with pytest.raises(ConfigError, match="unexpected keyword argument 'depth'"):
        cnnkit.models.create("lenet5", depth=3)


def test_the_lenet5_summary_is_the_lecture_table_with_each_rule_of_thumb_and_why() -> None:
    summary = cnnkit.summary("lenet5")
    totals = summary.totals
    assert (totals.parameters, totals.connections_with_biases, totals.units) == (
        60_000,
        340_908,
        9_118,
    )
    assert repr(summary) == run_cli("size", "lenet5").stdout.rstrip("\n")  # the CLI's table
    html = summary._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 1 + 8 + 1  # head, layers, total
    units, connections, weights = summary.rules_of_thumb
    assert units.holds and connections.holds and not weights.holds
    assert "16.9% of the weights are in fully connected layers" in weights.why
    assert "c5, a conv layer, holds 80.3%" in weights.why
    assert "does not hold" in str(weights)
    alexnet_rules = cnnkit.summary("alexnet").rules_of_thumb
    assert all(rule.holds for rule in alexnet_rules)  # the lecture's own example


def test_summary_of_a_module_needs_its_input_unless_it_is_a_cnnkit_model() -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    assert cnnkit.summary(mlp, input=(1, 28, 28)).totals.parameters == 7_850
    with pytest.raises(ConfigError, match="give input=\\(C, H, W\\)"):
        cnnkit.summary(mlp)
    with pytest.raises(ConfigError, match="input=\\(1, 28\\): expected a shape"):
        cnnkit.summary("lenet5", input=(1, 28))
    with pytest.raises(ConfigError, match="num_classes=2.5: expected a whole number"):
        cnnkit.summary("lenet5", num_classes=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected a model's name"):
        cnnkit.summary(42)  # type: ignore[arg-type]


def test_the_catalogue_lists_every_model_as_cnnkit_models_prints_it() -> None:
    catalogue = cnnkit.catalogue()
    assert [m.name for m in catalogue] == cnnkit.models.names()
    lenet5 = catalogue[1]
    assert (lenet5.parameters, lenet5.input_shape) == (60_000, (1, 32, 32))
    assert "LeCun et al. 1998" in lenet5.citation
    printed = run_cli("models")
    assert printed.returncode == 0 and printed.stdout.rstrip("\n") == repr(catalogue)
    assert "60,000" in printed.stdout and "143,667,240" in printed.stdout  # lenet5, vgg19


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, "epochs=0: expected a value >= 1"),
        ({"epochs": "3"}, "epochs='3': expected a whole number or None"),
        ({"lr": 0.0}, "lr=0.0: expected a value > 0"),
        ({"lr": float("inf")}, "lr=inf: expected a value > 0"),
        ({"weight_decay": float("nan")}, "weight_decay=nan: expected a value >= 0"),
        ({"label_smoothing": 1.0}, "label_smoothing=1.0: expected a value >= 0 and < 1"),
        ({"device": "gpu"}, "device='gpu': expected one of auto, cpu, cuda, mps"),
        ({"report": "no"}, "report='no': expected True or False"),
        ({"train_limit": True}, "train_limit=True: expected a whole number or None"),
        ({"epoch": 1}, "unknown training option 'epoch'"),
        ({"model": "lenet6"}, "unknown model 'lenet6'"),
    ],
)
def test_train_checks_its_options_as_the_command_line_does(options, message) -> None:
    with pytest.raises((ConfigError, UnknownNameError)) as caught:
        cnnkit.train(**options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_options_limits_are_the_command_lines() -> None:
    """Every range or choice that ``cnnkit train`` declares is the one ``TrainOptions``
    declares, so Python and the command line refuse the same values."""
    command = cli.commands["train"]
    declared = {f.name: f.metadata.get("limits") for f in dataclasses.fields(TrainOptions)}
    for param in command.params:
        kind = param.type
        if isinstance(kind, click.IntRange | click.FloatRange):
            expected = Limits(kind.min, kind.max, kind.min_open, kind.max_open)
        elif isinstance(kind, click.Choice):
            expected = Limits(choices=tuple(kind.choices))
        else:
            continue
        assert declared[param.name] == expected, param.name


@pytest.mark.slow
def test_train_returns_a_run_and_runs_again_in_the_same_interpreter(tmp_path) -> None:
    runs = [
        cnnkit.train(
            "lenet5-modern",
            epochs=1,
            train_limit=2000,
            test_limit=300,
            out=tmp_path / f"run{n}",
            report=n == 1,
            progress=False,
        )
        for n in (1, 2)
    ]
    first, second = runs
    assert first is not None and second is not None
    assert first.report == tmp_path / "run1" / "report.html" and first.report.is_file()
    assert second.report is None and not (tmp_path / "run2" / "report.html").exists()
    assert [len(r.history) for r in runs] == [1, 1]
    assert first.history[-1].test_top1_error == second.history[-1].test_top1_error  # one seed
    assert first.classes == [str(d) for d in range(10)] and first.record.model == "lenet5-modern"
    assert repr(first).startswith("Run(lenet5-modern on mnist, 1 epoch, test top-1 error")
    loaded = cnnkit.load(tmp_path / "run1")
    assert loaded.history == first.history
    evaluation = loaded.evaluate(limit=300)
    assert evaluation.top1_error == pytest.approx(first.history[-1].test_top1_error)
    assert repr(evaluation).startswith("300 test images: top-1 error")


def test_compare_gives_the_lecture_comparison_as_cnnkit_size_compare_prints_it() -> None:
    comparison = cnnkit.compare(["lenet1", "lenet5", "alexnet"])
    assert [column.model for column in comparison] == ["lenet1", "lenet5", "alexnet"]
    printed = run_cli("size", "--compare", "lenet1", "lenet5", "alexnet")
    assert repr(comparison) == printed.stdout.rstrip("\n")
    html = comparison._repr_html_()
    assert html.startswith("<table>") and "340,908" in html and "<li>" in html
    with pytest.raises(UnknownNameError, match="no paper facts"):
        cnnkit.compare(["resnet8"])
    with pytest.raises(ConfigError, match="expected a list of model names"):
        cnnkit.compare("lenet5")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected a list of model names"):
        cnnkit.compare([])
