"""The size analyzer against the lecture's table, the papers' counts and torch's flop counter."""

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.analysis import model_size, size_report
from cnnkit.analysis.papers import compare_models
from cnnkit.analysis.render import render_comparison
from cnnkit.config import TABLE_FORMATS as FORMATS
from cnnkit.models import build_model


def rows(name: str) -> dict[str, tuple[int, int, int]]:
    """layer -> (units, weights, connections)."""
    return {
        layer.name: (layer.units, layer.weights, layer.connections)
        for layer in model_size(name).layers
    }


def test_lenet5_modern_reproduces_the_lecture_table() -> None:
    assert rows("lenet5-modern") == {
        "input": (1_024, 0, 0),  # 32x32; not a row of the lecture's table
        "c1": (4_704, 150, 117_600),  # 6@28x28; 6 x 5x5 kernels; 4,704 x 25
        "s2": (1_176, 0, 4_704),  # 6@14x14; each unit sees 4 inputs
        "c3": (1_600, 2_400, 240_000),  # 16@10x10; 16 x 6 x 25; 1,600 x 150
        "s4": (400, 0, 1_600),  # 16@5x5; 400 x 4
        "f5": (120, 48_000, 48_000),  # 400 x 120
        "f6": (84, 10_080, 10_080),  # 120 x 84
        "output": (10, 840, 840),  # 84 x 10
    }


def test_lenet5_gives_the_1998_papers_counts() -> None:
    """LeCun et al. 1998, Sec. II-B, layer by layer: (parameters, connections with biases)."""
    report = model_size("lenet5")
    counts = {
        layer.name: (layer.weights + layer.biases, layer.connections_with_biases)
        for layer in report.layers
    }
    assert counts == {
        "input": (0, 0),
        "c1": (156, 122_304),  # 6 x (25 + 1); 4,704 units x 26
        "s2": (12, 5_880),  # 6 x (coefficient + bias); 1,176 x (4 + 1)
        "c3": (1_516, 151_600),  # 60 kernels x 25 + 16; 100 positions x 1,516
        "s4": (32, 2_000),  # 16 x 2; 400 x 5
        "c5": (48_120, 48_120),  # 120 x (400 + 1); one position
        "f6": (10_164, 10_164),  # 84 x (120 + 1)
        "output": (0, 840),  # fixed RBF codes; 10 x 84
    }
    assert report.totals.parameters == 60_000
    assert report.totals.connections_with_biases == 340_908


def test_lenet1_gives_the_1989_papers_counts() -> None:
    """LeCun et al. 1989, Sec. 5: 1,256 units, 64,660 connections, 9,760 parameters.

    Every unit has its own bias: H1 12 x 8x8 = 768 units, 12 kernels of 25, 768
    x 25 = 19,200 connections (+ 768); H2 192 units, 12 x 8 kernels of 25, 192 x
    200 = 38,400 (+ 192); H3 30 x 192 (+ 30); output 10 x 30 (+ 10).
    """
    report = model_size("lenet1")
    counts = {
        layer.name: (layer.units, layer.weights, layer.biases, layer.connections)
        for layer in report.layers
    }
    assert counts == {
        "input": (256, 0, 0, 0),
        "h1": (768, 300, 768, 19_200),
        "h2": (192, 2_400, 192, 38_400),
        "h3": (30, 5_760, 30, 5_760),
        "output": (10, 300, 10, 300),
    }
    assert report.totals.units == 1_256
    assert report.totals.parameters == 9_760  # 300 + 768 + 2,400 + 192 + 5,760 + 30 + 300 + 10
    assert report.totals.connections_with_biases == 64_660  # 19,968 + 38,592 + 5,790 + 310


def test_alexnet_grouped_convolutions_count_only_real_connections() -> None:
    """Krizhevsky et al. 2012, Sec. 3.5: conv2 kernels are 5x5x48, conv4 3x3x192, conv5 3x3x192."""
    layers = {layer.name: layer for layer in model_size("alexnet").layers}
    assert layers["conv1"].output_shape == (96, 55, 55)
    assert layers["conv2"].weights == 256 * 48 * 25
    assert layers["conv2"].connections == 256 * 27 * 27 * 48 * 25
    assert layers["conv3"].weights == 384 * 256 * 9  # conv3 sees both towers
    assert layers["conv4"].weights == 384 * 192 * 9
    assert layers["pool1"].connections == 96 * 27 * 27 * 9  # overlapping 3x3 windows
    assert layers["norm1"].units == 0 and layers["norm1"].connections == 290_400 * 5


@pytest.mark.parametrize(
    ("name", "gigaflops"),
    [
        ("resnet18", 1.8),
        ("resnet34", 3.6),
        ("resnet50", 3.8),
        ("resnet101", 7.6),
        ("resnet152", 11.3),
    ],
)
def test_resnet_connections_match_the_papers_flops(name: str, gigaflops: float) -> None:
    """He et al. 2015, Table 1 "FLOPs" (multiply-adds), given to one decimal, rounded down."""
    assert abs(model_size(name).totals.connections / 1e9 - gigaflops) < 0.1


