"""The SDLM optimiser (LeCun et al. 1998, Appendix C): its curvature estimate against
the Gauss-Newton diagonal that autograd computes, its schedule against the paper's."""

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev

from cnnkit.models import build_model
from cnnkit.models.layers import ScaledTanh
from cnnkit.trainer.sdlm import SDLM, PaperEtaSchedule, gauss_newton_diagonal


class OneLayer(nn.Module):
    """One layer of weights, then the paper's squashing function: here the paper's
    back-propagated diagonal is the exact diagonal of the Gauss-Newton matrix, since
    each weight reaches one output only."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.fc_act = ScaledTanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_act(self.fc(x))


def autograd_gauss_newton_diagonal(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """diag(J^T H J) averaged over the patterns, J the Jacobian of the logits by the
    parameters (autograd) and H the Hessian of softmax cross-entropy by the logits,
    diag(p) - p p^T (independent of the label)."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    for pattern in x:
        logits = functional_call(model, params, (pattern[None],))[0]
        jacobians = jacrev(
            lambda q, pattern=pattern: functional_call(model, q, (pattern[None],))[0]
        )(params)
        p = logits.softmax(0)
        hessian = torch.diag(p) - torch.outer(p, p)
        for name, jacobian in jacobians.items():  # (logits, *parameter shape)
            flat = jacobian.reshape(len(p), -1)
            totals[name] += torch.einsum("kw,kl,lw->w", flat, hessian, flat).view_as(totals[name])
    return {name: total / len(x) for name, total in totals.items()}


def test_curvature_of_one_layer_is_the_gauss_newton_diagonal() -> None:
    torch.manual_seed(0)
    model = OneLayer()
    x = torch.randn(50, 6)
    ours = gauss_newton_diagonal(model, x)
    reference = autograd_gauss_newton_diagonal(model, x)
    for name, p in model.named_parameters():
        torch.testing.assert_close(ours[p], reference[name], rtol=1e-5, atol=1e-7)


def test_lenet5_gets_a_positive_estimate_for_every_parameter() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5")
    diagonals = gauss_newton_diagonal(model, torch.randn(20, 1, 32, 32))
    for name, p in model.named_parameters():
        h = diagonals[p]
        assert h.shape == p.shape, name
        assert torch.isfinite(h).all() and (h >= 0).all() and h.sum() > 0, name


def test_step_is_eta_over_mu_plus_h_times_the_gradient() -> None:
    w = nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = SDLM([w], lr=0.004, mu=0.02)
    optimizer.set_curvature({w: torch.tensor([0.0, 0.08])})
    w.grad = torch.tensor([0.5, -1.0])
    optimizer.step()
    # 0.004 / (0.02 + h) x gradient: 0.2 x 0.5 = 0.1 and 0.04 x -1 (worked by hand).
    torch.testing.assert_close(w.detach(), torch.tensor([1.0 - 0.1, 2.0 + 0.04]))


def test_schedule_is_the_papers_eta_per_pass() -> None:
    # LeCun et al. 1998, Sec. III-A: 0.0005 for the first two passes, 0.0002 for the
    # next three, 0.0001 for the next three, 0.00005 for the next four, then 0.00001.
    paper = [0.0005] * 2 + [0.0002] * 3 + [0.0001] * 3 + [0.00005] * 4 + [0.00001] * 8
    schedule = PaperEtaSchedule(steps_per_epoch=7)
    for epoch, eta in enumerate(paper):
        for step in (7 * epoch, 7 * epoch + 6):
            assert math.isclose(0.0005 * schedule(step), eta, rel_tol=1e-9)
