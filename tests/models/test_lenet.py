"""LeNet-5 as published, and the lecture's modern variant."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.errors import ConfigError
from cnnkit.models import build_model, model_names
from cnnkit.models.layers import FullConv2d, Subsampling, SumPool2x2
from cnnkit.models.lenet import c3_connection_table, lenet5, rbf_codes


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_lenet5_has_the_papers_60000_trainable_parameters():
    model = build_model("lenet5")
    # LeCun et al. 1998, Sec. II-B, layer by layer (weights + biases):
    expected = {
        "c1": 6 * 25 + 6,  # 156: six 5x5 kernels
        "s2": 6 + 6,  # 12: one coefficient and one bias per map
        "c3": 60 * 25 + 16,  # 1,516: 60 connections of Table I, 5x5 each
        "s4": 16 + 16,  # 32
        "c5": 120 * 16 * 25 + 120,  # 48,120
        "f6": 84 * 120 + 84,  # 10,164
        "output": 0,  # the RBF code vectors are fixed, not trained
    }
    assert {name: trainable(getattr(model, name)) for name in expected} == expected
    assert trainable(model) == sum(expected.values()) == 60_000


def test_c3_table_is_table_one():
    table = c3_connection_table()  # (C3 map, S2 map)
    # Table I: maps 0-5 take 3 contiguous S2 maps, 6-11 take 4 contiguous,
    # 12-14 take 4 non-contiguous, 15 takes all six.
    for j in range(6):
        assert table[j].nonzero().flatten().tolist() == sorted((j + k) % 6 for k in range(3))
        assert table[6 + j].nonzero().flatten().tolist() == sorted((j + k) % 6 for k in range(4))
    assert [table[j].nonzero().flatten().tolist() for j in (12, 13, 14)] == [
        [0, 1, 3, 4],
        [1, 2, 4, 5],
        [0, 2, 3, 5],
    ]
    assert table[15].all() and int(table.sum()) == 60


def test_c3_uses_only_the_tables_connections():
    model = build_model("lenet5")
    dense = model.c3.dense_weight()  # (16, 6, 5, 5)
    unconnected = ~c3_connection_table()
    assert dense[unconnected].abs().sum() == 0
    assert (dense[c3_connection_table()].abs().sum(dim=(1, 2)) > 0).all()


def test_rbf_codes_are_distinct_plus_minus_one_bitmaps_and_not_trained():
    codes = rbf_codes()
    assert codes.shape == (10, 84) and set(codes.unique().tolist()) == {-1.0, 1.0}
    assert len({tuple(c.tolist()) for c in codes}) == 10
    model = build_model("lenet5")
    assert "output.codes" in dict(model.named_buffers())
    assert not any(name.startswith("output") for name, _ in model.named_parameters())


def test_rbf_logits_are_negative_squared_distances():
    model = build_model("lenet5")
    features = torch.randn(4, 84)
    expected = -((features[:, None, :] - rbf_codes()[None]) ** 2).sum(-1)
    assert torch.allclose(model.output(features), expected, atol=1e-4)


def test_lenet5_modern_layer_sizes():
    model = build_model("lenet5-modern")
    weights = {
        name: getattr(model, name).weight.numel() for name in ("c1", "c3", "f5", "f6", "output")
    }
    # The lecture's table: 150, 2,400, 48,000, 10,080 and 840 weights.
    assert weights == {"c1": 150, "c3": 2400, "f5": 48000, "f6": 10080, "output": 840}


@pytest.mark.parametrize("name", ["lenet5", "lenet5-modern"])
def test_output_shape_and_every_parameter_learns(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7)
    x = torch.randn(5, 1, 32, 32)
    logits = model(x)
    assert logits.shape == (5, 7)
    assert model.forward_features(x).shape == (5, 84)
    F.cross_entropy(logits, torch.arange(5) % 7).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_lenet5_cannot_have_more_classes_than_codes():
    with pytest.raises(ConfigError, match="at most 10"):
        build_model("lenet5", num_classes=11)


def test_registry_names():
    assert {"lenet5", "lenet5-modern"} <= set(model_names())


def test_c5_as_a_matrix_product_equals_the_convolution(mnist):
    """FullConv2d computes C5 with F.linear; values and gradients are nn.Conv2d's."""
    torch.manual_seed(0)
    full = FullConv2d(16, 120, kernel_size=5)
    conv = nn.Conv2d(16, 120, kernel_size=5)
    conv.load_state_dict(full.state_dict())
    model = lenet5()
    with torch.no_grad():  # S4's real output for real digits, not noise
        images = F.pad(mnist[1].images[:64].float() / 255, (2, 2, 2, 2))
        s4 = model.s4_act(model.s4(model.c3_act(model.c3(model.s2_act(model.s2(
            model.c1_act(model.c1(images))))))))  # fmt: skip
    s4 = s4.clone().requires_grad_()
    fast, slow = full(s4), conv(s4)
    assert fast.shape == slow.shape == (64, 120, 1, 1)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    fast.square().sum().backward()
    grad_fast = (s4.grad.clone(), full.weight.grad)
    s4.grad = None
    slow.square().sum().backward()
    torch.testing.assert_close(grad_fast[0], s4.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(grad_fast[1], conv.weight.grad, atol=1e-4, rtol=1e-4)
    # On a larger map it is an ordinary convolution.
    wide = torch.randn(2, 16, 7, 7)
    torch.testing.assert_close(full(wide), conv(wide))


def test_subsampling_sums_2x2_windows_like_average_pooling_times_four(mnist):
    """S2's fast 2x2 sum: the values and gradients of avg_pool2d(divisor_override=1)."""
    images = mnist[1].images[:8].double() / 255  # real digits, 28x28
    fast = SumPool2x2.apply(images.requires_grad_())
    slow = F.avg_pool2d(images, 2, divisor_override=1)
    torch.testing.assert_close(fast, slow)
    assert torch.autograd.gradcheck(
        SumPool2x2.apply, (images[:2, :, :8, :8].detach().requires_grad_(),)
    )
    # The layer takes the fast path for even sizes and average pooling for odd ones.
    layer = Subsampling(1).double()
    odd = images[:, :, :27, :27].detach()
    expected = F.avg_pool2d(odd, 2, divisor_override=1) * layer.weight + layer.bias
    torch.testing.assert_close(layer(odd), expected)