def test_googlenet_matches_table_1_ops() -> None:
    """Szegedy et al. 2014, Table 1 "ops" (convolutions only): conv1 118M, inception (3a)
    128M; the column sums to 1,586M over the main network (Sec. 5: "1.5 billion
    multiply-adds"), which our exact count meets within the table's rounding."""
    layers = [layer for layer in model_size("googlenet").layers if layer.kind in ("conv", "linear")]
    conv1 = next(layer for layer in layers if layer.name == "conv1")
    inception3a = sum(
        layer.connections for layer in layers if layer.name.startswith("inception3a.")
    )
    main = sum(layer.connections for layer in layers if not layer.name.startswith("aux"))
    assert round(conv1.connections / 1e6) == 118
    assert round(inception3a / 1e6) == 128
    assert abs(main / 1e6 - 1_586) < 0.01 * 1_586


@pytest.mark.parametrize(
    ("name", "input_shape"),
    [
        ("alexnet", (3, 227, 227)),
        ("zfnet", (3, 224, 224)),
        ("resnet18", (3, 64, 64)),
        ("googlenet", (3, 96, 96)),
        ("lenet5-modern", (1, 32, 32)),
    ],
)
def test_conv_and_linear_connections_match_torch_flop_counter(name, input_shape) -> None:
    """For standard layers, connections = torch.utils.flop_counter's FLOPs / 2."""
    model = build_model(name, in_channels=input_shape[0], image_size=input_shape[1:]).to("meta")
    report = size_report(model, input_shape, name)
    x = torch.zeros(1, *input_shape, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval().forward_with_aux(x) if hasattr(model, "forward_with_aux") else model.eval()(x)
    counted = sum(layer.connections for layer in report.layers if layer.kind in ("conv", "linear"))
    assert counted == counter.get_total_flops() // 2


def test_meta_and_cpu_walks_agree() -> None:
    on_cpu = size_report(build_model("lenet1"), (1, 16, 16), "lenet1")
    assert on_cpu == model_size("lenet1")


def test_json_shape_and_rules_of_thumb() -> None:
    report = model_size("lenet5-modern")
    data = report.to_dict()
    assert set(data) == {"model", "input", "layers", "totals"}
    assert data["input"] == [1, 32, 32]
    assert set(data["layers"][1]) == {
        "name",
        "kind",
        "output_shape",
        "units",
        "weights",
        "biases",
        "connections",
        "connections_with_biases",
    }
    assert data["totals"]["parameters"] == 61_706
    assert all(rule.holds for rule in report.rules_of_thumb())
    resnet_rules = model_size("resnet18").rules_of_thumb()
    assert [rule.holds for rule in resnet_rules] == [True, True, False]  # one small fc layer


def test_comparison_states_the_formula() -> None:
    lenet1, lenet5 = compare_models(["lenet1", "lenet5"])
    assert lenet1.training_operations == 64_660 * 7_291 * 23 * 3
    assert lenet5.training_operations == 340_908 * 60_000 * 20 * 3


def test_comparison_gives_the_lectures_totals_for_lenet() -> None:
    """The lecture: connections x training examples x epochs. LeNet-1 (1989): 65,000 x 7,291
    x 23 = about 11 billion; LeNet-5 (1998): 344,000 x 60,000 x 20 = about 412 billion."""
    lenet1, lenet5 = compare_models(["lenet1", "lenet5"])
    assert lenet1.lecture_training_operations == 64_660 * 7_291 * 23  # 10,843,029,380
    assert round(lenet1.lecture_training_operations / 1e9) == 11
    assert lenet5.lecture_training_operations == 340_908 * 60_000 * 20  # 409,089,600,000
    # The lecture starts from 344,000 connections, 0.9% above the paper's 340,908.
    assert abs(lenet5.lecture_training_operations / 412e9 - 1) < 0.01


def test_the_two_conventions_differ_by_three_operations_per_connection() -> None:
    for column in compare_models(["lenet1", "lenet5", "alexnet"]):
        assert column.training_operations == 3 * column.lecture_training_operations


@pytest.mark.parametrize("fmt", FORMATS)
def test_comparison_renders_both_conventions(fmt: str) -> None:
    text = render_comparison(compare_models(["lenet1", "lenet5"]), fmt)
    if fmt == "json":
        lenet1, lenet5 = json.loads(text)
        assert lenet1["lecture_training_operations"] == 64_660 * 7_291 * 23
        assert lenet5["training_operations"] == 340_908 * 60_000 * 20 * 3
        return
    lines = text.splitlines()
    lecture = next(line for line in lines if "connections x examples x epochs" in line)
    three = next(line for line in lines if "3 per connection: forward + backward" in line)
    assert "10.8 billion" in lecture and "409.1 billion" in lecture
    assert "32.5 billion" in three and "1.2 trillion" in three
