"""Layers of the 1989 and 1998 LeNet papers that PyTorch does not have.

Each is a leaf module, so the size analyzer's hooks see it, and each exposes
its real connectivity (a connection table, a shared coefficient) rather than
hiding it in ``forward``.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.errors import InputSizeError


def needs_autograd(x: torch.Tensor) -> bool:
    """Whether this forward pass is recorded for a backward one: not in evaluation or
    export, which run under inference_mode or no_grad."""
    return torch.is_grad_enabled() and x.requires_grad


class ScaledTanh(nn.Module):
    """f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (LeCun et al. 1998, Appendix A).

    The constants make f(1) = 1 and f(-1) = -1, with maximal second derivative
    at +-1, so targets of +-1 sit in the steep part of the curve.
    """

    size_kind = "activation"  # folded into the layer before it by the size analyzer
    amplitude = 1.7159
    slope = 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if needs_autograd(x):
            return self.amplitude * torch.tanh(self.slope * x)
        # Without autograd the three steps can share one buffer: fewer passes over memory.
        return torch.mul(x, self.slope).tanh_().mul_(self.amplitude)


def sum_2x2(x: torch.Tensor) -> torch.Tensor:
    """Sums of non-overlapping 2x2 windows, as three additions of strided views."""
    return x[..., ::2, ::2] + x[..., 1::2, ::2] + x[..., ::2, 1::2] + x[..., 1::2, 1::2]


class SumPool2x2(torch.autograd.Function):
    """Sums of non-overlapping 2x2 windows of an (N, C, H, W) tensor, H and W even.

    The same values as ``avg_pool2d(x, 2, divisor_override=1)``, computed as three
    additions of strided views, with a backward pass that copies each output gradient
    to its four inputs; on a CPU both passes together run about 2.4x as fast as
    average pooling's for LeNet-5's S2.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        return sum_2x2(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        n, c, h, w = grad.shape
        return grad[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class Subsampling(nn.Module):
    """Trainable subsampling (LeCun et al. 1998, Sec. II-B, layer S2).

    "The four inputs to a unit in S2 are added, then multiplied by a trainable
    coefficient, and added to a trainable bias": two parameters per feature map.
    The squashing function that follows is a separate ``ScaledTanh``.
    """

    size_kind = "subsampling"

    def __init__(self, channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        fan_in = kernel_size * kernel_size
        nn.init.uniform_(self.weight, -2.4 / fan_in, 2.4 / fan_in)  # the paper's rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 2 and x.dim() == 4 and x.shape[-2] % 2 == x.shape[-1] % 2 == 0:
            # The custom backward only where autograd runs: exporters trace the plain sum.
            summed = SumPool2x2.apply(x) if needs_autograd(x) else sum_2x2(x)
        else:  # k*k times the average: torch.onnx (2.14) drops avg_pool2d's divisor_override
            summed = F.avg_pool2d(x, self.kernel_size) * self.kernel_size**2
        return torch.addcmul(self.bias.view(1, -1, 1, 1), summed, self.weight.view(1, -1, 1, 1))

    def count_connections(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
        """Each unit adds k x k inputs (the paper's count; the coefficient rides on the sum)."""
        return math.prod(output_shape) * self.kernel_size**2


class TableConv2d(nn.Module):
    """A convolution in which output map j sees only the input maps that
    ``connection_table[j]`` marks (LeNet-5's C3, Table I; LeNet-1's H2).

    Only the real kernels are parameters: ``weight`` has one k x k kernel per
    connection, so the parameter count is the paper's. The dense kernel handed to
    ``conv2d`` is rebuilt each call by scattering them into zeros.

    With ``unit_bias_size=(H, W)`` every output unit has its own bias (LeCun et al.
    1989 give each unit of H1 and H2 a bias of its own); by default there is one
    bias per output map, as in LeNet-5.
    """

    size_kind = "table conv"
    connection_table: torch.Tensor  # a buffer (torch types buffers as Tensor | Module)

    def __init__(
        self,
        connection_table: torch.Tensor,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        unit_bias_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        out_channels, in_channels = connection_table.shape
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.register_buffer("connection_table", connection_table.bool())
        connections = int(self.connection_table.sum())
        self.weight = nn.Parameter(torch.empty(connections, kernel_size, kernel_size))
        bias_shape = (out_channels, *unit_bias_size) if unit_bias_size else (out_channels,)
        self.bias = nn.Parameter(torch.zeros(bias_shape))
        # The paper's rule: uniform in +-2.4 / F_i, F_i = inputs of the unit.
        fan_in = self.connection_table.sum(1).repeat_interleave(self.connection_table.sum(1))
        bound = (2.4 / (fan_in * kernel_size * kernel_size)).view(-1, 1, 1)
        with torch.no_grad():
            self.weight.uniform_(-1, 1).mul_(bound)

    def dense_weight(self) -> torch.Tensor:
        """The (out, in, k, k) kernel with zeros where the table has no connection."""
        k = self.kernel_size
        # Slot j of the flattened table takes kernel j' - 1, j' the running count of its
        # connections (``weight`` stores them in the table's row-major order), and an
        # unconnected slot takes the zero kernel 0. A gather by 96 indices, where a
        # masked index_put would export to ONNX with a 1500 x 4 table of int64 indices.
        table = self.connection_table.flatten().long()
        kernels = torch.cat([self.weight.new_zeros(1, k, k), self.weight])
        return kernels[table.cumsum(0) * table].view(self.out_channels, self.in_channels, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.dense_weight(), stride=self.stride, padding=self.padding)
        bias = self.bias if self.bias.dim() == 3 else self.bias.view(-1, 1, 1)
        return y + bias

    def count_connections(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
        """Each output position sees k x k inputs through each real kernel of its map."""
        _, height, width = output_shape
        return height * width * self.weight.numel()


class FullConv2d(nn.Conv2d):
    """A convolution whose kernels cover the whole input map (LeNet-5's C5: 5x5
    kernels on 5x5 maps, so each of its units sees all of S4), computed as the
    matrix product it then is.

    The weights, the outputs and the size analyzer's counts are those of
    ``nn.Conv2d``; on a CPU the product runs about four times as fast as the
    convolution kernel. Larger inputs fall back to the convolution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.weight.shape[-2:] or self.padding != (0, 0) or self.groups != 1:
            return super().forward(x)
        return F.linear(x.flatten(1), self.weight.flatten(1), self.bias)[:, :, None, None]


class EuclideanRBF(nn.Module):
    """Output layer of Euclidean radial basis function units (LeCun et al. 1998, eq. 7).

    Unit i computes y_i = sum_j (x_j - w_ij)^2 against a fixed code vector w_i of
    +-1 entries, which is a buffer, not a parameter: the paper chose the codes by
    hand and kept them fixed. ``forward`` returns -y as logits, so that softmax
    cross-entropy on them is the paper's MAP criterion (eq. 9) without its
    constant e^-j rubbish-class term.
    """

    size_kind = "rbf output"
    codes: torch.Tensor  # a buffer

    def __init__(self, codes: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("codes", codes.float())
        self.in_features, self.out_features = codes.shape[1], codes.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squared_distances = (
            x.pow(2).sum(1, keepdim=True) - 2 * x @ self.codes.T + self.codes.pow(2).sum(1)
        )
        return -squared_distances

    def count_connections(self, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
        """Every RBF unit is connected to every input (84 x 10 = 840 in LeNet-5)."""
        return self.in_features * self.out_features


def init_lecun_uniform(module: nn.Module) -> None:
    """Uniform weights in +-2.4 / F_i, F_i the fan-in (LeCun et al. 1998, Appendix C)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        fan_in = module.weight[0].numel()
        nn.init.uniform_(module.weight, -2.4 / fan_in, 2.4 / fan_in)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """(H, W) from an int or a pair."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, ceil_mode: bool = False
) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's formula)."""
    span = size + 2 * padding - kernel_size
    steps = -(-span // stride) if ceil_mode else span // stride
    if ceil_mode and steps * stride >= size + padding:  # PyTorch drops a window that starts
        steps -= 1  # in the right padding
    return steps + 1 if span >= 0 else 0


Window = tuple[int, int, int, bool]  # kernel_size, stride, padding, ceil_mode


def output_size_after(size: int, windows: list[Window]) -> int:
    """Length along one axis after a chain of convolution and pooling windows (0 if none fits)."""
    for kernel_size, stride, padding, ceil_mode in windows:
        size = conv_output_size(size, kernel_size, stride, padding, ceil_mode)
        if size < 1:
            return 0
    return size


def final_map_size(
    model_name: str, image_size: tuple[int, int], windows: list[Window]
) -> tuple[int, int]:
    """(H, W) after ``windows``; ``InputSizeError`` naming the smallest input that fits
    when the image is too small for the architecture."""
    height, width = (output_size_after(size, windows) for size in image_size)
    if height < 1 or width < 1:
        smallest = next(s for s in range(1, 10_000) if output_size_after(s, windows) >= 1)
        raise InputSizeError(
            f"{model_name} needs inputs of at least {smallest}x{smallest}, "
            f"not {image_size[0]}x{image_size[1]}"
        )
    return height, width


def check_input_size(model_name: str, image_size: tuple[int, int], smallest: int) -> None:
    """Raise ``InputSizeError`` when the image is smaller than the architecture needs."""
    if min(image_size) < smallest:
        raise InputSizeError(
            f"{model_name} needs inputs of at least {smallest}x{smallest}, "
            f"not {image_size[0]}x{image_size[1]}"
        )


def local_response_norm(
    size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0
) -> nn.LocalResponseNorm:
    """Krizhevsky et al. (2012), Sec. 3.3: b = a / (k + alpha * sum of n squares)^beta.

    PyTorch's ``LocalResponseNorm`` divides alpha by n, so it is given n * alpha
    to compute the paper's formula. Defaults are the paper's k = 2, n = 5,
    alpha = 1e-4, beta = 0.75.
    """
    return nn.LocalResponseNorm(size, alpha=size * alpha, beta=beta, k=k)
