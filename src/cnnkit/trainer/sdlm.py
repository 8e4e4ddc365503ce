"""Stochastic diagonal Levenberg-Marquardt, LeNet-5's own training method.

LeCun et al. 1998, Sec. III-A and Appendix C; LeCun, Bottou, Orr and Mueller,
"Efficient BackProp" (1998), Sec. 7.1-7.5. Before each pass over the training set the
second derivative of the loss with respect to every weight, h_kk, is estimated on 500
patterns with the Gauss-Newton approximation, back-propagated as the paper's eqs. 25-27
do it: for a unit's total input a_i,

    d2E/da_i2 = f'(a_i)^2 * sum_k w_ki^2 * d2E/da_k2        (the units above it)
    h_kk      = sum over the connections (i, j) that share w_k of d2E/da_i2 * x_j^2

(off-diagonal terms and f'' dropped). Each weight then steps by eta / (mu + h_kk)
times its gradient, mu = 0.02, with the paper's eta schedule over 20 passes.

Deviations, chosen to be practical on a CPU:
- Small batches instead of single patterns: each step is the paper's per-pattern step
  with the batch's mean gradient in place of one pattern's (so 20 passes take 1/16
  of the paper's updates in batches of 16). Summing the 16 per-pattern steps instead
  (16 times the step) diverged within 1,000 updates here.
- The loss is cnnkit's (softmax cross-entropy on the negative RBF distances, the
  paper's eq. 9 without the constant j), so the output's second derivative is the
  diagonal of the softmax's, p_i (1 - p_i).
"""

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.grad import conv2d_input, conv2d_weight

from cnnkit.errors import ConfigError
from cnnkit.models.layers import EuclideanRBF, ScaledTanh, Subsampling, TableConv2d, sum_2x2
from cnnkit.trainer.eager_optimizers import LeanOptimizer

MU = 0.02  # LeCun et al. 1998, Sec. III-A
CURVATURE_PATTERNS = 500  # "re-estimated on 500 patterns before each training pass"
# The paper's eta for passes 1-2, 3-5, 6-8, 9-12 and after (Sec. III-A).
PAPER_ETAS = (5e-4,) * 2 + (2e-4,) * 3 + (1e-4,) * 3 + (5e-5,) * 4
FINAL_ETA = 1e-5


@dataclass
class PaperEtaSchedule:
    """Multiplier of the first pass's eta at each step (``LambdaLR``), pass by pass as
    the paper's schedule; a dataclass so that ``LambdaLR.state_dict`` saves it."""

    steps_per_epoch: int

    def __call__(self, step: int) -> float:
        epoch = step // self.steps_per_epoch
        eta = PAPER_ETAS[epoch] if epoch < len(PAPER_ETAS) else FINAL_ETA
        return eta / PAPER_ETAS[0]


class SDLM(LeanOptimizer):
    """w_k <- w_k - lr / (mu + h_kk) * g_k, g the batch's mean gradient.

    ``set_curvature`` stores the h_kk of every parameter (in the state, so that a
    checkpoint holds them); a step before the first estimate is refused.
    """

    def __init__(self, params, lr: float, mu: float = MU) -> None:
        super().__init__(params, {"lr": lr, "mu": mu})

    def set_curvature(self, diagonals: dict[nn.Parameter, torch.Tensor]) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["hessian_diagonal"] = diagonals[p].detach().clone()

    @torch.no_grad()
    def step(self, closure=None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if "hessian_diagonal" not in self.state[p]:
                    raise RuntimeError("SDLM.step before set_curvature")
                h = self.state[p]["hessian_diagonal"]
                p.addcdiv_(p.grad, h + group["mu"], value=-group["lr"])


def gauss_newton_diagonal(model: nn.Module, x: torch.Tensor) -> dict[nn.Parameter, torch.Tensor]:
    """The mean over the patterns of ``x`` of each weight's h_kk, for a model whose
    children, in order, are its layers (LeNet-5's; a Linear after a map flattens it)
    and whose output is the logits of a softmax cross-entropy loss."""
    steps: list[tuple[nn.Module, torch.Tensor, torch.Size]] = []  # layer, input, output shape
    with torch.no_grad():
        for layer in model.children():
            if isinstance(layer, (nn.Linear, EuclideanRBF)):
                x = x.flatten(1)
            y = layer(x)
            steps.append((layer, x, y.shape))
            x = y
        probs = x.softmax(1)
        d = probs * (1 - probs)  # d2E/dz2 of the logits z: the softmax's diagonal
        diagonals: dict[nn.Parameter, torch.Tensor] = {}
        for layer, layer_input, shape in reversed(steps):
            d = backward_diagonal(layer, layer_input, d.reshape(shape), diagonals)
    return {p: h / len(x) for p, h in diagonals.items()}


def backward_diagonal(
    layer: nn.Module, x: torch.Tensor, d: torch.Tensor, diagonals: dict
) -> torch.Tensor:
    """d2E/dx2 at the layer's input from d2E/dy2 at its output ``d``; adds the sums of
    d2E/da2 * x^2 of its weights into ``diagonals``."""
    if isinstance(layer, ScaledTanh):
        slope = layer.amplitude * layer.slope * (1 - torch.tanh(layer.slope * x) ** 2)
        return slope**2 * d
    if isinstance(layer, EuclideanRBF):  # y_i = sum_j (x_j - c_ij)^2, z = -y: fixed codes
        return 4 * torch.einsum("nk,nkj->nj", d, (x[:, None, :] - layer.codes) ** 2)
    if isinstance(layer, nn.Linear):
        diagonals[layer.weight] = d.T @ x**2
        if layer.bias is not None:
            diagonals[layer.bias] = d.sum(0)
        return d @ layer.weight**2
    if isinstance(layer, Subsampling):  # y = w * (sum of 4 inputs) + b: 4 connections each
        diagonals[layer.weight] = (d * sum_2x2(x**2)).sum((0, 2, 3))
        diagonals[layer.bias] = d.sum((0, 2, 3))
        scaled = d * layer.weight.view(1, -1, 1, 1) ** 2
        return scaled.repeat_interleave(2, 2).repeat_interleave(2, 3)
    if isinstance(layer, (nn.Conv2d, TableConv2d)):
        dense = layer.dense_weight() if isinstance(layer, TableConv2d) else layer.weight
        stride, padding = layer.stride, layer.padding
        h = conv2d_weight(x**2, dense.shape, d, stride=stride, padding=padding)
        if isinstance(layer, TableConv2d):  # the real kernels, in the table's order
            h = h.flatten(0, 1)[layer.connection_table.flatten()]
        diagonals[layer.weight] = h
        if layer.bias is not None:
            diagonals[layer.bias] = d.sum((0, 2, 3)) if layer.bias.dim() == 1 else d.sum(0)
        return conv2d_input(x.shape, dense**2, d, stride=stride, padding=padding)
    raise ConfigError(
        f"--optimizer sdlm: no second-derivative rule for a {type(layer).__name__} layer "
        "(it knows LeNet-5's layers: convolutions, subsampling, scaled tanh, RBF output)"
    )


def curvature_indices(images: int, seed: int, epoch: int) -> torch.Tensor:
    """The ``CURVATURE_PATTERNS`` patterns of an epoch's estimate, drawn from (seed, epoch)
    alone by a generator of their own, so that a resumed run draws the same ones."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(images, generator=generator)[:CURVATURE_PATTERNS]
