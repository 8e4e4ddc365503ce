"""LeNet-1989's H2 connection table and per-unit biases."""

import torch

from cnnkit.models import build_model
from cnnkit.models.lenet1989 import h2_connection_table


def test_each_h2_map_sees_8_of_the_12_h1_maps() -> None:
    table = h2_connection_table()
    assert table.shape == (12, 12)
    assert table.sum(1).tolist() == [8] * 12  # Sec. 5: "8 of the 12"
    assert table.sum(0).tolist() == [8] * 12  # every H1 map is read equally often


def test_every_unit_has_its_own_bias() -> None:
    model = build_model("lenet1")
    assert model.h1.bias.shape == (12, 8, 8) and model.h2.bias.shape == (12, 4, 4)
    x = torch.zeros(1, 1, 16, 16)
    with torch.no_grad():
        model.h1.bias[3, 2, 5] = 1.0
        assert model.h1(x)[0, 3, 2, 5] == 1.0 and model.h1(x).abs().sum() == 1.0
    assert sum(p.numel() for p in model.parameters()) == 9_760
