"""Layers of the 1989 and 1998 LeNet papers that PyTorch does not have.

Each is a leaf module, so the size analyzer's hooks see it, and each exposes
its real connectivity (a connection table, a shared coefficient) rather than
hiding it in ``forward``.
"""

import torch
from torch import nn
from torch.nn import functional as F


class ScaledTanh(nn.Module):
    """f(a) = A tanh(S a) with A = 1.7159, S = 2/3 (LeCun et al. 1998, Appendix A).

    The constants make f(1) = 1 and f(-1) = -1, with maximal second derivative
    at +-1, so targets of +-1 sit in the steep part of the curve.
    """

    amplitude = 1.7159
    slope = 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


class Subsampling(nn.Module):
    """Trainable subsampling (LeCun et al. 1998, Sec. II-B, layer S2).

    "The four inputs to a unit in S2 are added, then multiplied by a trainable
    coefficient, and added to a trainable bias": two parameters per feature map.
    The squashing function that follows is a separate ``ScaledTanh``.
    """

    def __init__(self, channels: int, kernel_size: int = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        fan_in = kernel_size * kernel_size
        nn.init.uniform_(self.weight, -2.4 / fan_in, 2.4 / fan_in)  # the paper's rule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # divisor_override=1 turns average pooling into the paper's sum of the inputs.
        summed = F.avg_pool2d(x, self.kernel_size, divisor_override=1)
        return summed * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class TableConv2d(nn.Module):
    """A convolution in which output map j sees only the input maps that
    ``connection_table[j]`` marks (LeNet-5's C3, Table I; LeNet-1's H2).

    Only the real kernels are parameters: ``weight`` has one k x k kernel per
    connection, so the parameter count is the paper's. The dense kernel handed to
    ``conv2d`` is rebuilt each call by scattering them into zeros.
    """

    def __init__(self, connection_table: torch.Tensor, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        out_channels, in_channels = connection_table.shape
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.register_buffer("connection_table", connection_table.bool())
        connections = int(self.connection_table.sum())
        self.weight = nn.Parameter(torch.empty(connections, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        # The paper's rule: uniform in +-2.4 / F_i, F_i = inputs of the unit.
        fan_in = self.connection_table.sum(1).repeat_interleave(self.connection_table.sum(1))
        bound = (2.4 / (fan_in * kernel_size * kernel_size)).view(-1, 1, 1)
        with torch.no_grad():
            self.weight.uniform_(-1, 1).mul_(bound)

    def dense_weight(self) -> torch.Tensor:
        """The (out, in, k, k) kernel with zeros where the table has no connection."""
        k = self.kernel_size
        dense = self.weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return dense.index_put((self.connection_table,), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias, stride=self.stride)


class EuclideanRBF(nn.Module):
    """Output layer of Euclidean radial basis function units (LeCun et al. 1998, eq. 7).

    Unit i computes y_i = sum_j (x_j - w_ij)^2 against a fixed code vector w_i of
    +-1 entries, which is a buffer, not a parameter: the paper chose the codes by
    hand and kept them fixed. ``forward`` returns -y as logits, so that softmax
    cross-entropy on them is the paper's MAP criterion (eq. 9) without its
    constant e^-j rubbish-class term.
    """

    def __init__(self, codes: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("codes", codes.float())
        self.in_features, self.out_features = codes.shape[1], codes.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squared_distances = (
            x.pow(2).sum(1, keepdim=True) - 2 * x @ self.codes.T + self.codes.pow(2).sum(1)
        )
        return -squared_distances


def init_lecun_uniform(module: nn.Module) -> None:
    """Uniform weights in +-2.4 / F_i, F_i the fan-in (LeCun et al. 1998, Appendix C)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        fan_in = module.weight[0].numel()
        nn.init.uniform_(module.weight, -2.4 / fan_in, 2.4 / fan_in)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
